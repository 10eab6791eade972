use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures_channel::oneshot;

use crate::Clock;

/// A clock that moves only when told to. Clones share the same time.
///
/// Two modes:
/// - [`ManualClock::new`]: a [`sleep`](Clock::sleep) parks until a test calls
///   [`advance`](ManualClock::advance) past its deadline. Use it when a test
///   must see the state *between* two ticks (a lease about to expire).
/// - [`ManualClock::auto_advancing`]: a sleep moves time forward by its own
///   duration and returns at once. Use it for simulations where one task
///   drives time (a deployment monitor polling a simulated ECS).
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    wall: DateTime<Utc>,
    mono: Duration,
    auto_advance: bool,
    sleepers: Vec<Sleeper>,
}

#[derive(Debug)]
struct Sleeper {
    deadline: Duration,
    wake: oneshot::Sender<()>,
}

impl ManualClock {
    /// 2025-01-01T00:00:00Z, a convenient start for tests.
    pub const EPOCH_2025: DateTime<Utc> = DateTime::from_timestamp(1_735_689_600, 0).unwrap();

    /// A clock standing at `start` whose sleeps wait for [`advance`](Self::advance).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self::with_mode(start, false)
    }

    /// A clock standing at `start` whose every sleep advances time by its
    /// own duration and returns immediately.
    pub fn auto_advancing(start: DateTime<Utc>) -> Self {
        Self::with_mode(start, true)
    }

    /// A manual clock at the given UTC date and time (panics on an invalid
    /// date: for tests).
    pub fn at_ymd_hms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Self {
        let start = Utc
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid test date");
        Self::new(start)
    }

    fn with_mode(start: DateTime<Utc>, auto_advance: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                wall: start,
                mono: Duration::ZERO,
                auto_advance,
                sleepers: Vec::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a test panicked while holding it; the
        // time values are still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves both clocks forward by `by` and wakes every sleeper whose
    /// deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.mono += by;
        state.wall += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let now = state.mono;
        let (due, waiting): (Vec<_>, Vec<_>) =
            state.sleepers.drain(..).partition(|s| s.deadline <= now);
        state.sleepers = waiting;
        drop(state);
        for sleeper in due {
            let _ = sleeper.wake.send(());
        }
    }

    /// Sets the wall clock without moving the monotonic clock (an NTP jump,
    /// or a test placing "now" inside an update window).
    pub fn set_now(&self, wall: DateTime<Utc>) {
        self.state().wall = wall;
    }

    /// Switches auto-advance on or off.
    pub fn set_auto_advance(&self, on: bool) {
        self.state().auto_advance = on;
    }

    /// How many sleeps are parked waiting for [`advance`](Self::advance).
    pub fn pending_sleepers(&self) -> usize {
        self.state().sleepers.len()
    }

    /// The earliest deadline among parked sleepers, as monotonic time.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.state().sleepers.iter().map(|s| s.deadline).min()
    }

    /// Drives `future` to completion as a discrete-event simulation on this
    /// clock: polls while something is runnable, and when every task is
    /// parked on a sleep, advances the clock to the earliest deadline.
    /// Concurrent sleeps overlap (unlike [`auto_advancing`](Self::auto_advancing),
    /// where each sleep adds its own duration), so many tasks sharing one
    /// clock see the times they would see in real life. Needs no async
    /// runtime; the future must wait on nothing but this clock and on
    /// what its own tasks do (it panics on a deadlock: nothing runnable and
    /// nobody asleep).
    ///
    /// ```
    /// use std::time::Duration;
    /// use update_clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(ManualClock::EPOCH_2025);
    /// let elapsed = clock.run(async {
    ///     clock.sleep(Duration::from_secs(5)).await;
    ///     clock.monotonic()
    /// });
    /// assert_eq!(elapsed, Duration::from_secs(5));
    /// ```
    pub fn run<F: std::future::Future>(&self, future: F) -> F::Output {
        use std::{
            pin::pin,
            sync::atomic::{AtomicBool, Ordering},
            task::{Context, Poll, Wake, Waker},
        };
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
            fn wake_by_ref(self: &Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if flag.0.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
                continue;
            }
            let deadline = self
                .next_deadline()
                .expect("deadlock: nothing runnable and no sleeper on the clock");
            self.advance(deadline.saturating_sub(self.monotonic()));
        }
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().wall
    }

    fn monotonic(&self) -> Duration {
        self.state().mono
    }

    async fn sleep(&self, duration: Duration) {
        let receiver = {
            let mut state = self.state();
            if state.auto_advance || duration.is_zero() {
                None
            } else {
                let (wake, receiver) = oneshot::channel();
                let deadline = state.mono + duration;
                state.sleepers.push(Sleeper { deadline, wake });
                Some(receiver)
            }
        };
        match receiver {
            // The sender is dropped only by `advance` after sending, or with
            // the clock itself; both mean "stop waiting".
            Some(receiver) => {
                let _ = receiver.await;
            }
            None => {
                self.advance(duration);
                yield_once().await;
            }
        }
    }
}

/// Returns `Pending` once so other tasks get a turn, like
/// `tokio::task::yield_now` but without needing a runtime.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_overlaps_concurrent_sleeps_and_jumps_to_each_deadline() {
        let clock = ManualClock::new(ManualClock::EPOCH_2025);
        let (a, b, c) = clock.run(async {
            let at = |secs| {
                let clock = clock.clone();
                async move {
                    clock.sleep(Duration::from_secs(secs)).await;
                    clock.monotonic()
                }
            };
            tokio::join!(at(3), at(10), at(7))
        });
        assert_eq!(
            (a, b, c),
            (
                Duration::from_secs(3),
                Duration::from_secs(10),
                Duration::from_secs(7)
            )
        );
        assert_eq!(clock.monotonic(), Duration::from_secs(10));
        assert_eq!(
            clock.now(),
            ManualClock::EPOCH_2025 + Duration::from_secs(10)
        );
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn run_panics_when_nothing_can_make_progress() {
        let clock = ManualClock::new(ManualClock::EPOCH_2025);
        clock.run(std::future::pending::<()>());
    }

    #[tokio::test]
    async fn manual_sleep_waits_for_advance() {
        let clock = ManualClock::new(ManualClock::EPOCH_2025);
        let c2 = clock.clone();
        let task = tokio::spawn(async move {
            c2.sleep(Duration::from_secs(10)).await;
            c2.monotonic()
        });
        while clock.pending_sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(9));
        assert_eq!(clock.pending_sleepers(), 1, "not due after 9 s");
        clock.advance(Duration::from_secs(1));
        assert_eq!(task.await.unwrap(), Duration::from_secs(10));
        assert_eq!(clock.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn auto_advance_moves_both_clocks() {
        let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
        clock.sleep(Duration::from_millis(1500)).await;
        assert_eq!(clock.monotonic(), Duration::from_millis(1500));
        assert_eq!(
            clock.now() - ManualClock::EPOCH_2025,
            chrono::Duration::milliseconds(1500)
        );
    }

    #[tokio::test]
    async fn set_now_does_not_move_monotonic() {
        let clock = ManualClock::at_ymd_hms(2025, 6, 1, 12, 0, 0);
        clock.set_now(ManualClock::EPOCH_2025);
        assert_eq!(clock.monotonic(), Duration::ZERO);
        assert_eq!(clock.now(), ManualClock::EPOCH_2025);
    }

    #[tokio::test]
    async fn dyn_clock_through_arc() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
        clock.sleep(Duration::from_secs(1)).await;
        assert_eq!(clock.monotonic(), Duration::from_secs(1));
    }
}
