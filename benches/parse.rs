//! Parse benchmark: throughput in MB/s of turning feed bytes into the parsed model (parse), and
//! of that plus identifying and normalizing every entry into an article (parse+normalize), on a
//! corpus built in memory, so that two versions of the parser can be compared on the same bytes.
//! Times are CPU time of the process, so MB/s is megabytes per CPU-second.
//!
//! `cargo bench --bench parse`; from the environment:
//! `GAZETTE_BENCH_FEEDS` (a directory; every file in it is one more case, "dir", summed),
//! `GAZETTE_BENCH_SECONDS` (CPU time spent on each measurement, default 1.5; 0 measures a single
//! pass after the warm-up pass, for instruction counts under callgrind),
//! `GAZETTE_BENCH_PYTHON` (the Python for the reference line below, default `python3`).
//!
//! Reference, not Gazette: after the table, Python fastfeedparser's parse MB/s over the same
//! documents (`benches/parse_fastfeedparser.py`): the corpus is written to files, read back by
//! one Python process, and only its `fastfeedparser.parse(bytes)` calls are timed, in CPU time,
//! with the same warm-up, run sizing, rounds and median as here. Its parse builds a dict per
//! entry with dates parsed, no HTML conversion, so it compares with the parse column. "absent"
//! when fastfeedparser is not installed (`bash scripts/bench-deps.sh`); left out when
//! `GAZETTE_BENCH_SECONDS` is 0.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gazette::config::{Location, Source};
use gazette::normalize::{self, FeedContext};
use gazette::parse::{self, ParseLimits};
use url::Url;

/// What the library calls below take besides the bytes: built once, outside the timed loops.
struct Setup {
    base: Url,
    source: Source,
    limits: ParseLimits,
    first_seen: DateTime<Utc>,
}

// The only calls into the library. When the parser's API changes, these two are what to adapt;
// the corpus and the timing stay as they are, so the numbers stay comparable. Never inlined, so
// that a profiler can tell the two steps apart and callgrind can dump after each (RESULTS.md).

/// Parses one document; the number of entries.
#[inline(never)]
fn parse_only(bytes: &[u8], setup: &Setup) -> Result<usize, parse::NotAFeed> {
    let parsed = parse::parse_feed(bytes, None, Some(&setup.base), &setup.limits)?;
    Ok(black_box(parsed).feed.entries.len())
}

/// Parses one document and normalizes its entries as the pipeline does; the number of articles.
#[inline(never)]
fn parse_and_normalize(bytes: &[u8], setup: &Setup) -> Result<usize, parse::NotAFeed> {
    let parsed = parse::parse_feed(bytes, None, Some(&setup.base), &setup.limits)?;
    let ctx = FeedContext::new(&parsed.feed, Some(&setup.base));
    let mut articles = 0;
    for entry in &parsed.feed.entries {
        if let Ok(identity) = normalize::identify(entry, &setup.source, &ctx) {
            let article =
                normalize::normalize(entry, identity, &setup.source, &ctx, setup.first_seen, None);
            black_box(article);
            articles += 1;
        }
    }
    Ok(articles)
}

/// Runs of each measurement; the median is reported, so disturbed runs do not count.
const RUNS: usize = 9;

/// One row of the table: documents processed one after the other in each pass.
struct Case {
    name: String,
    docs: Vec<Vec<u8>>,
    /// Built here, so every entry is known to make an article.
    generated: bool,
}

impl Case {
    fn one(name: &str, doc: String) -> Self {
        Self {
            name: name.to_owned(),
            docs: vec![doc.into_bytes()],
            generated: true,
        }
    }

    fn bytes(&self) -> usize {
        self.docs.iter().map(Vec::len).sum()
    }
}

/// The HTML of one article's full text: eight paragraphs with markup and a relative link, as in
/// the scale benchmark, so that conversion to Markdown has work to do: 2.3 KB of HTML, 2.8 KB per
/// entry with the rest of an RSS item.
fn article_html(i: usize) -> String {
    let mut html = String::with_capacity(3200);
    for p in 0..8 {
        let _ = write!(
            html,
            "<p>Paragraph {p} of story {i}. <strong>Key phrase {p}</strong> appears among ordinary words, with a \
             <a href=\"/related/{i}-{p}\">related link</a> and some <em>emphasis</em>, so that conversion has work to do. \
             The rest of the paragraph pads the text to the length of a real one, about as long as this.</p>"
        );
    }
    html
}

/// HTML as the text of an XML element (Atom `type="html"`, escaped RSS content).
fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Day of month and minute of entry `i`, so that dates differ and stay valid.
fn day_minute(i: usize) -> (usize, usize) {
    (1 + i % 28, i % 60)
}

