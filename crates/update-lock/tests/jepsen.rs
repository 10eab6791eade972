//! A Jepsen-style test of `LeaseLock` on the in-memory store, in simulated
//! time.
//!
//! Each seed builds one schedule: 3–5 holders (separate `LeaseLock`s, so
//! separate processes with their own observations) contend for one key
//! through one store, each on its own clock that runs at most ε
//! (`LockConfig::clock_drift_ppm`) fast against true time. Holders acquire,
//! check (`check_for(budget)`) and then "work" for the budget, pause
//! (heartbeat suspended and the holder idle, as a frozen process) for
//! random spans of up to two leases, release (racing others' takeovers) and
//! crash (drop the guard). The store adds seeded latency before and after
//! each call, applies writes in a detached task (so a write a caller gave
//! up on may still land), and injects faults: a write that lands but
//! answers a timeout (unknown outcome), an SDK retry that lands and then
//! fails its own condition, a lost request and throttling. Heartbeats run
//! for real (background tasks on the simulated clocks, with their call
//! timeout).
//!
//! The checks, on the history recorded in true (simulated) time:
//! - no two successful `check_for(budget)` calls of different acquisitions
//!   have overlapping `[t, t + budget]` intervals;
//! - fencing tokens of successful acquisitions strictly increase;
//! - a holder whose check succeeds has the latest token written to the
//!   store, and the stored record is its own.
//!
//! Runs 2,000 seeds by default; `UPDATE_LOCK_JEPSEN_SEEDS=<n>` runs more,
//! `UPDATE_LOCK_JEPSEN_SEED=<n>` replays one.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::oneshot;
use update_clock::{Clock, ManualClock};
use update_lock::{
    BackendErrorKind, FencingToken, Lease, LeaseGuard, LeaseLock, LockConfig, LockError,
    LockRecord, LockStore, LossReason, MemoryLockStore, UpdateLock, WriteCondition, WriteOutcome,
};

const KEY: &str = "svc/runner";
const LEASE: Duration = Duration::from_secs(1);
/// Simulated run time per schedule.
const RUN_FOR: Duration = Duration::from_secs(25);
const DEFAULT_SEEDS: u64 = 2_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------- time --

#[derive(Debug, Default)]
struct SimState {
    now: Duration,
    sleepers: Vec<(Duration, oneshot::Sender<()>)>,
}

/// True time, advanced only by the driver.
#[derive(Debug, Clone, Default)]
struct Sim(Arc<Mutex<SimState>>);

impl Sim {
    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap()
    }

    fn now(&self) -> Duration {
        self.state().now
    }

    async fn sleep_until(&self, deadline: Duration) {
        let receiver = {
            let mut state = self.state();
            if deadline <= state.now {
                return;
            }
            let (wake, receiver) = oneshot::channel();
            state.sleepers.push((deadline, wake));
            receiver
        };
        let _ = receiver.await;
    }

    async fn sleep(&self, duration: Duration) {
        let deadline = self.now() + duration;
        self.sleep_until(deadline).await;
    }

    /// The earliest deadline of a sleeper still waiting.
    fn next_deadline(&self) -> Option<Duration> {
        let mut state = self.state();
        state.sleepers.retain(|(_, wake)| !wake.is_closed());
        state.sleepers.iter().map(|(d, _)| *d).min()
    }

    fn advance_to(&self, to: Duration) {
        let due = {
            let mut state = self.state();
            state.now = state.now.max(to);
            let now = state.now;
            let (due, waiting): (Vec<_>, Vec<_>) =
                state.sleepers.drain(..).partition(|(d, _)| *d <= now);
            state.sleepers = waiting;
            due
        };
        for (_, wake) in due {
            let _ = wake.send(());
        }
    }
}

/// A holder's clock: `offset + true · (1 + drift)`, drift in `[0, ε]`.
#[derive(Debug)]
struct DriftClock {
    sim: Sim,
    /// 1 000 000 + drift in ppm.
    rate: u128,
    offset: Duration,
}

impl DriftClock {
    fn local(&self, true_time: Duration) -> Duration {
        let nanos = true_time.as_nanos() * self.rate / 1_000_000;
        self.offset + Duration::from_nanos(u64::try_from(nanos).unwrap())
    }

