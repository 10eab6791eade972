//! The behaviour suite every [`UpdateLock`] backend runs (feature
//! `conformance`).
//!
//! Each function checks one behaviour and panics with a message on failure.
//! The lock under test must be timed by `clock`, a parking
//! [`ManualClock::new`] (not auto-advancing), and must be able to spawn its
//! heartbeat on the current tokio runtime. Run the suite on a
//! current-thread runtime (plain `#[tokio::test]`): the heartbeat steps
//! then interleave deterministically with the test. Every function uses its own
//! random key, so one store can serve all of them.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use update_clock::ManualClock;
//! use update_lock::{LeaseLock, conformance};
//!
//! let clock = ManualClock::new(ManualClock::EPOCH_2025);
//! let lock = LeaseLock::in_memory(Arc::new(clock.clone()));
//! conformance::exclusive_acquire(&lock, &clock).await;
//! # }
//! ```

use std::{future::Future, task::Poll, time::Duration};

use update_clock::{Clock, ManualClock};

use crate::{Lease, LeaseGuard, LeaseStatus, LockError, LossReason, UpdateLock};

const LEASE: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(3);
const MS: Duration = Duration::from_millis(1);

fn key(behaviour: &str) -> String {
    format!("conformance-{behaviour}-{:08x}", rand::random::<u32>())
}

fn plain_lease() -> Lease {
    Lease::new(LEASE).expect("valid lease").without_heartbeat()
}

fn beating_lease() -> Lease {
    Lease::new(LEASE)
        .and_then(|l| l.with_heartbeat(HEARTBEAT))
        .expect("valid lease")
}

#[track_caller]
fn expect_held(result: Result<LeaseGuard, LockError>, holder: &str, context: &str) -> LockError {
    match result {
        Err(error @ LockError::Held { .. }) => {
            if let LockError::Held { holder: h, .. } = &error {
                assert_eq!(h, holder, "{context}: Held names the wrong holder");
            }
            error
        }
        Err(other) => panic!("{context}: expected Held by {holder}, got error {other}"),
        Ok(guard) => panic!(
            "{context}: expected Held by {holder}, but {} acquired it with token {}",
            guard.owner(),
            guard.token()
        ),
    }
}

#[track_caller]
fn expect_lost(result: Result<(), LockError>, context: &str) -> LossReason {
    match result {
        Err(LockError::LeaseLost { reason, .. }) => reason,
        Err(other) => panic!("{context}: expected LeaseLost, got {other}"),
        Ok(()) => panic!("{context}: expected LeaseLost, but it succeeded"),
    }
}

async fn acquired(lock: &dyn UpdateLock, key: &str, owner: &str, lease: Lease) -> LeaseGuard {
    lock.try_acquire(key, owner, lease)
        .await
        .unwrap_or_else(|e| panic!("{owner} should acquire {key}: {e}"))
}