const SUMMARY: &str =
    "a short paragraph that says what the article is about, in a sentence or two.";

/// RSS 2.0 with the full text in `content:encoded` CDATA: byte for byte the feed of one source
/// (`s0`) in the scale benchmark.
fn rss2_full(entries: usize) -> String {
    let mut xml = String::with_capacity(entries * 3600 + 512);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
         <title>Source 0</title><link>https://s0.example.org/</link><description>Bench source</description>",
    );
    for i in 0..entries {
        let (day, m) = day_minute(i);
        let _ = write!(
            xml,
            "<item><title>Story {i} from source 0: markets, weather &amp; sport</title>\
             <link>https://s0.example.org/news/{i}</link><guid>https://s0.example.org/news/{i}</guid>\
             <pubDate>Mon, {day:02} Jan 2024 10:{m:02}:00 +0000</pubDate><category>bench</category>\
             <description>Summary of story {i}: {SUMMARY}</description>\
             <content:encoded><![CDATA[{}]]></content:encoded></item>",
            article_html(i)
        );
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// Atom 1.0 with authors and the full text as `type="html"` (escaped) or `type="xhtml"` (inline
/// elements, which the parser has to hand back as markup).
fn atom_full(entries: usize, xhtml: bool) -> String {
    let mut xml = String::with_capacity(entries * 4200 + 512);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\
         <title type=\"text\">Atom source</title><id>tag:atom.example.org,2024:feed</id>\
         <link rel=\"alternate\" type=\"text/html\" href=\"https://atom.example.org/\"/>\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"https://atom.example.org/feed.atom\"/>\
         <updated>2024-01-28T10:00:00Z</updated>",
    );
    for i in 0..entries {
        let (day, m) = day_minute(i);
        let a = i % 7;
        let content = if xhtml {
            format!(
                "<content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div></content>",
                article_html(i)
            )
        } else {
            format!(
                "<content type=\"html\">{}</content>",
                escape_xml(&article_html(i))
            )
        };
        let _ = write!(
            xml,
            "<entry><id>tag:atom.example.org,2024:story-{i}</id>\
             <title type=\"text\">Story {i}: markets, weather &amp; sport</title>\
             <link rel=\"alternate\" type=\"text/html\" href=\"https://atom.example.org/news/{i}\"/>\
             <published>2024-01-{day:02}T10:{m:02}:00Z</published><updated>2024-01-{day:02}T11:{m:02}:00+01:00</updated>\
             <author><name>Author {a}</name><email>author{a}@atom.example.org</email><uri>https://atom.example.org/people/{a}</uri></author>\
             <category term=\"bench\"/><summary type=\"text\">Summary of story {i}: {SUMMARY}</summary>{content}</entry>"
        );
    }
    xml.push_str("</feed>\n");
    xml
}

/// RSS 1.0 (RDF) with Dublin Core dates and creators, and the full text escaped in
/// `content:encoded`, as RDF feeds that carry it do.
fn rss1_full(entries: usize) -> String {
    let mut xml = String::with_capacity(entries * 4200 + 512);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
         xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"https://rdf.example.org/index.rdf\">\
         <title>RDF source</title><link>https://rdf.example.org/</link><description>Bench source</description>\
         <dc:language>en</dc:language><dc:date>2024-01-28T10:00:00Z</dc:date><items><rdf:Seq>",
    );
    for i in 0..entries {
        let _ = write!(
            xml,
            "<rdf:li rdf:resource=\"https://rdf.example.org/news/{i}\"/>"
        );
    }
    xml.push_str("</rdf:Seq></items></channel>");
    for i in 0..entries {
        let (day, m) = day_minute(i);
        let _ = write!(
            xml,
            "<item rdf:about=\"https://rdf.example.org/news/{i}\"><title>Story {i}: markets, weather &amp; sport</title>\
             <link>https://rdf.example.org/news/{i}</link><description>Summary of story {i}: {SUMMARY}</description>\
             <dc:creator>Author {}</dc:creator><dc:subject>bench</dc:subject>\
             <dc:date>2024-01-{day:02}T10:{m:02}:00+01:00</dc:date>\
             <content:encoded>{}</content:encoded></item>",
            i % 7,
            escape_xml(&article_html(i))
        );
    }
    xml.push_str("</rdf:RDF>\n");
    xml
}