    /// The first true time at which the local clock reads at least `local`.
    fn true_time_of(&self, local: Duration) -> Duration {
        let nanos = local.saturating_sub(self.offset).as_nanos() * 1_000_000;
        Duration::from_nanos(u64::try_from(nanos.div_ceil(self.rate)).unwrap())
    }
}

#[async_trait]
impl Clock for DriftClock {
    fn now(&self) -> DateTime<Utc> {
        ManualClock::EPOCH_2025 + chrono::Duration::from_std(self.monotonic()).unwrap()
    }

    fn monotonic(&self) -> Duration {
        self.local(self.sim.now())
    }

    async fn sleep(&self, duration: Duration) {
        let target = self.monotonic() + duration;
        self.sim.sleep_until(self.true_time_of(target)).await;
    }
}

// --------------------------------------------------------------- store --

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The write lands; the caller gets a timeout (outcome unknown).
    LandedThenTimeout,
    /// The write lands, the response is lost and the SDK retries it: the
    /// retry's condition fails, so the caller sees `ConditionFailed`.
    SdkRetryAfterLanding,
    /// The request is lost: nothing lands, the caller gets a timeout.
    Lost,
    /// Refused by the backend: nothing lands.
    Throttled,
}

#[derive(Debug, Clone, Copy)]
struct Params {
    holders: usize,
    drift_ppm: u32,
    max_latency_ms: u64,
    fault_percent: u32,
}

/// What landed in the store.
#[derive(Debug, Default)]
struct Landed {
    max_token: Option<FencingToken>,
    takeovers: u64,
    unknown_outcomes: u64,
}

/// The memory store behind seeded latency and faults; writes are applied
/// in a detached task, so a write whose caller gave up may still land.
#[derive(Debug)]
struct SimStore {
    inner: MemoryLockStore,
    sim: Sim,
    rng: Mutex<ChaCha8Rng>,
    params: Params,
    landed: Arc<Mutex<Landed>>,
}

impl SimStore {
    fn latency(&self) -> (Duration, Duration) {
        let mut rng = self.rng.lock().unwrap();
        let max = self.params.max_latency_ms;
        (ms(rng.random_range(0..=max)), ms(rng.random_range(0..=max)))
    }

    fn fault(&self) -> Fault {
        let mut rng = self.rng.lock().unwrap();
        if rng.random_range(0..100) >= self.params.fault_percent {
            return Fault::None;
        }
        match rng.random_range(0..4) {
            0 => Fault::LandedThenTimeout,
            1 => Fault::SdkRetryAfterLanding,
            2 => Fault::Lost,
            _ => Fault::Throttled,
        }
    }

    fn timeout() -> LockError {
        LockError::backend(BackendErrorKind::Transient, "sim store", "timed out")
    }
}

/// Applies `record` under `condition` to `inner`, noting what landed.
async fn apply(
    inner: &MemoryLockStore,
    landed: &Mutex<Landed>,
    record: &LockRecord,
    condition: &WriteCondition,
) -> WriteOutcome {
    let before = inner.with_record(&record.key, |r| r.cloned());
    let outcome = inner.write(record, condition).await.unwrap();
    if outcome == WriteOutcome::Written {
        let mut landed = landed.lock().unwrap();
        assert!(
            landed.max_token <= Some(record.token),
            "a landed token went back: {:?} after {:?}",
            record.token,
            landed.max_token
        );
        landed.max_token = Some(record.token);
        if let (Some(old), Some(new)) = (
            before.as_ref().and_then(|r| r.holder.as_ref()),
            record.holder.as_ref(),
        ) && old != new
        {
            landed.takeovers += 1;
        }
    }
    outcome
}

