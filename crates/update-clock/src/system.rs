use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Clock;

/// The real clock: `chrono::Utc::now`, `std::time::Instant` and
/// `tokio::time::sleep`.
///
/// With the `tokio` feature (the default) [`Clock::sleep`] needs a tokio
/// runtime with the timer enabled; without it, each sleep parks a helper
/// thread (for the pure crates, which have no async runtime).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is the moment of this call.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    #[cfg(feature = "tokio")]
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    #[cfg(not(feature = "tokio"))]
    async fn sleep(&self, duration: Duration) {
        let (done, wait) = futures_channel::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("update-clock-sleep".into())
            .spawn(move || {
                std::thread::sleep(duration);
                let _ = done.send(());
            });
        match spawned {
            // A dropped sender (the thread panicked) also ends the wait.
            Ok(_) => {
                let _ = wait.await;
            }
            // No thread to be had: sleep where we are rather than not at all.
            Err(_) => std::thread::sleep(duration),
        }
    }
}

#[cfg(all(test, not(feature = "tokio")))]
mod tests {
    use super::*;

    /// Without the `tokio` feature a sleep needs no timer: a runtime built
    /// without `enable_time` would panic on `tokio::time::sleep`.
    #[test]
    fn sleeps_without_a_tokio_timer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let clock = SystemClock::new();
        runtime.block_on(clock.sleep(Duration::from_millis(1)));
        assert!(clock.monotonic() >= Duration::from_millis(1));
    }
}