/// JSON Feed 1.1 with the full text in `content_html`.
fn json_feed(entries: usize) -> String {
    let items: Vec<serde_json::Value> = (0..entries)
        .map(|i| {
            let (day, m) = day_minute(i);
            let url = format!("https://json.example.org/news/{i}");
            serde_json::json!({
                "id": url,
                "url": url,
                "title": format!("Story {i}: markets, weather & sport"),
                "summary": format!("Summary of story {i}: {SUMMARY}"),
                "content_html": article_html(i),
                "date_published": format!("2024-01-{day:02}T10:{m:02}:00Z"),
                "authors": [{"name": format!("Author {}", i % 7)}],
                "tags": ["bench"],
            })
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON source",
        "home_page_url": "https://json.example.org/",
        "feed_url": "https://json.example.org/feed.json",
        "language": "en",
        "items": items,
    })
    .to_string()
}

/// RSS 2.0 of headlines: many small items without full text, where per-entry costs dominate.
fn rss2_headlines(entries: usize) -> String {
    let mut xml = String::with_capacity(entries * 400 + 512);
    xml.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Headlines</title><link>https://news.example.org/</link><description>Bench source</description>",
    );
    for i in 0..entries {
        let (day, m) = day_minute(i);
        let _ = write!(
            xml,
            "<item><title>Headline {i}: council approves budget for the new bridge</title>\
             <link>https://news.example.org/{i}</link><guid isPermaLink=\"true\">https://news.example.org/{i}</guid>\
             <pubDate>Mon, {day:02} Jan 2024 10:{m:02}:00 +0000</pubDate>\
             <description>Short summary of headline {i}, one sentence long.</description></item>"
        );
    }
    xml.push_str("</channel></rss>\n");
    xml
}

fn corpus() -> Vec<Case> {
    vec![
        Case::one("rss2-full", rss2_full(200)),
        Case::one("atom-html", atom_full(200, false)),
        Case::one("atom-xhtml", atom_full(200, true)),
        Case::one("rss1-rdf", rss1_full(200)),
        Case::one("jsonfeed", json_feed(200)),
        Case::one("rss2-headlines", rss2_headlines(1000)),
    ]
}

/// Every file directly in `dir`, in name order; files that are not feeds are left out, with a
/// note, so one stray file does not end the run. None when no file is left.
fn dir_case(dir: &Path, setup: &Setup) -> Option<Case> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    let mut docs = Vec::new();
    for path in paths {
        let doc = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match parse_only(&doc, setup) {
            Ok(_) => docs.push(doc),
            Err(e) => eprintln!("left out {}: {e}", path.display()),
        }
    }
    if docs.is_empty() {
        eprintln!("no feed in {}", dir.display());
        return None;
    }
    Some(Case {
        name: "dir".to_owned(),
        docs,
        generated: false,
    })
}

/// A measured step: one of the two functions at the top.
type Step = fn(&[u8], &Setup) -> Result<usize, parse::NotAFeed>;

/// CPU time of `iterations` passes over `docs`, and the count `step` returned in one pass.
fn run(docs: &[Vec<u8>], setup: &Setup, step: Step, iterations: u32) -> (Duration, usize) {
    let start = cpu_time();
    let mut count = 0;
    for _ in 0..iterations {
        count = docs
            .iter()
            .map(|doc| step(black_box(doc), setup).expect("parses"))
            .sum();
    }
    (cpu_time() - start, black_box(count))
}

/// One case and step, and the CPU time per pass of each of its runs.
struct Measurement<'a> {
    case: &'a Case,
    step: Step,
    /// Passes over the case's documents in one run.
    iterations: u32,
    /// What the step returned for the case: its entries, or its normalized articles.
    count: usize,
    times: Vec<Duration>,
}

impl Measurement<'_> {
    fn median(&mut self) -> Duration {
        self.times.sort();
        self.times[self.times.len() / 2]
    }
}

/// CPU time of this process, all threads. Unlike the wall clock it leaves out the time spent
/// waiting while other processes have the cores, which on a shared machine varied more than the
/// parser's own cost.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the provided timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(
        u64::try_from(ts.tv_sec).expect("non-negative"),
        u32::try_from(ts.tv_nsec).expect("below a second"),
    )
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