/// Yields until the guard's heartbeat is parked on the clock, due at
/// `due`.
async fn settle(guard: &LeaseGuard, due: Duration) {
    for _ in 0..1_000_000 {
        if guard.next_heartbeat() == Some(due) {
            // Publishing the deadline and parking happen in one poll of the
            // heartbeat task; let that poll finish.
            tokio::task::yield_now().await;
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "the heartbeat did not park due at {due:?} (next: {:?}); the lock under test must use \
         the ManualClock passed to the suite",
        guard.next_heartbeat()
    );
}

/// Yields until the guard's heartbeat task has ended.
async fn heartbeat_stops(guard: &LeaseGuard, context: &str) {
    for _ in 0..1_000_000 {
        if !guard.is_heartbeat_running() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{context}: the heartbeat is still running");
}

/// Runs `future`, advancing `clock` to the next parked deadline whenever
/// the future waits on it.
async fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    loop {
        let polled = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = polled {
            return output;
        }
        tokio::task::yield_now().await;
        if let Some(deadline) = clock.next_deadline() {
            clock.advance(deadline.saturating_sub(clock.monotonic()));
        }
    }
}

/// One holder at a time: a second owner is refused with `Held` naming the
/// holder and a takeover estimate one lease away; of eight racing
/// contenders exactly one wins; after release the next owner gets a
/// greater token; `acquire` gives up with `Held` after its maximum wait.
pub async fn exclusive_acquire(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("exclusive");
    let a = acquired(lock, &key, "owner-a", plain_lease()).await;
    assert_eq!(a.check().expect("fresh lease is valid"), a.token());
    let now = clock.now();
    let held = expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "second owner",
    );
    if let LockError::Held { until, key: k, .. } = held {
        assert_eq!(k, key);
        assert_eq!(
            until,
            now + chrono::Duration::seconds(10),
            "until = first sight + lease"
        );
    }
    let record = lock
        .inspect(&key)
        .await
        .expect("inspect")
        .expect("record exists");
    assert_eq!(record.holder.as_deref(), Some("owner-a"));
    assert_eq!(record.token, a.token());
    assert_eq!(record.lease, LEASE);
    assert_eq!(record.version, a.record_version());

    // A bounded wait gives up after exactly its budget, before the lease ends.
    let started = clock.monotonic();
    let waited = drive(
        clock,
        lock.acquire(&key, "owner-b", plain_lease(), Duration::from_secs(3)),
    )
    .await;
    expect_held(waited, "owner-a", "acquire with a 3 s budget");
    let elapsed = clock.monotonic() - started;
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < LEASE,
        "waited {elapsed:?}"
    );
    a.check().expect("holder still valid");

    lock.release(&a).await.expect("owner releases");
    assert_eq!(a.status(), LeaseStatus::Released);
    assert!(a.check().is_err(), "a released guard is not valid");

    let racers: Vec<_> = (0..8)
        .map(|i| {
            let key = key.clone();
            async move {
                lock.try_acquire(&key, &format!("racer-{i}"), plain_lease())
                    .await
            }
        })
        .collect();
    let results = futures::future::join_all(racers).await;
    let winners: Vec<&LeaseGuard> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one racer wins: {results:?}");
    for result in &results {
        if let Err(e) = result {
            assert!(e.is_held(), "losers see Held, got {e}");
        }
    }
    assert!(
        winners[0].token() > a.token(),
        "next holder gets a greater token"
    );
    lock.release(winners[0]).await.expect("winner releases");
}

/// The holder asking again for the same key is refused (no re-entry), the
/// refusal does not consume a token, and the first guard stays valid.
pub async fn reentrant_refusal(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("reentrant");
    let first = acquired(lock, &key, "owner-a", plain_lease()).await;
    expect_held(
        lock.try_acquire(&key, "owner-a", plain_lease()).await,
        "owner-a",
        "same owner again",
    );
    clock.advance(LEASE / 2);
    expect_held(
        lock.try_acquire(&key, "owner-a", plain_lease()).await,
        "owner-a",
        "same owner, half a lease later",
    );
    first.check().expect("first guard still valid");
    let record = lock.inspect(&key).await.expect("inspect").expect("record");
    assert_eq!(
        record.token,
        first.token(),
        "a refused attempt does not bump the token"
    );
    assert_eq!(
        record.version,
        first.record_version(),
        "a refused attempt does not write"
    );
    lock.release(&first).await.expect("release");
    let again = acquired(lock, &key, "owner-a", plain_lease()).await;
    assert!(again.token() > first.token());
    lock.release(&again).await.expect("release");
}

