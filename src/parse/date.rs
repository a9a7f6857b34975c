//! Dates as feeds write them: RFC 822 and its real-world variants, RFC 3339, W3C-DTF, ISO 8601.
//!
//! Every date element a feed can carry (RSS `pubDate`/`lastBuildDate`, `dc:date`, `dcterms:*`,
//! Atom `published`/`updated`, Atom 0.3 `issued`/`modified`/`created`, JSON Feed
//! `date_published`/`date_modified`) ends up here as text. The specifications name two
//! grammars, but publishers write dozens, so [`parse_date`] is deliberately forgiving about
//! *shape* and strict about *meaning*: it accepts any layout whose fields can be told apart
//! without guessing, and returns `None` rather than an instant it would have to invent.
//!
//! # How it works
//!
//! The text is first normalized into a small stack buffer: ASCII is lowercased, every run of
//! Unicode whitespace (including the no-break space HTML-minded publishers leave behind) becomes
//! one space, and anything else outside ASCII rejects the input. No date grammar we read uses
//! non-ASCII, and rejecting it up front means the parsers below work on bytes and never slice
//! inside a character. Inputs whose normalized form is longer than `MAX_LEN` bytes are
//! rejected, so the parsers never see more than that and the whole call is linear in the input
//! (whitespace around the date is skipped, not stored).
//!
//! Two hand-written parsers then run, each a single forward pass:
//!
//! 1. **ISO 8601 family** (text starting with digits, after an optional weekday): RFC 3339 and
//!    W3C-DTF with reduced precision (`2004`, `2004-01`, `2004-01-01`), basic format
//!    (`20040101T194821Z`), ordinal (`2004-032`) and week (`2004-W01-1`) dates, `/` as the date
//!    separator, `T`, `t` or a space before the time, fractions of any length, AM/PM, and any
//!    zone the RFC 822 reader knows.
//! 2. **RFC 822 family**: RFC 822/1123/2822, RFC 850, asctime/ctime, JavaScript's
//!    `Date.toString()` and the free-form "Jan 4, 2004 4:29pm" kind. It walks words and
//!    numbers and files each by what it is (weekday, month name, time, zone, day, year), so field
//!    order does not matter as long as a month *name* is present.
//!
//! # Rules chosen
//!
//! * **No zone means UTC.** A feed gives no reliable hint of the publisher's local zone, and
//!   using the zone of the machine running Gazette would make the same feed yield different
//!   instants on different hosts. UTC is the one reading that is the same everywhere, and it
//!   is what RFC 2822 does with an offset it calls unknown (`-0000`): the time is taken as
//!   UTC-based. The error, when the publisher meant local time, is bounded by their offset.
//! * **Two-digit years** follow RFC 2822 §4.3, the rule for RFC 822's obsolete two-digit
//!   years: `00`–`49` are 2000–2049 and `50`–`99` are 1950–1999. A window is unavoidable (the
//!   century is not written), and this one is the standard's, so every conforming reader
//!   agrees. Three-digit years get 1900 added, also per §4.3; they are what a program printing
//!   C's `tm_year` (years since 1900) without adjustment writes. Short years are only read in
//!   the RFC 822 family; ISO dates always need four digits.
//! * **Military single-letter zones** (`A`–`I`, `K`–`Y`) are read as UTC, like `Z`. RFC 822's
//!   table gave them offsets with the sign inverted relative to military usage; RFC 1123 §5.2.14
//!   and RFC 2822 §4.3 therefore say they carry no usable information and should be treated as
//!   `-0000`. Whichever sign a publisher meant, UTC is at most 12 hours off, where picking the
//!   wrong table would be up to 24. `J` (military "local time") is not a zone and is rejected.
//! * **A numeric offset beats a zone name** when both are written (`+0000 GMT`, `GMT+2`,
//!   `MST-07:00`): the number is exact, names are ambiguous. Ambiguous names take the reading
//!   that dominates feeds: `CST` is US Central, `BST` British Summer Time, `IST` India
//!   (+05:30). An unknown name rejects the date rather than silently becoming UTC.
//! * **Broken offsets** are read as hours and minutes where that is unambiguous: `+0`/`+05`
//!   are whole hours, `+530` is 5:30, `+00:0` is zero; hours must be below 24 and minutes
//!   below 60.
//! * **Bare numbers are dates, never Unix timestamps.** A digit string is read only as an
//!   ISO 8601 date: `YYYY`, `YYYYDDD` (ordinal) or `YYYYMMDD`. Any other length (so every
//!   9-or-more-digit timestamp) is `None`. A number in JSON is a different type and is handled
//!   by the JSON reader, which knows it is a timestamp.
//! * **Numeric day/month orders other than year-first** (`04/01/2004`) are rejected: the
//!   US and European readings disagree and nothing in the text settles it.
//! * **Leap seconds** (`:60`) clamp to `:59`, since `DateTime<Utc>` cannot hold them usefully.
//!   `24:00:00` (ISO 8601's end of day) is the next midnight.
//! * **Years** must be 1000–9999, as written and after conversion to UTC, so the result always
//!   prints as a four-digit RFC 3339 year. `0000-00-00` and similar placeholders are `None`.
//! * **Weekdays are ignored**, abbreviated past three letters (`Thurs`), full (`Saturday`),
//!   repeated, or wrong for the date: the day-month-year fields are what the publisher meant,
//!   and a mismatch is more likely a bad weekday than a bad date. A leading word ending in
//!   `day` counts as a misspelled weekday (`Wendesday,`).
//! * **Extra text** is tolerated only where it cannot change the instant: a parenthesized
//!   comment (`+0000 (UTC)`), a zone name after a numeric offset, a weekday, and the word `at`
//!   before a time (`Jan 4, 2004 at 4:29pm`; elsewhere `AT` is Atlantic Time). Any other
//!   unknown word rejects the date.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};

/// Longest input, in characters, worth reading. The longest real forms (JavaScript's
/// `Date.toString()` with a spelled-out zone name in parentheses) stay well under 100.
const MAX_LEN: usize = 160;

/// Longest word the RFC 822 reader keeps; `september` and `wednesday` are the longest it knows.
const MAX_WORD: usize = 12;

/// Earliest and latest year accepted (see the module documentation).
const YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

/// The instant `text` names, or `None` when it names none that can be read.
pub fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let mut buf = [0u8; MAX_LEN];
    let len = normalize(text, &mut buf)?;
    let s = buf.get(..len)?;
    if s.is_empty() {
        return None;
    }
    // "Mon, 2006-01-02 15:04" is an ISO date behind a weekday.
    let iso = skip_leading_weekday(s);
    if iso.first().is_some_and(u8::is_ascii_digit)
        && let Some(instant) = parse_iso(iso)
    {
        return Some(instant);
    }
    parse_loose(s)
}