/// The reference line: Python fastfeedparser over the same documents (see the top of the file).
fn fastfeedparser_reference(cases: &[Case], seconds: f64) {
    let dir = tempfile::tempdir().expect("tempdir for the corpus files");
    let mut args = vec![
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/parse_fastfeedparser.py"
        )
        .to_owned(),
        seconds.to_string(),
        RUNS.to_string(),
    ];
    for (i, case) in cases.iter().enumerate() {
        let folder = dir.path().join(format!("{i}"));
        std::fs::create_dir(&folder).expect("corpus folder");
        for (j, doc) in case.docs.iter().enumerate() {
            // Zero-padded, so that name order is the bench's order.
            std::fs::write(folder.join(format!("{j:06}")), doc).expect("corpus file");
        }
        args.push(format!("{}={}", case.name, folder.display()));
    }
    let python = std::env::var("GAZETTE_BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let absent = "absent (install: bash scripts/bench-deps.sh, or pip install fastfeedparser)";
    print!(
        "\nreference, not Gazette: Python fastfeedparser, parse only, CPU time of the parse calls: "
    );
    let output = match Command::new(&python).args(&args).output() {
        Ok(output) => output,
        Err(e) => {
            println!("{absent}; {python}: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(3) {
        println!("{absent}");
        return;
    }
    if !output.status.success() {
        println!(
            "failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return;
    }
    let mut lines = stdout.lines();
    println!("{}", lines.next().unwrap_or_default());
    println!(
        "{:<16} {:>10} {:>8} {:>11}",
        "corpus", "bytes", "entries", "parse MB/s"
    );
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields[..] {
            [name, bytes, entries, rate] => {
                println!("{name:<16} {bytes:>10} {entries:>8} {rate:>11}");
            }
            _ => println!("{}", line.replace('\t', " ")),
        }
    }
}

fn main() {
    let seconds = std::env::var("GAZETTE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.5);
    let base = Url::parse("https://bench.example.org/feed.xml").expect("base URL");
    let setup = Setup {
        source: Source::adhoc("bench", Location::Http(base.clone())),
        base,
        limits: ParseLimits::default(),
        first_seen: DateTime::<Utc>::UNIX_EPOCH,
    };
    let mut cases = corpus();
    if let Some(dir) = std::env::var_os("GAZETTE_BENCH_FEEDS") {
        cases.extend(dir_case(Path::new(&dir), &setup));
    }

    if seconds > 0.0 {
        println!(
            "gazette parse bench: median of {RUNS} runs, {seconds} s of CPU per measurement; MB = 10^6 bytes"
        );
    } else {
        println!(
            "gazette parse bench: one pass per measurement, after one to warm up; MB = 10^6 bytes"
        );
    }
    // The first pass of each case and step warms caches and builds lazy statics; a second one
    // sizes the runs: as many passes as take about seconds / RUNS.
    let mut measurements = Vec::new();
    for case in &cases {
        for step in [parse_only as Step, parse_and_normalize] {
            let (first, count) = run(&case.docs, &setup, step, 1);
            let once = if seconds > 0.0 {
                run(&case.docs, &setup, step, 1).0
            } else {
                first
            };
            let iterations = (seconds / RUNS as f64 / once.as_secs_f64().max(1e-9)).round();
            measurements.push(Measurement {
                case,
                step,
                iterations: (iterations as u32).max(1),
                count,
                times: Vec::new(),
            });
        }
    }
    // Rounds take every case and step in turn, so that a burst of load from elsewhere on the
    // machine costs one run of many measurements, which the median drops, rather than most runs
    // of one.
    let runs = if seconds > 0.0 { RUNS } else { 1 };
    for _ in 0..runs {
        for m in &mut measurements {
            let (time, _) = run(&m.case.docs, &setup, m.step, m.iterations);
            m.times.push(time / m.iterations);
        }
    }

    println!(
        "{:<16} {:>10} {:>8} {:>11} {:>21}",
        "corpus", "bytes", "entries", "parse MB/s", "parse+normalize MB/s"
    );
    let (mut bytes, mut entries) = (0, 0);
    let (mut parse_time, mut normalize_time) = (Duration::ZERO, Duration::ZERO);
    for pair in measurements.chunks_mut(2) {
        let [parsing, normalizing] = pair else {
            unreachable!("two steps per case")
        };
        let (case, count) = (parsing.case, parsing.count);
        // A generated entry that is skipped would make normalizing look faster than it is.
        assert!(
            !case.generated || normalizing.count == count,
            "{}: {} of {count} entries normalized",
            case.name,
            normalizing.count
        );
        let (parsed, normalized) = (parsing.median(), normalizing.median());
        println!(
            "{:<16} {:>10} {:>8} {:>11.1} {:>21.1}",
            case.name,
            case.bytes(),
            count,
            mb_per_s(case.bytes(), parsed),
            mb_per_s(case.bytes(), normalized)
        );
        bytes += case.bytes();
        entries += count;
        parse_time += parsed;
        normalize_time += normalized;
    }
    println!(
        "{:<16} {:>10} {:>8} {:>11.1} {:>21.1}",
        "total",
        bytes,
        entries,
        mb_per_s(bytes, parse_time),
        mb_per_s(bytes, normalize_time)
    );
    // Not under callgrind's single pass: the numbers would be of no use there.
    if seconds > 0.0 {
        fastfeedparser_reference(&cases, seconds);
    }
}
