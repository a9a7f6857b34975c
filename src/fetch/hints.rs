//! What a response says about when to ask again: `Retry-After`, `Cache-Control`, `Expires`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{CACHE_CONTROL, EXPIRES, HeaderMap, RETRY_AFTER};

pub use crate::model::CacheHints;

impl CacheHints {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            max_age: max_age(headers),
            expires: header_text(headers, EXPIRES).and_then(parse_http_date),
        }
    }
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After` as delay-seconds or an HTTP date, relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = header_text(headers, RETRY_AFTER)?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or_default())
}

/// `max-age` (or `s-maxage`) of `Cache-Control`; `no-store`/`no-cache` ask for nothing.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = header_text(headers, CACHE_CONTROL)?.to_ascii_lowercase();
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(seconds) = directive
            .strip_prefix("max-age=")
            .or_else(|| directive.strip_prefix("s-maxage="))
        {
            age = seconds
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
                .or(age);
        }
    }
    age
}

/// An HTTP date in any of the three forms RFC 9110 has recipients accept: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`).
///
/// Some servers send RFC 2822 dates with a numeric zone (`+0000`) instead; those are still read,
/// as before, since a hint that is understood beats one that is dropped.
pub fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    httpdate::parse_http_date(text)
        .ok()
        .map(DateTime::<Utc>::from)
        .or_else(|| {
            DateTime::parse_from_rfc2822(text)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(
            retry_after(&headers(&[(RETRY_AFTER, "120")]), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(
                &headers(&[(RETRY_AFTER, "Wed, 21 Oct 2015 07:30:00 GMT")]),
                now
            ),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&headers(&[(RETRY_AFTER, "soon")]), now), None);
    }

    /// 1994-11-06 08:49:37 UTC, the example of RFC 9110 section 5.6.7.
    fn rfc_example() -> DateTime<Utc> {
        DateTime::from_timestamp(784_111_777, 0).expect("timestamp")
    }

    #[test]
    fn all_three_http_date_forms_parse() {
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
        ] {
            assert_eq!(parse_http_date(form), Some(rfc_example()), "{form:?}");
        }
    }

    #[test]
    fn numeric_zones_are_still_read_and_nonsense_is_not() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 09:49:37 +0100"),
            Some(rfc_example())
        );
        for bad in [
            "",
            "0",
            "-1",
            "yesterday",
            // The weekday must match the date.
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_reads_the_legacy_date_forms() {
        let now = rfc_example() - chrono::Duration::seconds(30);
        for form in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(
                retry_after(&headers(&[(RETRY_AFTER, form)]), now),
                Some(Duration::from_secs(30)),
                "{form:?}"
            );
        }
        // A date in the past asks for no wait at all.
        assert_eq!(
            retry_after(
                &headers(&[(RETRY_AFTER, "Sun Nov  6 08:49:37 1994")]),
                rfc_example() + chrono::Duration::hours(1)
            ),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn cache_control_and_expires() {
        let h = headers(&[
            (CACHE_CONTROL, "public, max-age=600"),
            (EXPIRES, "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]);
        let hints = CacheHints::from_headers(&h);
        assert_eq!(hints.max_age, Some(Duration::from_secs(600)));
        assert!(hints.expires.is_some());
        assert_eq!(
            CacheHints::from_headers(&headers(&[(CACHE_CONTROL, "no-cache, max-age=60")])).max_age,
            None
        );
    }
}
