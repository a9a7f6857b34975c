"""Reference line for benches/parse.rs: Python fastfeedparser's parse throughput on the same corpus.

Run by the parse bench, not by hand:

    python3 benches/parse_fastfeedparser.py SECONDS RUNS NAME=DIR...

Each NAME=DIR is one case of the bench's corpus: the files in DIR, in name order, are its
documents. Every document is read into memory first; only the `fastfeedparser.parse(bytes)` calls
are timed, in CPU time of this one process (`time.process_time`), as the Rust bench times CPU
time. As there: one pass per case to warm up, one more to size the runs (about SECONDS / RUNS of
CPU each), then RUNS rounds over every case in turn, and the median time per pass is reported.

Prints the versions on the first line, then `NAME<TAB>BYTES<TAB>ENTRIES<TAB>MB/s` per case
(`error: ...` in place of the numbers when a case does not parse), then the total over the cases
that parsed. Exits with 3, printing `absent`, when fastfeedparser cannot be imported.
"""

import os
import platform
import statistics
import sys
import time

try:
    import fastfeedparser
except ImportError:
    print("absent")
    sys.exit(3)


def version(name):
    try:
        from importlib.metadata import version as v

        return v(name)
    except Exception:  # the versions are only shown; an unknown one is not an error
        return "?"


def parse_pass(docs):
    """One pass over a case's documents; CPU seconds and the number of entries read."""
    entries = 0
    start = time.process_time()
    for doc in docs:
        entries += len(fastfeedparser.parse(doc).entries)
    return time.process_time() - start, entries


def main():
    seconds = float(sys.argv[1])
    runs = int(sys.argv[2])
    cases = []
    for arg in sys.argv[3:]:
        name, _, folder = arg.partition("=")
        docs = []
        for file in sorted(os.listdir(folder)):
            with open(os.path.join(folder, file), "rb") as f:
                docs.append(f.read())
        cases.append({"name": name, "docs": docs, "bytes": sum(map(len, docs)), "times": []})

    print(
        f"fastfeedparser {version('fastfeedparser')}, lxml {version('lxml')}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    for case in cases:
        try:
            parse_pass(case["docs"])
            once, case["entries"] = parse_pass(case["docs"])
        except Exception as e:  # a case fastfeedparser cannot read is reported, not fatal
            case["error"] = f"{type(e).__name__}: {e}"
            continue
        case["iterations"] = max(1, round(seconds / runs / max(once, 1e-9)))
    # Rounds over every case, so that a burst of load elsewhere costs one run of each.
    for _ in range(runs):
        for case in cases:
            if "error" in case:
                continue
            total = 0.0
            for _ in range(case["iterations"]):
                total += parse_pass(case["docs"])[0]
            case["times"].append(total / case["iterations"])

    all_bytes, all_entries, all_time = 0, 0, 0.0
    for case in cases:
        if "error" in case:
            print(f"{case['name']}\terror: {case['error']}")
            continue
        median = statistics.median(case["times"])
        print(f"{case['name']}\t{case['bytes']}\t{case['entries']}\t{case['bytes'] / 1e6 / median:.1f}")
        all_bytes += case["bytes"]
        all_entries += case["entries"]
        all_time += median
    if all_time > 0:
        print(f"total\t{all_bytes}\t{all_entries}\t{all_bytes / 1e6 / all_time:.1f}")


main()