/// Renew and release succeed only for the guard that owns the record: a
/// former holder that was taken over gets `LeaseLost` and changes nothing;
/// releasing twice is refused; the token counter survives release.
pub async fn release_by_non_owner_refused(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("non-owner");
    let a = acquired(lock, &key, "owner-a", plain_lease()).await;
    expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "b first sight",
    );
    clock.advance(LEASE);
    let b = acquired(lock, &key, "owner-b", plain_lease()).await;

    let reason = expect_lost(lock.release(&a).await, "release by the former holder");
    assert_eq!(reason, LossReason::TakenOver);
    assert_eq!(a.status(), LeaseStatus::Lost(LossReason::TakenOver));
    expect_lost(lock.renew(&a).await, "renew by the former holder");
    let record = lock.inspect(&key).await.expect("inspect").expect("record");
    assert_eq!(record.holder.as_deref(), Some("owner-b"), "b still holds");
    assert_eq!(
        record.version,
        b.record_version(),
        "the refused release wrote nothing"
    );
    b.check().expect("b still valid");

    lock.release(&b).await.expect("b releases");
    assert_eq!(
        expect_lost(lock.release(&b).await, "second release"),
        LossReason::Released
    );
    let record = lock
        .inspect(&key)
        .await
        .expect("inspect")
        .expect("record kept after release");
    assert_eq!(record.holder, None, "released");
    assert_eq!(
        record.token,
        b.token(),
        "the token counter survives release"
    );
}

/// A holder that stops renewing is taken over exactly one lease after the
/// contender first saw its record, never earlier; the old guard's local
/// validity has ended by then.
pub async fn takeover_after_expiry(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("takeover");
    let a = acquired(lock, &key, "owner-a", plain_lease()).await;
    let held = expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "b first sight",
    );
    if let LockError::Held { until, .. } = held {
        assert_eq!(until, clock.now() + chrono::Duration::seconds(10));
    }
    // The holder's own validity (lease less the safety margin) ends before
    // any contender may take over.
    let validity = a.validity();
    assert!(
        validity < LEASE && validity > LEASE / 2,
        "validity {validity:?} of a {LEASE:?} lease"
    );
    clock.advance(validity - MS);
    a.check()
        .expect("holder valid 1 ms before its validity ends");
    clock.advance(MS);
    assert!(
        matches!(
            a.check(),
            Err(LockError::LeaseLost {
                reason: LossReason::Expired,
                ..
            })
        ),
        "the holder's own validity ends at lease·(1−ε)−δ"
    );
    clock.advance(LEASE - validity - MS);
    expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "1 ms before the lease ends",
    );
    clock.advance(MS);
    let b = acquired(lock, &key, "owner-b", plain_lease()).await;
    assert!(b.token() > a.token(), "takeover gets a greater token");
    expect_held(
        lock.try_acquire(&key, "owner-c", plain_lease()).await,
        "owner-b",
        "after takeover",
    );

    // `acquire` waits exactly until the takeover becomes possible.
    drop(b);
    let started = clock.monotonic();
    let c = drive(
        clock,
        lock.acquire(&key, "owner-c", plain_lease(), Duration::from_secs(60)),
    )
    .await
    .expect("c takes over within its wait");
    let elapsed = clock.monotonic() - started;
    assert!(
        elapsed >= LEASE,
        "taken over after {elapsed:?}, before the lease of {LEASE:?}"
    );
    assert!(elapsed < LEASE + Duration::from_secs(5), "took {elapsed:?}");
    lock.release(&c).await.expect("release");
}

/// Tokens strictly increase over a mix of releases and takeovers, and the
/// record always shows the current holder's token.
pub async fn fencing_monotonic_across_takeovers(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("fencing");
    let mut tokens = Vec::new();
    let mut previous: Option<LeaseGuard> = None;
    for round in 0..6 {
        let owner = format!("owner-{round}");
        if let Some(guard) = previous.take() {
            if round % 2 == 0 {
                lock.release(&guard).await.expect("release");
            } else {
                // The holder crashes: the next owner must wait a full lease.
                drop(guard);
                let prev = format!("owner-{}", round - 1);
                expect_held(
                    lock.try_acquire(&key, &owner, plain_lease()).await,
                    &prev,
                    "before expiry",
                );
                clock.advance(LEASE);
            }
        }
        let guard = acquired(lock, &key, &owner, plain_lease()).await;
        let record = lock.inspect(&key).await.expect("inspect").expect("record");
        assert_eq!(
            record.token,
            guard.token(),
            "record shows the holder's token"
        );
        tokens.push(guard.token());
        previous = Some(guard);
    }
    if let Some(guard) = previous {
        lock.release(&guard).await.expect("release");
    }
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens strictly increase: {tokens:?}"
    );
}