#[async_trait]
impl LockStore for SimStore {
    fn backend_name(&self) -> &'static str {
        "sim-memory"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        let (before, after) = self.latency();
        self.sim.sleep(before).await;
        let record = self.inner.load(key).await?;
        self.sim.sleep(after).await;
        Ok(record)
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        let fault = self.fault();
        let (before, after) = self.latency();
        if fault == Fault::Throttled {
            self.sim.sleep(before).await;
            return Err(LockError::backend(
                BackendErrorKind::Throttled,
                "sim store",
                "slow down",
            ));
        }
        if matches!(fault, Fault::LandedThenTimeout | Fault::Lost) {
            self.landed.lock().unwrap().unknown_outcomes += 1;
        }
        let (tx, rx) = oneshot::channel();
        let (inner, sim, landed) = (
            self.inner.clone(),
            self.sim.clone(),
            Arc::clone(&self.landed),
        );
        let (record, condition) = (record.clone(), condition.clone());
        tokio::spawn(async move {
            sim.sleep(before).await;
            if fault == Fault::Lost {
                return;
            }
            let mut outcome = apply(&inner, &landed, &record, &condition).await;
            if fault == Fault::SdkRetryAfterLanding && outcome == WriteOutcome::Written {
                outcome = apply(&inner, &landed, &record, &condition).await;
            }
            let _ = tx.send(outcome);
        });
        let outcome = rx.await;
        self.sim.sleep(after).await;
        match (fault, outcome) {
            (Fault::None | Fault::SdkRetryAfterLanding, Ok(outcome)) => Ok(outcome),
            _ => Err(Self::timeout()),
        }
    }
}

// ------------------------------------------------------------- history --

#[derive(Debug, Clone)]
enum Event {
    Acquired {
        owner: usize,
        token: FencingToken,
        at: Duration,
    },
    Checked {
        owner: usize,
        token: FencingToken,
        from: Duration,
        to: Duration,
        latest_landed: Option<FencingToken>,
        stored: Option<(Option<String>, FencingToken)>,
    },
    /// A release found the lock taken over.
    ReleaseLost,
    /// A holder froze.
    Paused,
}

type History = Arc<Mutex<Vec<Event>>>;

fn owner_name(i: usize) -> String {
    format!("holder-{i}")
}

/// One holder's life: acquire, check and work, pause, release, crash.
#[allow(clippy::too_many_arguments)]
async fn holder(
    i: usize,
    lock: LeaseLock<Arc<SimStore>>,
    clock: Arc<DriftClock>,
    sim: Sim,
    store: Arc<SimStore>,
    mut rng: ChaCha8Rng,
    history: History,
    lease: Lease,
) {
    let owner = owner_name(i);
    let mut guard: Option<LeaseGuard> = None;
    loop {
        let Some(held) = &guard else {
            if let Ok(acquired) = lock.try_acquire(KEY, &owner, lease).await {
                history.lock().unwrap().push(Event::Acquired {
                    owner: i,
                    token: acquired.token(),
                    at: sim.now(),
                });
                guard = Some(acquired);
            }
            clock.sleep(ms(rng.random_range(0..500))).await;
            continue;
        };
        match rng.random_range(0..100) {
            0..60 => {
                // Often all that is left: steps that end right at the
                // holder's validity.
                let budget = if rng.random_bool(0.3) {
                    held.remaining()
                } else {
                    ms(rng.random_range(0..=300))
                };
                if let Ok(token) = held.check_for(budget) {
                    let from = sim.now();
                    let latest_landed = store.landed.lock().unwrap().max_token;
                    let stored = store
                        .inner
                        .with_record(KEY, |r| r.map(|r| (r.holder.clone(), r.token)));
                    history.lock().unwrap().push(Event::Checked {
                        owner: i,
                        token,
                        from,
                        to: from + budget,
                        latest_landed,
                        stored,
                    });
                    // The guarded step takes its whole budget.
                    clock.sleep(budget).await;
                } else {
                    clock.sleep(ms(rng.random_range(0..200))).await;
                }
            }
            60..75 => {
                // A frozen process: no heartbeat, no work.
                let span = ms(rng.random_range(0..2_000));
                history.lock().unwrap().push(Event::Paused);
                held.suspend_heartbeat();
                clock.sleep(span).await;
                held.resume_heartbeat();
            }
            75..88 => {
                if let Err(LockError::LeaseLost {
                    reason: LossReason::TakenOver,
                    ..
                }) = lock.release(held).await
                {
                    history.lock().unwrap().push(Event::ReleaseLost);
                }
                guard = None;
                clock.sleep(ms(rng.random_range(0..300))).await;
            }
            88..93 => {
                // Crash: the guard is dropped, its heartbeat stops.
                guard = None;
                clock.sleep(ms(rng.random_range(0..1_500))).await;
            }
            _ => clock.sleep(ms(rng.random_range(0..300))).await,
        }
    }
}

