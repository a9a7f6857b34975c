#!/usr/bin/env bash
# Installs what the benchmarks need beyond the Rust toolchain: GNU time (/usr/bin/time, each
# run's peak memory), curl (the download floor, and sfeed's fetch), sfeed (the comparison in
# benches/compare.rs) and Python's fastfeedparser (the reference line of benches/parse.rs).
# Idempotent. The benches run without sfeed and fastfeedparser, printing "absent" for them.
set -euo pipefail

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v sfeed_update >/dev/null 2>&1 || missing+=(sfeed)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ "${#missing[@]}" -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import fastfeedparser' >/dev/null 2>&1; then
  # A Debian python3 refuses to install into itself (PEP 668) without the flag; another Python
  # (pyenv, a venv) installs as usual.
  python3 -m pip install --quiet fastfeedparser 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages fastfeedparser
fi