/// A lease with a heartbeat stays held for many lease lengths: every beat
/// writes a new record version, so a watching contender never sees it
/// unchanged for a full lease.
pub async fn heartbeat_keeps_it(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("heartbeat");
    let a = acquired(lock, &key, "owner-a", beating_lease()).await;
    assert!(a.is_heartbeat_running());
    let first_version = a.record_version();
    settle(&a, clock.monotonic() + HEARTBEAT).await;
    for beat in 1..=10u64 {
        expect_held(
            lock.try_acquire(&key, "owner-b", plain_lease()).await,
            "owner-a",
            "while beating",
        );
        let mut status = a.subscribe();
        clock.advance(HEARTBEAT);
        status.changed().await.expect("guard alive");
        assert_eq!(
            a.status(),
            LeaseStatus::Active { renewals: beat },
            "beat {beat}"
        );
        a.check().expect("valid while beating");
        settle(&a, clock.monotonic() + HEARTBEAT).await;
    }
    // 30 s = three leases have passed.
    expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "after three leases",
    );
    let record = lock.inspect(&key).await.expect("inspect").expect("record");
    assert_eq!(record.holder.as_deref(), Some("owner-a"));
    assert_eq!(record.token, a.token(), "renewal keeps the token");
    assert_ne!(
        record.version, first_version,
        "every beat replaces the version"
    );
    assert_eq!(record.version, a.record_version());
    assert!(
        a.remaining() > a.validity() - HEARTBEAT - MS,
        "renewed lease: {:?}",
        a.remaining()
    );
    lock.release(&a).await.expect("release");
    heartbeat_stops(&a, "after release").await;
}

/// A holder whose heartbeat stalls (a frozen process) is taken over after
/// its lease; when its heartbeat resumes, the renewal fails its condition,
/// the guard becomes `Lost(TakenOver)`, the heartbeat stops, and the new
/// holder's record is untouched.
pub async fn lost_heartbeat_detected(lock: &dyn UpdateLock, clock: &ManualClock) {
    let key = key("lost-heartbeat");
    let a = acquired(lock, &key, "owner-a", beating_lease()).await;
    settle(&a, clock.monotonic() + HEARTBEAT).await;
    a.suspend_heartbeat();
    expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "b first sight",
    );
    clock.advance(HEARTBEAT);
    expect_held(
        lock.try_acquire(&key, "owner-b", plain_lease()).await,
        "owner-a",
        "a frozen 3 s",
    );
    clock.advance(LEASE - HEARTBEAT);
    assert!(a.check().is_err(), "a's own clock says its lease ran out");
    assert!(
        matches!(a.status(), LeaseStatus::Active { renewals: 0 }),
        "not yet known lost"
    );
    let b = acquired(lock, &key, "owner-b", plain_lease()).await;

    let mut status = a.subscribe();
    a.resume_heartbeat();
    status.changed().await.expect("guard alive");
    assert_eq!(a.lost().await, LossReason::TakenOver);
    assert_eq!(a.status(), LeaseStatus::Lost(LossReason::TakenOver));
    assert!(
        matches!(
            a.check(),
            Err(LockError::LeaseLost {
                reason: LossReason::TakenOver,
                ..
            })
        ),
        "check reports the loss"
    );
    heartbeat_stops(&a, "the lost heartbeat must stop").await;
    let record = lock.inspect(&key).await.expect("inspect").expect("record");
    assert_eq!(record.holder.as_deref(), Some("owner-b"));
    assert_eq!(
        record.version,
        b.record_version(),
        "the failed renewal wrote nothing"
    );
    lock.release(&b).await.expect("release");
}

/// Runs every behaviour in turn.
pub async fn run_all(lock: &dyn UpdateLock, clock: &ManualClock) {
    exclusive_acquire(lock, clock).await;
    reentrant_refusal(lock, clock).await;
    release_by_non_owner_refused(lock, clock).await;
    takeover_after_expiry(lock, clock).await;
    fencing_monotonic_across_takeovers(lock, clock).await;
    heartbeat_keeps_it(lock, clock).await;
    lost_heartbeat_detected(lock, clock).await;
}