// --------------------------------------------------------------- check --

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acquisitions: u64,
    checks: u64,
    takeovers: u64,
    unknown_outcomes: u64,
    releases_lost: u64,
    pauses: u64,
}

fn check_history(events: &[Event]) -> Result<(), String> {
    // Tokens of successful acquisitions strictly increase.
    let mut last: Option<FencingToken> = None;
    for event in events {
        if let Event::Acquired { owner, token, at } = event {
            if last >= Some(*token) {
                return Err(format!(
                    "holder-{owner} acquired token {token} at {at:?} after token {last:?}"
                ));
            }
            last = Some(*token);
        }
    }
    // A successful check holds the latest landed token and the record.
    for event in events {
        if let Event::Checked {
            owner,
            token,
            from,
            latest_landed,
            stored,
            ..
        } = event
        {
            if *latest_landed != Some(*token) {
                return Err(format!(
                    "holder-{owner}'s check at {from:?} passed with token {token}, but token \
                     {latest_landed:?} had landed"
                ));
            }
            if stored.as_ref() != Some(&(Some(owner_name(*owner)), *token)) {
                return Err(format!(
                    "holder-{owner}'s check at {from:?} passed with token {token}, but the \
                     store held {stored:?}"
                ));
            }
        }
    }
    // No two checks of different acquisitions overlap in true time.
    let mut checks: Vec<(Duration, Duration, FencingToken, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Checked {
                owner,
                token,
                from,
                to,
                ..
            } => Some((*from, *to, *token, *owner)),
            _ => None,
        })
        .collect();
    checks.sort();
    // Per token, the latest end of its intervals seen so far.
    let mut open: HashMap<FencingToken, (Duration, usize)> = HashMap::new();
    for (from, to, token, owner) in checks {
        open.retain(|_, (end, _)| *end > from);
        if let Some((other, (end, other_owner))) = open.iter().find(|(t, _)| **t != token) {
            return Err(format!(
                "holder-{owner} (token {token}) checked at {from:?} for a step until {to:?} \
                 while holder-{other_owner} (token {other}) had a step until {end:?}"
            ));
        }
        let entry = open.entry(token).or_insert((to, owner));
        entry.0 = entry.0.max(to);
    }
    Ok(())
}

// -------------------------------------------------------------- driver --

fn params(rng: &mut ChaCha8Rng) -> Params {
    Params {
        holders: rng.random_range(3..=5),
        drift_ppm: [0, 1_000, 10_000, 50_000][rng.random_range(0..4)],
        // Up to 200 ms each way: above half the heartbeat period (333 ms
        // / 2), so heartbeat calls time out.
        max_latency_ms: [5, 50, 200][rng.random_range(0..3)],
        fault_percent: [0, 5, 20][rng.random_range(0..3)],
    }
}

fn run_seed(seed: u64) -> Result<Stats, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = params(&mut rng);
        let sim = Sim::default();
        let landed = Arc::new(Mutex::new(Landed::default()));
        let store = Arc::new(SimStore {
            inner: MemoryLockStore::new(),
            sim: sim.clone(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(rng.random())),
            params: p,
            landed: Arc::clone(&landed),
        });
        let config = LockConfig {
            clock_drift_ppm: p.drift_ppm,
            ..LockConfig::default()
        };
        let lease = Lease::new(LEASE).unwrap();
        let history: History = Arc::default();
        let mut tasks = Vec::new();
        for i in 0..p.holders {
            let clock = Arc::new(DriftClock {
                sim: sim.clone(),
                rate: 1_000_000 + u128::from(rng.random_range(0..=p.drift_ppm)),
                offset: ms(rng.random_range(0..1_000_000)),
            });
            let lock = LeaseLock::new(
                Arc::clone(&store),
                Arc::clone(&clock) as Arc<dyn Clock>,
                config.clone(),
            )
            .unwrap();
            tasks.push(tokio::spawn(holder(
                i,
                lock,
                clock,
                sim.clone(),
                Arc::clone(&store),
                ChaCha8Rng::seed_from_u64(rng.random()),
                Arc::clone(&history),
                lease,
            )));
        }
        loop {
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            match sim.next_deadline() {
                Some(next) if next <= RUN_FOR => sim.advance_to(next),
                _ => break,
            }
        }
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        let events = history.lock().unwrap().clone();
        check_history(&events).map_err(|e| format!("{e} ({p:?})"))?;
        let landed = landed.lock().unwrap();
        let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count() as u64;
        Ok(Stats {
            acquisitions: count(|e| matches!(e, Event::Acquired { .. })),
            checks: count(|e| matches!(e, Event::Checked { .. })),
            takeovers: landed.takeovers,
            unknown_outcomes: landed.unknown_outcomes,
            releases_lost: count(|e| matches!(e, Event::ReleaseLost)),
            pauses: count(|e| matches!(e, Event::Paused)),
        })
    })
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?} is not a number: {e}")),
    )
}

