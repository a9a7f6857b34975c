//! When each source is fetched next: its interval, never sooner than the feed or server asks
//! (`<ttl>`, `sy:updatePeriod`, `Cache-Control`, `Expires`, `Retry-After`), and exponential
//! back-off with jitter after failures; and the one rule for whether a source is due.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::FetchConfig;
use crate::model::CacheHints;

/// Whether a source is fetched now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Due: its time has come, it was never fetched, or its configured URL changed since.
    Now,
    /// Not before this time.
    At(DateTime<Utc>),
    /// Disabled (the server answered 410 Gone) until its URL changes or a forced fetch.
    Disabled(String),
}

/// What the schedule knows of a source from its stored state.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The URL the state was recorded for.
    pub url: &'a str,
    pub next_due_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<&'a str>,
}

/// The one rule for "is this source due", asked by the run, by `fetch --due` and by the
/// daemon when it decides how long to wait. State recorded for another URL than the one
/// configured now says nothing: the source starts afresh.
pub fn due(configured_url: &str, standing: Option<Standing<'_>>, now: DateTime<Utc>) -> Due {
    let Some(standing) = standing.filter(|s| s.url == configured_url) else {
        return Due::Now;
    };
    if let Some(reason) = standing.disabled_reason {
        return Due::Disabled(reason.to_owned());
    }
    match standing.next_due_at {
        Some(at) if at > now => Due::At(at),
        _ => Due::Now,
    }
}

/// What the feed document itself asks about polling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedHints {
    /// RSS `<ttl>`, in minutes in the feed.
    pub ttl: Option<Duration>,
    /// RSS syndication module: `sy:updatePeriod` divided by `sy:updateFrequency`.
    pub sy_update: Option<Duration>,
}