/// Copies `text` into `buf` lowercased, with whitespace runs collapsed to one space and trimmed.
/// Returns the length used, or `None` when the text holds a non-ASCII, non-space character, a
/// control character, or does not fit.
fn normalize(text: &str, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut len = 0;
    let mut space = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            i += 1;
            if b.is_ascii_whitespace() || b == 0x0b {
                space = len > 0;
                continue;
            }
            if b.is_ascii_control() {
                return None;
            }
            if space {
                *buf.get_mut(len)? = b' ';
                len += 1;
                space = false;
            }
            *buf.get_mut(len)? = b.to_ascii_lowercase();
            len += 1;
        } else {
            // Outside ASCII only whitespace is accepted. `i` always sits on a character
            // boundary (it advances by whole characters), so `get` cannot fail on one.
            let ch = text.get(i..)?.chars().next()?;
            if !ch.is_whitespace() {
                return None;
            }
            i += ch.len_utf8();
            space = len > 0;
        }
    }
    Some(len)
}

/// A position in normalized input. All reads are bounds-checked; nothing here can panic.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.pos.checked_add(ahead)?).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn digits(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_digit())
    }

    fn letters(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_lowercase())
    }

    /// Skips a parenthesized comment (RFC 822 allows them; servers write `+0000 (UTC)`),
    /// nested or not. An unclosed comment runs to the end.
    fn skip_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// The value of 1 to 9 ASCII digits.
