//! The time the scheduler goes by. Production reads the system clock; tests hold a manual
//! clock and move it forward, so that schedules, back-off and reloads are tested without
//! waiting for real time to pass.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Now, and waiting until later.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<watch::Sender<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock; [`Clock::sleep_until`] is tokio's.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(watch::Sender::new(start))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(time) => *time.borrow(),
            None => Utc::now(),
        }
    }

    /// `duration` from now on this clock.
    pub fn after(&self, duration: Duration) -> DateTime<Utc> {
        self.now() + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
    }

    /// Returns once this clock reads `until` or later. The time is fixed by the caller, not
    /// by when this future is first polled, so a manual clock moved in between still wakes it.
    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.after(duration)).await;
    }

    pub async fn sleep_until(&self, until: DateTime<Utc>) {
        let Some(time) = &self.manual else {
            let wait = (until - Utc::now()).to_std().unwrap_or_default();
            return tokio::time::sleep(wait).await;
        };
        let mut changes = time.subscribe();
        // The sender lives as long as `self`, so `wait_for` ends only when the time comes.
        let _ = changes.wait_for(|now| *now >= until).await;
    }

    /// Moves a manual clock forward, waking whoever sleeps until then. The system clock
    /// cannot be moved: this does nothing to it.
    pub fn advance(&self, by: Duration) {
        if let Some(time) = &self.manual {
            let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
            time.send_modify(|now| *now += by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_only_when_moved_far_enough() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let clock = Clock::manual(start);
        let sleep = clock.sleep_until(clock.after(Duration::from_secs(60)));
        tokio::pin!(sleep);
        assert!(futures::poll!(&mut sleep).is_pending());
        clock.advance(Duration::from_secs(30));
        assert!(futures::poll!(&mut sleep).is_pending());
        assert_eq!(clock.now(), start + chrono::Duration::seconds(30));
        clock.advance(Duration::from_secs(30));
        assert!(futures::poll!(&mut sleep).is_ready());
        assert_eq!(clock.now(), start + chrono::Duration::seconds(60));
    }
}
