//! The injected clock of the ECS self-updater crates.
//!
//! Every loop that waits, polls, backs off or holds a lease takes an
//! `Arc<dyn Clock>` instead of reading the system time, so tests run hours of
//! simulated time in microseconds and never sleep for real.
//!
//! Backends:
//! - [`SystemClock`]: the real wall clock, a monotonic clock and
//!   `tokio::time::sleep` (feature `tokio`, the default: needs a tokio runtime
//!   with the timer enabled; without it a sleep parks a helper thread).
//! - [`ManualClock`]: time moves only when [`ManualClock::advance`] is
//!   called, or, in [auto-advance](ManualClock::auto_advancing) mode, every
//!   [`Clock::sleep`] jumps time forward by its own duration.
//!
//! The wall clock ([`Clock::now`]) is for timestamps and calendar rules
//! (update windows, release age). The monotonic clock
//! ([`Clock::monotonic`]) is for durations: lease staleness, timeouts,
//! poll intervals. A wall clock can jump; the monotonic one never goes back.
//!
//! ```
//! use std::time::Duration;
//! use update_clock::{Clock, ManualClock};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
//! let before = clock.monotonic();
//! clock.sleep(Duration::from_secs(3600)).await; // returns at once
//! assert_eq!(clock.monotonic() - before, Duration::from_secs(3600));
//! assert_eq!(clock.now(), ManualClock::EPOCH_2025 + chrono::Duration::hours(1));
//! # });
//! ```
#![warn(missing_docs)]

mod manual;
mod system;

use std::{fmt::Debug, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use manual::ManualClock;
pub use system::SystemClock;

/// A source of wall-clock time, monotonic time and sleeping.
///
/// Contract:
/// - [`monotonic`](Clock::monotonic) never decreases between two calls on the
///   same clock (and its clones).
/// - [`sleep`](Clock::sleep) returns no earlier than `duration` after it was
///   called, measured on [`monotonic`](Clock::monotonic).
/// - [`now`](Clock::now) may jump (NTP, an operator, a test); never use it
///   to measure a duration.
#[async_trait]
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Time elapsed since an arbitrary fixed origin of this clock. Only the
    /// difference of two readings means anything.
    fn monotonic(&self) -> Duration;

    /// Waits for `duration` of monotonic time.
    async fn sleep(&self, duration: Duration);
}

#[async_trait]
impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn monotonic(&self) -> Duration {
        (**self).monotonic()
    }
    async fn sleep(&self, duration: Duration) {
        (**self).sleep(duration).await
    }
}

#[async_trait]
impl<T: Clock + ?Sized> Clock for Box<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
    fn monotonic(&self) -> Duration {
        (**self).monotonic()
    }
    async fn sleep(&self, duration: Duration) {
        (**self).sleep(duration).await
    }
}