#[test]
fn no_two_holders_act_at_once_under_seeded_faults() {
    let seeds: Vec<u64> = match env_u64("UPDATE_LOCK_JEPSEN_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("UPDATE_LOCK_JEPSEN_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let mut total = Stats::default();
    let mut failures = String::new();
    for &seed in &seeds {
        match run_seed(seed) {
            Ok(stats) => {
                total.acquisitions += stats.acquisitions;
                total.checks += stats.checks;
                total.takeovers += stats.takeovers;
                total.unknown_outcomes += stats.unknown_outcomes;
                total.releases_lost += stats.releases_lost;
                total.pauses += stats.pauses;
            }
            Err(error) => {
                let _ = writeln!(
                    failures,
                    "seed {seed}: {error}\n  replay: UPDATE_LOCK_JEPSEN_SEED={seed} cargo test -p \
                     update-lock --test jepsen"
                );
            }
        }
    }
    println!("{} schedules: {total:?}", seeds.len());
    assert!(failures.is_empty(), "{failures}");
    // The schedules exercised what they claim to.
    assert!(total.checks > 0 && total.acquisitions > 0, "{total:?}");
    if seeds.len() >= 100 {
        assert!(
            total.takeovers > 0
                && total.unknown_outcomes > 0
                && total.releases_lost > 0
                && total.pauses > 0,
            "{total:?}"
        );
    }
}

#[test]
fn the_checker_catches_overlaps_and_stale_tokens() {
    let t = FencingToken::new;
    let checked = |owner: usize, token: u64, from: u64, to: u64| Event::Checked {
        owner,
        token: t(token),
        from: ms(from),
        to: ms(to),
        latest_landed: Some(t(token)),
        stored: Some((Some(owner_name(owner)), t(token))),
    };
    // Back to back is fine; one millisecond of overlap is not.
    check_history(&[checked(0, 1, 0, 100), checked(1, 2, 100, 200)]).unwrap();
    let err = check_history(&[checked(0, 1, 0, 101), checked(1, 2, 100, 200)]).unwrap_err();
    assert!(err.contains("holder-1 (token 2)"), "{err}");
    // Same acquisition may overlap itself.
    check_history(&[checked(0, 1, 0, 100), checked(0, 1, 50, 150)]).unwrap();
    // Overlap with an earlier, longer step of another token.
    assert!(
        check_history(&[
            checked(0, 1, 0, 1_000),
            checked(1, 2, 200, 300),
            checked(1, 2, 500, 600),
        ])
        .is_err()
    );
    let acquired = |owner: usize, token: u64| Event::Acquired {
        owner,
        token: t(token),
        at: Duration::ZERO,
    };
    assert!(check_history(&[acquired(0, 2), acquired(1, 2)]).is_err());
    let check_with = |latest: u64, stored: Option<String>| Event::Checked {
        owner: 0,
        token: t(2),
        from: Duration::ZERO,
        to: ms(10),
        latest_landed: Some(t(latest)),
        stored: Some((stored, t(2))),
    };
    check_history(&[check_with(2, Some(owner_name(0)))]).unwrap();
    assert!(check_history(&[check_with(3, Some(owner_name(0)))]).is_err());
    assert!(check_history(&[check_with(2, None)]).is_err());
}