fn num(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Nanoseconds of a decimal fraction's digits. Digits past the ninth are below chrono's
/// resolution and dropped, so fractions of any length are accepted.
fn fraction_nanos(digits: &[u8]) -> u32 {
    let mut nanos = 0;
    let mut scale = 100_000_000;
    for &b in digits.iter().take(9) {
        nanos += u32::from(b.saturating_sub(b'0')) * scale;
        scale /= 10;
    }
    nanos
}

fn check_year(year: i32) -> Option<i32> {
    YEARS.contains(&year).then_some(year)
}

/// A four-digit year as written in an ISO date.
fn year4(digits: &[u8]) -> Option<i32> {
    if digits.len() != 4 {
        return None;
    }
    check_year(i32::try_from(num(digits)?).ok()?)
}

/// A year written in an RFC 822-style date (see the module documentation for the rules).
fn expand_year(value: u32, digits: usize) -> Option<i32> {
    let year = match digits {
        // RFC 2822 §4.3: 00-49 are 2000-2049, 50-99 are 1950-1999.
        2 if value < 50 => 2000 + value,
        2 => 1900 + value,
        // RFC 2822 §4.3 again: a three-digit year counts from 1900, as C's tm_year does.
        3 => 1900 + value,
        4 => value,
        _ => return None,
    };
    check_year(i32::try_from(year).ok()?)
}

fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// A wall-clock time as written, before validation.
#[derive(Clone, Copy)]
struct Clock {
    hour: u32,
    minute: u32,
    second: u32,
    nano: u32,
}

const MIDNIGHT: Clock = Clock {
    hour: 0,
    minute: 0,
    second: 0,
    nano: 0,
};

/// Moves a 12-hour clock reading to 24 hours. A 24-hour reading with a redundant `PM`
/// (`14:02 PM`) can only mean one thing and is kept; `13:00 AM` and `0:30 PM` contradict
/// themselves and are rejected.
fn apply_meridiem(clock: Clock, pm: bool) -> Option<Clock> {
    let hour = match (clock.hour, pm) {
        (12, false) => 0,
        (0..=11, false) => clock.hour,
        (1..=11, true) => clock.hour + 12,
        (12..=23, true) => clock.hour,
        _ => return None,
    };
    Some(Clock { hour, ..clock })
}

/// The UTC instant of a local date and time at `offset` seconds east of UTC.
fn assemble(date: NaiveDate, clock: Clock, offset: i32) -> Option<DateTime<Utc>> {
    let (date, hour) = if clock.hour == 24 {
        // ISO 8601's "end of day", 24:00:00, is the next day's midnight; 24:00:01 is nothing.
        if clock.minute != 0 || clock.second != 0 || clock.nano != 0 {
            return None;
        }
        (date.succ_opt()?, 0)
    } else {
        (date, clock.hour)
    };
    // A leap second cannot be represented usefully; the second before it is the closest instant.
    let second = if clock.second == 60 { 59 } else { clock.second };
    let time = NaiveTime::from_hms_nano_opt(hour, clock.minute, second, clock.nano)?;
    let utc = NaiveDateTime::new(date, time)
        .checked_sub_signed(TimeDelta::try_seconds(i64::from(offset))?)?;
    YEARS.contains(&utc.year()).then(|| utc.and_utc())
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

const MONTHS: [&[u8]; 12] = [
    b"january",
    b"february",
    b"march",
    b"april",
    b"may",
    b"june",
    b"july",
    b"august",
    b"september",
    b"october",
    b"november",
    b"december",
];

/// A month written as its full name or any prefix of at least three letters (`dec`, `sept`,
/// `decem`), in any case.
fn month_by_name(word: &[u8]) -> Option<u32> {
    // Matching fixed-size arrays compiles to byte comparisons, where slices would call memcmp
    // once per candidate; this runs for every word of every date.
    let month = match word.first_chunk::<3>()? {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    let full = MONTHS.get(usize::try_from(month - 1).ok()?)?;
    full.starts_with(word).then_some(month)
}

/// Whether `word` is a weekday, however abbreviated or misspelled after its third letter
/// (`thu`, `thurs`, `thursday`, `satruday`).
fn is_weekday(word: &[u8]) -> bool {
    matches!(
        word.first_chunk::<3>(),
        Some(b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun")
    )
}

/// `am`/`pm` (dots are removed before this): `Some(true)` for afternoon.
fn meridiem(word: &[u8]) -> Option<bool> {
    match word {
        b"am" => Some(false),
        b"pm" => Some(true),
        _ => None,
    }
}

/// Offset in seconds east of UTC of a zone name, lowercase.
fn zone_by_name(word: &[u8]) -> Option<i32> {
    const H: i32 = 3600;
    const M: i32 = 60;
    // Every name is at most four letters; padding to a fixed-size array lets the match below
    // compile to byte comparisons instead of a memcmp per candidate.
    let mut key = [b' '; 4];
    key.get_mut(..word.len())?.copy_from_slice(word);
    let offset = match &key {
        b"z   " | b"ut  " | b"utc " | b"gmt " | b"uct " | b"wet " => 0,
        // North America. The two-letter generic names ("ET") say nothing about daylight
        // saving; standard time is taken.
        b"est " | b"et  " => -5 * H,
        b"edt " => -4 * H,
        b"cst " | b"ct  " => -6 * H,
        b"cdt " => -5 * H,
        b"mst " | b"mt  " => -7 * H,
        b"mdt " => -6 * H,
        b"pst " | b"pt  " => -8 * H,
        b"pdt " => -7 * H,
        b"ast " | b"at  " => -4 * H,
        b"adt " => -3 * H,
        b"akst" => -9 * H,
        b"akdt" => -8 * H,
        b"hst " => -10 * H,
        b"hdt " => -9 * H,
        b"nst " => -(3 * H + 30 * M),
        b"ndt " => -(2 * H + 30 * M),
        // South America.
        b"brt " | b"art " => -3 * H,
        // Europe and Africa.
        b"west" | b"bst " | b"cet " | b"met " | b"mez " | b"wat " => H,
        b"cest" | b"mest" | b"mesz" | b"eet " | b"sast" | b"cat " => 2 * H,
        b"eest" | b"msk " | b"eat " => 3 * H,
        // Asia and Oceania.
        b"pkt " => 5 * H,
        b"ist " => 5 * H + 30 * M,
        b"ict " | b"wib " => 7 * H,
        b"hkt " | b"sgt " | b"awst" => 8 * H,
        b"jst " | b"kst " => 9 * H,
        b"acst" => 9 * H + 30 * M,
        b"aest" => 10 * H,
        b"acdt" => 10 * H + 30 * M,
        b"aedt" => 11 * H,
        b"nzst" => 12 * H,
        b"nzdt" => 13 * H,
        // Military letters: treated as UTC, see the module documentation. `J` is not a zone.
        [letter, b' ', b' ', b' '] if letter.is_ascii_lowercase() && *letter != b'j' => 0,
        _ => return None,
    };
    Some(offset)
}

/// Reads a signed numeric offset at the cursor: `+HH:MM`, `+HHMM`, `+HH`, `+H`, and the broken
/// `+HMM` (`+530`) and `+HH:M` (`+00:0`), plus `+HH:MM:SS`. Seconds east of UTC.
fn read_offset(c: &mut Cursor) -> Option<i32> {
    let negative = match c.peek() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return None,
    };
    c.pos += 1;
    let d = c.digits();
    let (hours, minutes, seconds) = match d.len() {
        1 | 2 => {
            let hours = num(d)?;
            let mut minutes = 0;
            let mut seconds = 0;
            if c.eat(b':') {
                let m = c.digits();
                if m.len() > 2 {
                    return None;
                }
                minutes = num(m)?;
                if c.eat(b':') {
                    let s = c.digits();
                    if s.len() != 2 {
                        return None;
                    }
                    seconds = num(s)?;
                }
            }
            (hours, minutes, seconds)
        }
        3 => (num(d.get(..1)?)?, num(d.get(1..)?)?, 0),
        4 => (num(d.get(..2)?)?, num(d.get(2..)?)?, 0),
        _ => return None,
    };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let total = i32::try_from(hours * 3600 + minutes * 60 + seconds).ok()?;
    Some(if negative { -total } else { total })
}

/// Reads everything after an ISO time: nothing, or a zone (`z`, an offset, a name, a name with
/// an offset, an offset with a name), then an optional comment, then the end. Seconds east of
/// UTC; `0` when no zone is written.
fn zone_tail(s: &[u8]) -> Option<i32> {
    let mut c = Cursor::new(s);
    c.eat(b' ');
    let mut offset = 0;
    match c.peek() {
        None => return Some(0),
        Some(b'+' | b'-') => {
            offset = read_offset(&mut c)?;
            let before = c.pos;
            c.eat(b' ');
            if c.peek().is_some_and(|b| b.is_ascii_lowercase()) {
                // "+0000 GMT": the name only annotates the number, but must be a real one.
                zone_by_name(c.letters())?;
            } else {
                c.pos = before;
            }
        }
        Some(b) if b.is_ascii_lowercase() => {
            offset = zone_by_name(c.letters())?;
            let before = c.pos;
            c.eat(b' ');
            if matches!(c.peek(), Some(b'+' | b'-'))
                && c.peek_at(1).is_some_and(|b| b.is_ascii_digit())
            {
                // "UTC-05:00", "GMT+2": the number is the offset.
                offset = read_offset(&mut c)?;
            } else {
                c.pos = before;
            }
        }
        Some(b'(') => {}
        Some(_) => return None,
    }
    c.eat(b' ');
    if c.peek() == Some(b'(') {
        c.skip_comment();
        c.eat(b' ');
    }
    c.at_end().then_some(offset)
}

/// The input after a leading weekday and its comma, if there is one.
fn skip_leading_weekday(s: &[u8]) -> &[u8] {
    let mut c = Cursor::new(s);
    let word = c.letters();
    if word.is_empty() || !(is_weekday(word) || word.ends_with(b"day")) {
        return s;
    }
    c.eat(b',');
    c.eat(b' ');
    c.rest()
}

// ---------------------------------------------------------------------------------------------
// ISO 8601 family: RFC 3339, W3C-DTF, basic format, ordinal and week dates
// ---------------------------------------------------------------------------------------------

/// Reads an ISO 8601-style date, time and zone that make up all of `s`.
fn parse_iso(s: &[u8]) -> Option<DateTime<Utc>> {
    let mut c = Cursor::new(s);
    let (date, complete) = iso_date(&mut c)?;
    if c.at_end() {
        return assemble(date, MIDNIGHT, 0);
    }
    // Reduced-precision dates (`2004`, `2004-01`, `2004-W01`) carry no time or zone.
    if !complete {
        return None;
    }
    let mut spaced = c.eat(b' ');
    if spaced && c.rest().starts_with(b"at ") {
        // "2006-01-02 at 15:04:05"
        c.pos += 3;
        spaced = c.peek().is_some_and(|b| b.is_ascii_digit());
    }
    let t = !spaced && c.eat(b't');
    let clock = if (spaced || t) && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        let clock = iso_time(&mut c)?;
        let before = c.pos;
        c.eat(b' ');
        let pm = match c.take_while(|b| b.is_ascii_lowercase() || b == b'.') {
            b"am" | b"a.m." => Some(false),
            b"pm" | b"p.m." => Some(true),
            _ => None,
        };
        if let Some(pm) = pm {
            apply_meridiem(clock, pm)?
        } else {
            c.pos = before;
            clock
        }
    } else if spaced || c.peek() == Some(b'z') {
        // A date with a zone but no time ("2004-01-01 GMT", "2004-01-01Z"). A glued sign is
        // refused: "2013-01-27-01" is a malformed date, not an offset.
        MIDNIGHT
    } else {
        return None;
    };
    assemble(date, clock, zone_tail(c.rest())?)
}

/// Reads the date part. The flag says whether it is complete (has a day), which a time needs.
fn iso_date(c: &mut Cursor) -> Option<(NaiveDate, bool)> {
    let lead = c.digits();
    match lead.len() {
        4 => {}
        // Basic ordinal: YYYYDDD.
        7 => {
            let year = year4(lead.get(..4)?)?;
            return Some((NaiveDate::from_yo_opt(year, num(lead.get(4..)?)?)?, true));
        }
        // Basic calendar date: YYYYMMDD.
        8 => {
            let year = year4(lead.get(..4)?)?;
            let month = num(lead.get(4..6)?)?;
            let day = num(lead.get(6..)?)?;
            return Some((ymd(year, month, day)?, true));
        }
        // YYMMDD and friends are ambiguous, and longer runs are timestamps: neither is read.
        _ => return None,
    }
    let year = year4(lead)?;
    match c.peek() {
        // Basic week date: YYYYWww or YYYYWwwD.
        Some(b'w') => {
            c.pos += 1;
            let d = c.digits();
            match d.len() {
                2 => Some((week_date(year, num(d)?, 1)?, false)),
                3 => Some((week_date(year, num(d.get(..2)?)?, num(d.get(2..)?)?)?, true)),
                _ => None,
            }
        }
        Some(sep @ (b'-' | b'/')) => {
            c.pos += 1;
            if sep == b'-' && c.eat(b'w') {
                // Extended week date: YYYY-Www or YYYY-Www-D.
                let week = c.digits();
                if week.len() != 2 {
                    return None;
                }
                let week = num(week)?;
                if !c.eat(b'-') {
                    return Some((week_date(year, week, 1)?, false));
                }
                let day = c.digits();
                if day.len() != 1 {
                    return None;
                }
                return Some((week_date(year, week, num(day)?)?, true));
            }
            let m = c.digits();
            match m.len() {
                // W3C-DTF wants two digits; one is unambiguous after a four-digit year.
                1 | 2 => {
                    let month = num(m)?;
                    if !c.eat(sep) {
                        return Some((ymd(year, month, 1)?, false));
                    }
                    let d = c.digits();
                    if d.len() > 2 {
                        return None;
                    }
                    Some((ymd(year, month, num(d)?)?, true))
                }
                // Google once wrote a zero-padded three-digit month ("2003-012-31"); a
                // three-digit field followed by another field can only be that.
                3 if sep == b'-' && c.peek() == Some(b'-') && m.first() == Some(&b'0') => {
                    c.pos += 1;
                    let d = c.digits();
                    if d.len() != 2 {
                        return None;
                    }
                    Some((ymd(year, num(m.get(1..)?)?, num(d)?)?, true))
                }
                // Extended ordinal: YYYY-DDD.
                3 if sep == b'-' => Some((NaiveDate::from_yo_opt(year, num(m)?)?, true)),
                _ => None,
            }
        }
        _ => Some((ymd(year, 1, 1)?, false)),
    }
}

/// The date of ISO week `week`, day `day` (1 = Monday) of ISO week-year `year`.
fn week_date(year: i32, week: u32, day: u32) -> Option<NaiveDate> {
    let weekday = match day {
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        6 => Weekday::Sat,
        7 => Weekday::Sun,
        _ => return None,
    };
    NaiveDate::from_isoywd_opt(year, week, weekday)
}

/// Reads `HH[:MM[:SS[.fff]]]` or basic `HHMM[SS[.fff]]`.
fn iso_time(c: &mut Cursor) -> Option<Clock> {
    let h = c.digits();
    let (hour, minute, second, has_seconds) = match h.len() {
        1 | 2 => {
            let hour = num(h)?;
            if c.eat(b':') {
                let m = c.digits();
                if m.len() != 2 {
                    return None;
                }
                if c.eat(b':') {
                    let s = c.digits();
                    if s.len() != 2 {
                        return None;
                    }
                    (hour, num(m)?, num(s)?, true)
                } else {
                    (hour, num(m)?, 0, false)
                }
            } else {
                (hour, 0, 0, false)
            }
        }
        4 => (num(h.get(..2)?)?, num(h.get(2..)?)?, 0, false),
        6 => (
            num(h.get(..2)?)?,
            num(h.get(2..4)?)?,
            num(h.get(4..)?)?,
            true,
        ),
        _ => return None,
    };
    let mut nano = 0;
    if has_seconds
        && matches!(c.peek(), Some(b'.' | b','))
        && c.peek_at(1).is_some_and(|b| b.is_ascii_digit())
    {
        c.pos += 1;
        nano = fraction_nanos(c.digits());
    }
    Some(Clock {
        hour,
        minute,
        second,
        nano,
    })
}

// ---------------------------------------------------------------------------------------------
// RFC 822 family: RFC 822/1123/2822/850, asctime, and free-form dates with a month name
// ---------------------------------------------------------------------------------------------

/// What the previous item was, to tell an offset's sign from a dash between date fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    Time,
    Zone,
    Other,
}

/// A word with abbreviation dots removed (`p.m.` → `pm`, `dec.` → `dec`).
struct Word {
    buf: [u8; MAX_WORD],
    len: usize,
}

impl Word {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

fn read_word(c: &mut Cursor) -> Option<Word> {
    let mut word = Word {
        buf: [0; MAX_WORD],
        len: 0,
    };
    while let Some(b) = c.peek() {
        if b.is_ascii_lowercase() {
            *word.buf.get_mut(word.len)? = b;
            word.len += 1;
            c.pos += 1;
        } else if b == b'.' && word.len > 0 {
            c.pos += 1;
        } else {
            break;
        }
    }
    Some(word)
}

/// Whether a number comes next, after at most one space.
fn followed_by_number(c: &Cursor) -> bool {
    let next = if c.peek() == Some(b' ') { 1 } else { 0 };
    c.peek_at(next).is_some_and(|b| b.is_ascii_digit())
}

/// Reads `H:MM[:SS[.fff]]` (one or two digits each) for the RFC 822 reader.
fn loose_time(c: &mut Cursor) -> Option<Clock> {
    let field = |c: &mut Cursor| {
        let d = c.digits();
        if d.len() > 2 { None } else { num(d) }
    };
    let hour = field(c)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = field(c)?;
    let mut second = 0;
    let mut nano = 0;
    if c.eat(b':') {
        second = field(c)?;
        if c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            c.pos += 1;
            nano = fraction_nanos(c.digits());
        }
    }
    // "1:2:3:4" is not a time.
    if c.peek() == Some(b':') {
        return None;
    }
    Some(Clock {
        hour,
        minute,
        second,
        nano,
    })
}

/// Reads a date that names its month, with its other parts in any usual order: RFC 822 and its
/// descendants, asctime (`sun jan 4 16:29:06 2004`), `jan 4, 2004 4:29pm`, and so on.
fn parse_loose(s: &[u8]) -> Option<DateTime<Utc>> {
    let mut c = Cursor::new(s);
    let mut month = None;
    // Day and year, as (value, digit count), in the order written.
    let mut numbers = [(0u32, 0usize); 2];
    let mut count = 0;
    let mut clock: Option<Clock> = None;
    let mut pm = None;
    let mut offset = None;
    let mut named = None;
    let mut prev = Prev::Start;
    let mut space_before = false;

    while let Some(b) = c.peek() {
        match b {
            b' ' => {
                c.pos += 1;
                space_before = true;
                continue;
            }
            b'0'..=b'9' => {
                let start = c.pos;
                let d = c.digits();
                if c.peek() == Some(b':') {
                    if clock.is_some() {
                        return None;
                    }
                    c.pos = start;
                    clock = Some(loose_time(&mut c)?);
                    prev = Prev::Time;
                } else {
                    if d.len() > 4 {
                        return None;
                    }
                    *numbers.get_mut(count)? = (num(d)?, d.len());
                    count += 1;
                    // "16th", "1st": the suffix says nothing more.
                    if d.len() <= 2 {
                        let before = c.pos;
                        if !matches!(c.letters(), b"st" | b"nd" | b"rd" | b"th") {
                            c.pos = before;
                        }
                    }
                    prev = Prev::Other;
                }
            }
            b'a'..=b'z' => {
                let word = read_word(&mut c)?;
                let word = word.as_bytes();
                if let Some(m) = month_by_name(word) {
                    if month.replace(m).is_some() {
                        return None;
                    }
                    prev = Prev::Other;
                } else if let Some(after_noon) = meridiem(word) {
                    if clock.is_none() || pm.replace(after_noon).is_some() {
                        return None;
                    }
                    prev = Prev::Time;
                } else if word == b"at" && followed_by_number(&c) {
                    // "Apr 1 2024 at 10:00": English, not Atlantic Time (which ends a date).
                    prev = Prev::Other;
                } else if let Some(zone) = zone_by_name(word) {
                    if named.replace(zone).is_some() {
                        return None;
                    }
                    prev = Prev::Zone;
                } else if is_weekday(word) || (prev == Prev::Start && word.ends_with(b"day")) {
                    // Weekdays are ignored, even wrong or misspelled ones; a leading "...day"
                    // is taken as a weekday misspelled beyond recognition ("wendesday").
                    prev = Prev::Other;
                } else {
                    return None;
                }
            }
            b'+' | b'-' => {
                let digit_follows = c.peek_at(1).is_some_and(|b| b.is_ascii_digit());
                if digit_follows
                    && offset.is_none()
                    && (space_before || matches!(prev, Prev::Time | Prev::Zone))
                {
                    // "14:02:33-0500", "GMT+2", "2023 -0500": an offset.
                    offset = Some(read_offset(&mut c)?);
                    prev = Prev::Zone;
                } else if b == b'-'
                    && !space_before
                    && c.peek_at(1).is_some_and(|b| b.is_ascii_alphanumeric())
                {
                    // "16-Dec-2023": a dash between date fields.
                    c.pos += 1;
                    prev = Prev::Other;
                } else {
                    return None;
                }
            }
            b',' | b'/' | b'.' => {
                c.pos += 1;
                prev = Prev::Other;
            }
            b'(' => c.skip_comment(),
            _ => return None,
        }
        space_before = false;
    }

    let month = month?;
    let [(first, first_len), (second, second_len)] = numbers;
    if count != 2 {
        return None;
    }
    // The year is the long number; with two short ones the day comes first, as it does in both
    // "16 Dec 23" and "Dec 16 23".
    let ((day, day_len), (year, year_len)) = if first_len >= 3 && second_len <= 2 {
        ((second, second_len), (first, first_len))
    } else if first_len <= 2 {
        ((first, first_len), (second, second_len))
    } else {
        return None;
    };
    if day_len > 2 {
        return None;
    }
    let date = ymd(expand_year(year, year_len)?, month, day)?;
    let mut clock = clock.unwrap_or(MIDNIGHT);
    if let Some(after_noon) = pm {
        clock = apply_meridiem(clock, after_noon)?;
    }
    assemble(date, clock, offset.or(named).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::parse_date;
    use chrono::SecondsFormat;

    const NONE: Option<&str> = None;

    fn show(text: &str) -> Option<String> {
        parse_date(text).map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    /// Checks every case and reports all mismatches at once.
    fn check(cases: &[(&str, Option<&str>)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|&(input, want)| {
                let got = show(input);
                (got.as_deref() != want).then(|| format!("{input:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn rfc3339_and_w3cdtf() {
        check(&[
            ("2004", Some("2004-01-01T00:00:00Z")),
            ("2004-01", Some("2004-01-01T00:00:00Z")),
            ("2004-12", Some("2004-12-01T00:00:00Z")),
            ("2004-01-01", Some("2004-01-01T00:00:00Z")),
            ("2004-01-01T19:48Z", Some("2004-01-01T19:48:00Z")),
            ("2004-01-01T19:48:21Z", Some("2004-01-01T19:48:21Z")),
            ("2004-01-01T19:48:21+01:00", Some("2004-01-01T18:48:21Z")),
            ("2004-01-01T19:48:21-05:00", Some("2004-01-02T00:48:21Z")),
            ("2004-01-01T19:48:21.5Z", Some("2004-01-01T19:48:21.500Z")),
            (
                "2004-01-01T19:48:21.123456Z",
                Some("2004-01-01T19:48:21.123456Z"),
            ),
            (
                "2004-01-01T19:48:21.123456789123456Z",
                Some("2004-01-01T19:48:21.123456789Z"),
            ),
            ("2004-01-01T19:48:21,25Z", Some("2004-01-01T19:48:21.250Z")),
            ("2004-01-01 19:48:21Z", Some("2004-01-01T19:48:21Z")),
            ("2004-01-01t19:48:21z", Some("2004-01-01T19:48:21Z")),
            ("2004-01-01T19:48:21", Some("2004-01-01T19:48:21Z")),
            ("2004-01-01T19:48:21+0100", Some("2004-01-01T18:48:21Z")),
            ("2004-01-01T19:48:21+01", Some("2004-01-01T18:48:21Z")),
            ("2004-01-01T19:48:21 UTC", Some("2004-01-01T19:48:21Z")),
            ("2004-01-01T19:48:21GMT", Some("2004-01-01T19:48:21Z")),
            (
                "2004-01-01T19:48:21 UTC-05:00",
                Some("2004-01-02T00:48:21Z"),
            ),
            ("2004-01-01T19:48:21 EST", Some("2004-01-02T00:48:21Z")),
            (
                "2004-01-01T19:48:21+01:00 (CET)",
                Some("2004-01-01T18:48:21Z"),
            ),
            ("2003-12-31T10:14:55-08:00", Some("2003-12-31T18:14:55Z")),
            ("2003-12-31T18:14:55+08:00", Some("2003-12-31T10:14:55Z")),
            (
                "2007-04-23T23:25:47.538+10:00",
                Some("2007-04-23T13:25:47.538Z"),
            ),
            ("2004-02-28T18:14:55-08:00", Some("2004-02-29T02:14:55Z")),
            ("2003-02-28T18:14:55-08:00", Some("2003-03-01T02:14:55Z")),
            ("2000-02-28T18:14:55-08:00", Some("2000-02-29T02:14:55Z")),
            ("2004-07-08 23:56:58 -00:20", Some("2004-07-09T00:16:58Z")),
            ("2004-07-08 23:56:58", Some("2004-07-08T23:56:58Z")),
            ("2004-07-08 23:56:58.0", Some("2004-07-08T23:56:58Z")),
            ("2006-01-02T15:04:05-07:00:00", Some("2006-01-02T22:04:05Z")),
            ("2004-01-01Z", Some("2004-01-01T00:00:00Z")),
            ("2004-01-01 GMT", Some("2004-01-01T00:00:00Z")),
            ("  2004-01-01T19:48:21Z \n", Some("2004-01-01T19:48:21Z")),
        ]);
    }

    #[test]
    fn iso8601_basic_ordinal_week() {
        check(&[
            ("20040101", Some("2004-01-01T00:00:00Z")),
            ("20040101T194821Z", Some("2004-01-01T19:48:21Z")),
            ("20040101T1948+0100", Some("2004-01-01T18:48:00Z")),
            ("20040101T194821.25-0130", Some("2004-01-01T21:18:21.250Z")),
            ("2004-032", Some("2004-02-01T00:00:00Z")),
            ("2004032", Some("2004-02-01T00:00:00Z")),
            ("2004-366", Some("2004-12-31T00:00:00Z")),
            ("2003-366", NONE),
            ("2004-032T10:00Z", Some("2004-02-01T10:00:00Z")),
            ("2004-W01-1", Some("2003-12-29T00:00:00Z")),
            ("2004-W53-7", Some("2005-01-02T00:00:00Z")),
            ("2004W011", Some("2003-12-29T00:00:00Z")),
            ("2004-W01", Some("2003-12-29T00:00:00Z")),
            ("2004-W01-1T12:00Z", Some("2003-12-29T12:00:00Z")),
            ("2003-012-31T10:14:55+00:00", Some("2003-12-31T10:14:55Z")),
            ("2004-01-01T24:00:00Z", Some("2004-01-02T00:00:00Z")),
            ("2004-01-01T24:00:01Z", NONE),
            ("2004-1-2", Some("2004-01-02T00:00:00Z")),
        ]);
    }

    #[test]
    fn rfc822_core() {
        check(&[
            (
                "Sat, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            ("16 Dec 2023 14:02:33 GMT", Some("2023-12-16T14:02:33Z")),
            (
                "Saturday, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "saturday, 16 dec 2023 14:02:33 gmt",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "SAT, 16 DEC 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            // Wrong and misspelled weekdays are ignored.
            (
                "Fri, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Thurs, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Wendesday, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Sat, Sat, 16 Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            ("Sat, Dec 16 2023 02:02:33 PM", Some("2023-12-16T14:02:33Z")),
            ("Sat, Dec 16 2023 12:02:33 AM", Some("2023-12-16T00:02:33Z")),
            ("Sat, Dec 16 2023 12:02:33 PM", Some("2023-12-16T12:02:33Z")),
            ("Sat, 16 Dec 2023 14:02:33 PM", Some("2023-12-16T14:02:33Z")),
            ("Sat, 16 Dec 2023 13:02:33 AM", NONE),
            ("16 Dec 2023 14:02 GMT", Some("2023-12-16T14:02:00Z")),
            ("Thu, 01 Jan 2004 00:00 GMT", Some("2004-01-01T00:00:00Z")),
            ("Sat, 16 Dec 2023 14:02:33", Some("2023-12-16T14:02:33Z")),
            ("Thu, 01 Jan 2004", Some("2004-01-01T00:00:00Z")),
            (
                "Sat, 16 December 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Mon, 26 January 2004 16:31:00 GMT",
                Some("2004-01-26T16:31:00Z"),
            ),
            ("16 Sept 2023 08:00:00 GMT", Some("2023-09-16T08:00:00Z")),
            ("16 Sept. 2023 08:00:00 GMT", Some("2023-09-16T08:00:00Z")),
            ("16 sEp 2023 08:00:00 GMT", Some("2023-09-16T08:00:00Z")),
            ("16 Dec. 2023", Some("2023-12-16T00:00:00Z")),
            ("16-Dec-2023 14:02:33 GMT", Some("2023-12-16T14:02:33Z")),
            (
                "Sunday, 06-Nov-94 08:49:37 GMT",
                Some("1994-11-06T08:49:37Z"),
            ),
            (
                "Sat, 16, Dec 2023 14:02:33 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Mon, 13 Feb, 2012 06:28:00 UTC",
                Some("2012-02-13T06:28:00Z"),
            ),
            ("16th Dec 2023", Some("2023-12-16T00:00:00Z")),
            ("1st Jan 2004", Some("2004-01-01T00:00:00Z")),
            ("Dec 2nd, 2023", Some("2023-12-02T00:00:00Z")),
            ("23rd Dec 2023", Some("2023-12-23T00:00:00Z")),
            (
                "Fri,24 Nov 2023 18:28:36 -0000",
                Some("2023-11-24T18:28:36Z"),
            ),
            (
                "Thu,  5 Apr 2012 10:00:00 GMT",
                Some("2012-04-05T10:00:00Z"),
            ),
            (
                "Thu, 30 Apr 2015 08:57:00.25 GMT",
                Some("2015-04-30T08:57:00.250Z"),
            ),
            ("Mon, 2 Jan 2006 15:4:5 -0700", Some("2006-01-02T22:04:05Z")),
            (
                "Thu Aug 30 2012 17:26:16 +0200",
                Some("2012-08-30T15:26:16Z"),
            ),
        ]);
    }

    #[test]
    fn two_and_three_digit_years() {
        check(&[
            ("Sat, 16 Dec 23 14:02:33 GMT", Some("2023-12-16T14:02:33Z")),
            ("Thu, 01 Jan 04 19:48:21 GMT", Some("2004-01-01T19:48:21Z")),
            ("16 Dec 00", Some("2000-12-16T00:00:00Z")),
            ("16 Dec 49", Some("2049-12-16T00:00:00Z")),
            ("16 Dec 50", Some("1950-12-16T00:00:00Z")),
            ("Sun, 06 Nov 94 08:49:37 GMT", Some("1994-11-06T08:49:37Z")),
            ("Dec 16 99", Some("1999-12-16T00:00:00Z")),
            ("16 Dec 123 10:00 GMT", Some("2023-12-16T10:00:00Z")),
            ("16 Dec 5", NONE),
        ]);
    }

    #[test]
    fn named_zones() {
        let zones = [
            ("UT", "12:00:00"),
            ("UTC", "12:00:00"),
            ("GMT", "12:00:00"),
            ("Z", "12:00:00"),
            ("EST", "17:00:00"),
            ("EDT", "16:00:00"),
            ("CST", "18:00:00"),
            ("CDT", "17:00:00"),
            ("MST", "19:00:00"),
            ("MDT", "18:00:00"),
            ("PST", "20:00:00"),
            ("PDT", "19:00:00"),
            ("AST", "16:00:00"),
            ("ADT", "15:00:00"),
            ("AKST", "21:00:00"),
            ("HST", "22:00:00"),
            ("ET", "17:00:00"),
            ("PT", "20:00:00"),
            ("CET", "11:00:00"),
            ("CEST", "10:00:00"),
            ("MET", "11:00:00"),
            ("MEST", "10:00:00"),
            ("BST", "11:00:00"),
            ("IST", "06:30:00"),
            ("JST", "03:00:00"),
            ("KST", "03:00:00"),
            ("AEST", "02:00:00"),
            ("AEDT", "01:00:00"),
            ("NZST", "00:00:00"),
            ("MSK", "09:00:00"),
            ("EET", "10:00:00"),
            ("EEST", "09:00:00"),
            ("WET", "12:00:00"),
            ("WEST", "11:00:00"),
            ("NST", "15:30:00"),
        ];
        let cases: Vec<(String, String)> = zones
            .iter()
            .map(|(zone, utc)| {
                (
                    format!("Wed, 13 Mar 2024 12:00:00 {zone}"),
                    format!("2024-03-13T{utc}Z"),
                )
            })
            .collect();
        let cases: Vec<(&str, Option<&str>)> = cases
            .iter()
            .map(|(input, want)| (input.as_str(), Some(want.as_str())))
            .collect();
        check(&cases);
        check(&[
            (
                "Wed, 13 Mar 2024 12:00:00 est",
                Some("2024-03-13T17:00:00Z"),
            ),
            ("Wed, 13 Mar 2024 12:00:00EST", Some("2024-03-13T17:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 XYZ", NONE),
            ("Wed, 13 Mar 2024 12:00:00 GMT EST", NONE),
        ]);
    }

    #[test]
    fn military_zones_are_utc() {
        check(&[
            ("Wed, 13 Mar 2024 12:00:00 A", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 M", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 N", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 Y", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 Z", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 z", Some("2024-03-13T12:00:00Z")),
            ("Wed, 13 Mar 2024 12:00:00 J", NONE),
        ]);
    }

    #[test]
    fn numeric_offsets() {
        check(&[
            (
                "Sat, 16 Dec 2023 14:02:33 +0000",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 +00:00",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 -0500",
                Some("2023-12-16T19:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 -05:00",
                Some("2023-12-16T19:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 +00:0",
                Some("2023-12-16T14:02:33Z"),
            ),
            ("Sat, 16 Dec 2023 14:02:33 +0", Some("2023-12-16T14:02:33Z")),
            ("Sat, 16 Dec 2023 14:02:33 +5", Some("2023-12-16T09:02:33Z")),
            (
                "Sat, 16 Dec 2023 14:02:33 +530",
                Some("2023-12-16T08:32:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 +05:30",
                Some("2023-12-16T08:32:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 -07",
                Some("2023-12-16T21:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33-0500",
                Some("2023-12-16T19:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 GMT+2",
                Some("2023-12-16T12:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 GMT-01:01",
                Some("2023-12-16T15:03:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 UTC-05:00",
                Some("2023-12-16T19:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 MST-07:00",
                Some("2023-12-16T21:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 +0000 (UTC)",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 +0000 GMT",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Sat, 16 Dec 2023 14:02:33 -0500 (EST)",
                Some("2023-12-16T19:02:33Z"),
            ),
            ("Sat, 16 Dec 2023 -0500", Some("2023-12-16T05:00:00Z")),
            ("Sat, 16 Dec 2023 14:02:33 +2400", NONE),
            ("Sat, 16 Dec 2023 14:02:33 +0060", NONE),
            ("Sat, 16 Dec 2023 14:02:33 +12345", NONE),
            ("Sun, 16 Dec 2012 11:47:32 +zz:00", NONE),
            ("Sun, 16 Dec 2012 11:47:32 +00:zz", NONE),
            ("Sun, 31 Dec 9999 23:59:59 -9999", NONE),
            ("Sat, 16 Dec 2023 14:02:33 +0000 -0500", NONE),
        ]);
    }

    #[test]
    fn asctime() {
        check(&[
            ("Sun Jan  4 16:29:06 2004", Some("2004-01-04T16:29:06Z")),
            ("Sun Jan 04 16:29:06 2004", Some("2004-01-04T16:29:06Z")),
            ("Sun Jan  4 16:29:06 EST 2004", Some("2004-01-04T21:29:06Z")),
            (
                "Sun Jul 15 01:16:00 +0000 2012",
                Some("2012-07-15T01:16:00Z"),
            ),
            ("Sun Jan  4 16:29:06 2004 GMT", Some("2004-01-04T16:29:06Z")),
            ("Mon Jan 2 15:04 2006", Some("2006-01-02T15:04:00Z")),
        ]);
    }

    #[test]
    fn forms_from_the_wild() {
        check(&[
            ("2004-01-01 19:48:21", Some("2004-01-01T19:48:21Z")),
            ("Jan 4, 2004", Some("2004-01-04T00:00:00Z")),
            ("January 4 2004 4:29pm", Some("2004-01-04T16:29:00Z")),
            ("January 4, 2004 4:29 p.m.", Some("2004-01-04T16:29:00Z")),
            ("January 2, 2006, 3:04 a.m.", Some("2006-01-02T03:04:00Z")),
            ("2004/01/04 16:29:06", Some("2004-01-04T16:29:06Z")),
            ("2004/01/04", Some("2004-01-04T00:00:00Z")),
            (
                "04 Jan 2004 16:29:06 +0000 GMT",
                Some("2004-01-04T16:29:06Z"),
            ),
            ("Mon, 2006-01-02 15:04", Some("2006-01-02T15:04:00Z")),
            ("2006-01-02 03:04 PM", Some("2006-01-02T15:04:00Z")),
            ("2006-01-02 03:04 PM EST", Some("2006-01-02T20:04:00Z")),
            (
                "Mon Jan 02 2006 15:04:05 GMT-0700 (Mountain Standard Time)",
                Some("2006-01-02T22:04:05Z"),
            ),
            (
                "Monday, January 2, 2006 03:04 PM",
                Some("2006-01-02T15:04:00Z"),
            ),
            ("2006 January 02", Some("2006-01-02T00:00:00Z")),
            ("2004-Dec-16", Some("2004-12-16T00:00:00Z")),
            ("Apr 1 2024 at 10:00", Some("2024-04-01T10:00:00Z")),
            ("Apr 1, 2024 at 10:00 AT", Some("2024-04-01T14:00:00Z")),
            ("2006-01-02 at 15:04:05", Some("2006-01-02T15:04:05Z")),
            ("2006-01-02 at 3:04 pm PST", Some("2006-01-02T23:04:00Z")),
            ("2006-01-02 at noon", NONE),
            ("Jan 02 2006 03:04:05PM", Some("2006-01-02T15:04:05Z")),
            ("16\u{a0}Dec\u{a0}2023", Some("2023-12-16T00:00:00Z")),
            (
                "\t Sat, 16 Dec 2023 14:02:33 GMT\r\n",
                Some("2023-12-16T14:02:33Z"),
            ),
            (
                "Mon, 26 January 2004 16:31:00 ET",
                Some("2004-01-26T21:31:00Z"),
            ),
            (
                "Mon, 26 January 2004 16:31:00 AT",
                Some("2004-01-26T20:31:00Z"),
            ),
            // Numeric day/month orders cannot be read without guessing.
            ("04/01/2004", NONE),
            ("01/04/2004 16:29", NONE),
        ]);
    }

    #[test]
    fn leap_seconds_and_clock_limits() {
        check(&[
            ("2016-12-31T23:59:60Z", Some("2016-12-31T23:59:59Z")),
            ("2016-12-31T23:59:60.5Z", Some("2016-12-31T23:59:59.500Z")),
            (
                "Sat, 31 Dec 2016 23:59:60 GMT",
                Some("2016-12-31T23:59:59Z"),
            ),
            ("2003-12-31T25:14:55Z", NONE),
            ("2003-12-31T10:61:55Z", NONE),
            ("2003-12-31T10:14:61Z", NONE),
            ("Sat, 16 Dec 2023 25:00:00 GMT", NONE),
        ]);
    }

    #[test]
    fn invalid_values() {
        check(&[
            ("", NONE),
            ("   ", NONE),
            ("2004-13-01", NONE),
            ("2004-00-01", NONE),
            ("2004-01-32", NONE),
            ("2004-01-00", NONE),
            ("2003-02-29", NONE),
            ("2004-02-29", Some("2004-02-29T00:00:00Z")),
            ("2004-02-30", NONE),
            ("Feb 30 2004", NONE),
            ("30 Feb 2004 10:00 GMT", NONE),
            ("Sun, 99 Jun 2009 12:00:00 GMT", NONE),
            ("Sun, 32 Jan 2009 12:00:00 GMT", NONE),
            ("0000-00-00", NONE),
            ("0000-00-00 00:00:00", NONE),
            ("Tue, 00 Jan 0000 00:00:00", NONE),
            ("Tue, 00 Jan 2000 00:00:00", NONE),
            ("yesterday", NONE),
            ("today", NONE),
            ("N/A", NONE),
            ("null", NONE),
            ("-", NONE),
            ("Sun, 16 Dec 2012 1:2:3:4 GMT", NONE),
            ("Sun, 16 zzz 2012 11:47:32 GMT", NONE),
            ("Sun, Dec x 2012 11:47:32 GMT", NONE),
            ("Sun, 16 Dec zz 11:47:32 GMT", NONE),
            ("16 Dec", NONE),
            ("Dec 2023", NONE),
            ("2013-01-27-01", NONE),
            ("2013-01-28T11:30:00-06:00Textra", NONE),
            ("2013-xx-27", NONE),
            ("2013-01-28T09:xx:00Z", NONE),
            ("2013-01-28T09:00:00+00:xx", NONE),
            ("9999-12-31T23:59:59-99:99", NONE),
            ("22013", NONE),
            ("013", NONE),
            ("2004-01-01T", NONE),
            ("2004-01-01T19:48:21+", NONE),
            ("2004-01T10:00Z", NONE),
            ("Posted on 16 Dec 2023", NONE),
            ("16 Dec 2023 14:02:33 GMT and more", NONE),
        ]);
    }

    #[test]
    fn year_range() {
        check(&[
            ("1969-07-20T20:17:40Z", Some("1969-07-20T20:17:40Z")),
            (
                "Sun, 20 Jul 1969 20:17:40 GMT",
                Some("1969-07-20T20:17:40Z"),
            ),
            ("1000-01-01T00:00:00Z", Some("1000-01-01T00:00:00Z")),
            ("9999-12-31T23:59:59Z", Some("9999-12-31T23:59:59Z")),
            ("0999-12-31T23:59:59Z", NONE),
            ("10000-01-01", NONE),
            ("Thu, 01 Jan 0100 00:00:01 +0100", NONE),
            // Valid as written, but the instant falls outside the range.
            ("9999-12-31T23:00:00-05:00", NONE),
            ("1000-01-01T00:00:00+01:00", NONE),
        ]);
    }

    #[test]
    fn numbers_are_not_timestamps() {
        check(&[
            ("1700000000", NONE),
            ("123456789", NONE),
            ("1072915200000", NONE),
            ("200401", NONE),
            ("04", NONE),
            ("-1700000000", NONE),
            ("1700000000.5", NONE),
        ]);
    }

    #[test]
    fn unicode_is_rejected_cleanly() {
        check(&[
            ("二〇〇四年一月一日", NONE),
            ("２００４-01-01", NONE),
            ("2004-01-01T19:48:21Z\u{200b}", NONE),
            ("Κυρ, 11 Ιούλ 2004 12:00:00 EST", NONE),
            ("2004-01-01T19:48:21\u{3000}Z", Some("2004-01-01T19:48:21Z")),
            ("16 déc 2023", NONE),
            ("2004-01-01\u{0}", NONE),
        ]);
    }

    /// Every result printed as RFC 3339 reads back to the same instant.
    #[test]
    fn output_round_trips() {
        for seed in SEEDS {
            if let Some(instant) = parse_date(seed) {
                let printed = instant.to_rfc3339_opts(SecondsFormat::AutoSi, true);
                assert_eq!(parse_date(&printed), Some(instant), "{seed:?} -> {printed}");
                let rfc2822 = instant.to_rfc2822();
                if instant.timestamp_subsec_nanos() == 0 {
                    assert_eq!(parse_date(&rfc2822), Some(instant), "{seed:?} -> {rfc2822}");
                }
            }
        }
    }

    const SEEDS: &[&str] = &[
        "2004-01-01T19:48:21.123+01:00",
        "20040101T1948+0100",
        "2004-W01-1T00:00Z",
        "2004-032",
        "Sat, 16 Dec 2023 14:02:33 GMT",
        "Sat, Dec 16 2023 02:02:33 PM",
        "Sun Jan  4 16:29:06 2004",
        "04 Jan 2004 16:29:06 +0000 (GMT)",
        "January 4 2004 4:29p.m.",
        "Sunday, 06-Nov-94 08:49:37 GMT+05:30",
        "2004/01/04 16:29:06 UTC-05:00",
        "Mon, 2006-01-02 15:04",
        "16th Sept. 2023 23:59:60 +530",
    ];

    /// Every prefix, every single-character deletion, substitution and insertion of the seeds,
    /// plus pseudo-random strings over date-ish characters: none may panic.
    #[test]
    fn fuzz_no_panic() {
        const ALPHABET: &[char] = &[
            '0',
            '1',
            '2',
            '5',
            '9',
            ' ',
            '-',
            '+',
            ':',
            '.',
            ',',
            '/',
            '(',
            ')',
            't',
            'z',
            'a',
            'p',
            'm',
            'w',
            'J',
            'D',
            '\u{a0}',
            '\u{3000}',
            'é',
            '中',
            '１',
            '\u{1f600}',
            '\0',
        ];
        let mut tried = 0usize;
        for seed in SEEDS {
            let chars: Vec<char> = seed.chars().collect();
            for cut in 0..=chars.len() {
                let prefix: String = chars.iter().take(cut).collect();
                let suffix: String = chars.iter().skip(cut).collect();
                let _ = parse_date(&prefix);
                let _ = parse_date(&suffix);
                tried += 2;
                if cut < chars.len() {
                    let mut deleted = chars.clone();
                    deleted.remove(cut);
                    let _ = parse_date(&deleted.iter().collect::<String>());
                    tried += 1;
                }
                for &ch in ALPHABET {
                    let mut inserted = chars.clone();
                    inserted.insert(cut, ch);
                    let _ = parse_date(&inserted.iter().collect::<String>());
                    tried += 1;
                    if cut < chars.len() {
                        let mut replaced = chars.clone();
                        if let Some(slot) = replaced.get_mut(cut) {
                            *slot = ch;
                        }
                        let _ = parse_date(&replaced.iter().collect::<String>());
                        tried += 1;
                    }
                }
            }
        }
        // A small xorshift generator keeps the test deterministic without extra crates.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = usize::try_from(state % 40).unwrap_or(0);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let index = usize::try_from(state % ALPHABET.len() as u64).unwrap_or(0);
                text.push(ALPHABET[index]);
            }
            let _ = parse_date(&text);
            tried += 1;
        }
        assert!(tried > 10_000, "only {tried} strings tried");
    }

    /// Huge inputs are refused after reading at most a bounded prefix.
    #[test]
    fn long_input_is_refused_quickly() {
        let long = "9".repeat(10_000_000);
        let started = std::time::Instant::now();
        assert_eq!(parse_date(&long), None);
        assert_eq!(
            parse_date(&format!("2004-01-01T19:48:21{}", "0".repeat(200))),
            None
        );
        assert_eq!(
            show(&format!("2004-01-01T19:48:21.{}Z", "1".repeat(100))).as_deref(),
            Some("2004-01-01T19:48:21.111111111Z")
        );
        let spaces = format!("{}2004{}", " ".repeat(1_000_000), " ".repeat(1_000_000));
        assert_eq!(show(&spaces).as_deref(), Some("2004-01-01T00:00:00Z"));
        assert!(started.elapsed().as_secs() < 5);
    }
}