impl FeedHints {
    /// The longest delay the feed asks for among the hints `config` honours.
    pub fn requested(&self, config: &FetchConfig) -> Option<Duration> {
        [
            self.ttl.filter(|_| config.honor_ttl),
            self.sy_update.filter(|_| config.honor_sy_update),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn read(ttl_minutes: Option<u32>, body: &[u8]) -> Self {
        Self {
            ttl: ttl_minutes.map(|m| Duration::from_secs(u64::from(m) * 60)),
            sy_update: sy_update(body),
        }
    }
}

/// The text of the first `<prefix:name>` element, whatever the prefix.
fn element_text<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let mut pattern = Vec::with_capacity(name.len() + 2);
    pattern.push(b':');
    pattern.extend_from_slice(name);
    pattern.push(b'>');
    // A vectorized search: the body is the whole feed, read once per fetch.
    let at = memchr::memmem::find(body, &pattern)? + pattern.len();
    let rest = &body[at..];
    let end = rest.iter().take(64).position(|&b| b == b'<')?;
    std::str::from_utf8(&rest[..end]).ok().map(str::trim)
}

fn sy_update(body: &[u8]) -> Option<Duration> {
    const HOUR: u64 = 3600;
    let period = match element_text(body, b"updatePeriod")?
        .to_ascii_lowercase()
        .as_str()
    {
        "hourly" => HOUR,
        "daily" => 24 * HOUR,
        "weekly" => 7 * 24 * HOUR,
        "monthly" => 30 * 24 * HOUR,
        "yearly" => 365 * 24 * HOUR,
        _ => return None,
    };
    let frequency = element_text(body, b"updateFrequency")
        .and_then(|f| f.parse::<u64>().ok())
        .filter(|f| *f > 0)
        .unwrap_or(1);
    Some(Duration::from_secs(period / frequency))
}

fn after(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

/// After a successful fetch: the interval, or longer when the feed or server asks for it; what
/// they ask is capped at `max_backoff` so a source is never forgotten.
pub fn next_after_success(
    now: DateTime<Utc>,
    interval: Duration,
    cache: &CacheHints,
    feed_requested: Option<Duration>,
    config: &FetchConfig,
) -> DateTime<Utc> {
    let expires = cache
        .expires
        .and_then(|at| (at - now).to_std().ok())
        .filter(|_| config.honor_expires);
    let asked = [
        feed_requested,
        cache.max_age.filter(|_| config.honor_cache_control),
        expires,
    ]
    .into_iter()
    .flatten()
    .max()
    .map(|d| d.min(config.max_backoff))
    .unwrap_or_default();
    after(now, interval.max(asked))
}

/// After the `failures`-th failure in a row: the interval doubled per failure, with jitter of a
/// tenth either way so that sources failing together do not retry together, capped at
/// `max_backoff`; never sooner than the server's `Retry-After`. A `persistent` failure (one
/// that stays until someone changes the feed or the config) waits the longest at once.
pub fn next_after_failure(
    now: DateTime<Utc>,
    interval: Duration,
    failures: u32,
    retry_after: Option<Duration>,
    persistent: bool,
    config: &FetchConfig,
) -> DateTime<Utc> {
    let doublings = if persistent {
        30
    } else {
        failures.saturating_sub(1).min(30)
    };
    let backoff = interval
        .saturating_mul(1 << doublings)
        .min(config.max_backoff);
    let jitter = 0.9 + fastrand::f64() * 0.2;
    let backoff = backoff.mul_f64(jitter).min(config.max_backoff);
    after(now, backoff.max(retry_after.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_syndication_module_hint_is_read_whatever_its_prefix() {
        let body = |period: &str| {
            format!(
                "<rss><channel><syn:updatePeriod> {period} </syn:updatePeriod>\
                 <syn:updateFrequency>4</syn:updateFrequency><item/></channel></rss>"
            )
        };
        let hints = FeedHints::read(None, body("daily").as_bytes());
        assert_eq!(hints.sy_update, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            FeedHints::read(None, body("often").as_bytes()).sy_update,
            None
        );
        assert_eq!(
            FeedHints::read(None, b"<rss><channel/></rss>").sy_update,
            None
        );
    }

    #[test]
    fn the_feed_can_only_lengthen_the_interval() {
        let config = FetchConfig::default();
        let none = CacheHints::default();
        let ttl = FeedHints {
            ttl: Some(90 * MIN),
            sy_update: None,
        };
        assert_eq!(
            next_after_success(now(), 30 * MIN, &none, ttl.requested(&config), &config),
            now() + chrono::Duration::minutes(90)
        );
        let short = FeedHints {
            ttl: Some(MIN),
            sy_update: None,
        };
        assert_eq!(
            next_after_success(now(), 30 * MIN, &none, short.requested(&config), &config),
            now() + chrono::Duration::minutes(30)
        );
        let year = CacheHints {
            max_age: Some(Duration::from_secs(365 * 86_400)),
            expires: None,
        };
        assert_eq!(
            next_after_success(now(), 30 * MIN, &year, None, &config),
            now() + chrono::Duration::hours(24)
        );
        let ignoring = FetchConfig {
            honor_ttl: false,
            ..FetchConfig::default()
        };
        assert_eq!(
            next_after_success(now(), 30 * MIN, &none, ttl.requested(&ignoring), &ignoring),
            now() + chrono::Duration::minutes(30)
        );
    }

    #[test]
    fn due_asks_the_state_recorded_for_the_configured_url_only() {
        let later = now() + chrono::Duration::minutes(5);
        let standing = |url, disabled| Standing {
            url,
            next_due_at: Some(later),
            disabled_reason: disabled,
        };
        assert_eq!(due("https://a/", None, now()), Due::Now);
        assert_eq!(
            due("https://a/", Some(standing("https://a/", None)), now()),
            Due::At(later)
        );
        assert_eq!(
            due("https://a/", Some(standing("https://a/", None)), later),
            Due::Now
        );
        assert_eq!(
            due(
                "https://b/",
                Some(standing("https://a/", Some("gone"))),
                now()
            ),
            Due::Now
        );
        assert_eq!(
            due(
                "https://a/",
                Some(standing("https://a/", Some("gone"))),
                later
            ),
            Due::Disabled("gone".to_owned())
        );
    }

    #[test]
    fn sy_update_period_and_frequency() {
        let body = b"<channel><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>";
        assert_eq!(FeedHints::read(None, body).sy_update, Some(30 * MIN));
        assert_eq!(FeedHints::read(Some(5), b"").ttl, Some(5 * MIN));
    }

    #[test]
    fn failures_back_off_with_jitter_up_to_the_cap() {
        let config = FetchConfig::default();
        let delay = |failures| {
            (next_after_failure(now(), 30 * MIN, failures, None, false, &config) - now())
                .num_seconds()
        };
        let first = delay(1);
        assert!((1620..=1980).contains(&first), "{first}");
        let third = delay(3);
        assert!((6480..=7920).contains(&third), "{third}");
        assert!(delay(20) <= 86_400);
        let honoured = next_after_failure(
            now(),
            30 * MIN,
            1,
            Some(Duration::from_secs(7200)),
            false,
            &config,
        );
        assert_eq!(honoured, now() + chrono::Duration::hours(2));
        // A failure that stays (a body over the limit, a refused address) waits the longest.
        let persistent = next_after_failure(now(), 30 * MIN, 1, None, true, &config) - now();
        assert!(persistent.num_seconds() >= 86_400 * 9 / 10, "{persistent}");
    }
}
