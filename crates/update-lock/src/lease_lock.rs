//! `LeaseLock`: the lease rules over any [`LockStore`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use update_clock::Clock;

use crate::{
    FencingToken, Lease, LeaseGuard, LockConfig, LockError, LockRecord, LockStore, LossReason,
    MemoryLockStore, RecordVersion, UpdateLock, WriteCondition, WriteReport, guard::GuardShared,
};

/// How often a write that lost a race is re-evaluated before answering
/// [`LockError::Held`].
const RACE_ATTEMPTS: usize = 4;

/// The longest key or owner accepted (DynamoDB keys allow 2048 bytes).
const MAX_NAME_LEN: usize = 1024;

/// The [`UpdateLock`] of this crate: the lease rules of
/// amazon-dynamodb-lock-client plus fencing tokens, over any [`LockStore`].
///
/// - The record stores the lease *duration* and a random version replaced
///   on every write.
/// - A contender remembers the version it saw and when (on its own monotonic
///   clock); it takes the lock over only if the version is still the same a
///   full lease later. Wall clocks of different hosts are never compared.
/// - The holder counts its lease from the moment it *sent* its last
///   successful write, so its own validity ends before any contender can
///   take over (given clocks that run at the same rate).
/// - The background heartbeat renews one period after the last successful
///   send (or failed attempt), gives each renewal half a period on the
///   clock before counting it as an unknown outcome, and marks the guard
///   lost when a renewal fails its condition. A hung renewal never blocks
///   [`release`](UpdateLock::release).
/// - A write that failed its condition, or timed out, is compared with the
///   stored record (returned by the store or read again): our own version
///   and token there is our write that landed behind a timeout or an SDK
///   retry, not a holder or a takeover.
/// - A record that vanishes (TTL, a deleted file, a recreated table) after
///   this process saw it held counts as held for one lease from when it was
///   last seen held.
///
/// Cheap to clone; clones share the contender observations.
#[derive(Debug)]
pub struct LeaseLock<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for LeaseLock<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<S> {
    store: S,
    clock: Arc<dyn Clock>,
    config: LockConfig,
    /// Per key: the record version this process last saw held by someone,
    /// when it first and last saw it held, by whom and for what lease.
    observations: Mutex<HashMap<String, Observation>>,
    /// Per key: the free record this process wrote when it last released
    /// the key. The next acquisition tries a conditional write over it
    /// without reading first; a failed condition falls back to a read.
    released: Mutex<HashMap<String, LockRecord>>,
}

#[derive(Debug, Clone)]
struct Observation {
    version: RecordVersion,
    first_seen: Duration,
    /// The last time (monotonic) a read showed the key held.
    last_seen: Duration,
    holder: String,
    lease: Duration,
}

/// Whether `stored` is the record `tried` (same key, version and token):
/// our own write, landed.
fn is_this_write(stored: &LockRecord, tried: &LockRecord) -> bool {
    stored.key == tried.key && stored.version == tried.version && stored.token == tried.token
}

/// Polls `future` and a sleep of `limit` on `clock`; `None` if the sleep
/// ends first (the future is then dropped).
async fn with_timeout<F: Future>(
    clock: &dyn Clock,
    limit: Duration,
    future: F,
) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut timer = clock.sleep(limit);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}

/// A held lock, with when a takeover becomes possible.
struct HeldBy {
    error: LockError,
    takeover_in: Duration,
}

impl LeaseLock<MemoryLockStore> {
    /// A lock on a fresh [`MemoryLockStore`] with the default config.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Self {
        Self::new(MemoryLockStore::new(), clock, LockConfig::default())
            .expect("the default config is valid")
    }
}

impl<S: LockStore> LeaseLock<S> {
    /// A lock over `store`, timed by `clock`. Rejects an invalid `config`.
    pub fn new(store: S, clock: Arc<dyn Clock>, config: LockConfig) -> Result<Self, LockError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                config,
                observations: Mutex::new(HashMap::new()),
                released: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The config in use.
    pub fn config(&self) -> &LockConfig {
        &self.inner.config
    }
}

fn validate_name(what: &'static str, value: &str) -> Result<(), LockError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.len() > MAX_NAME_LEN {
        "must be at most 1024 bytes"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(LockError::InvalidName {
        what,
        value: value.chars().take(80).collect(),
        reason,
    })
}

/// Refuses a stored lease above [`Lease::MAX_DURATION`] (a corrupt or
/// foreign record, e.g. `lease_ms` = `u64::MAX`): an error, not a panic
/// and not a lock that is free or held forever.
fn check_stored_lease(
    record: &LockRecord,
    backend: &'static str,
) -> Result<(), Result<HeldBy, LockError>> {
    if record.lease > Lease::MAX_DURATION {
        return Err(Err(LockError::backend(
            crate::BackendErrorKind::Permanent,
            format!("{backend} lock record {:?}", record.key),
            format!(
                "the stored lease is {} ms, above the 24 h maximum: the record is corrupt or \
                 was not written by update-lock; inspect it, and delete it only when no \
                 process holds the lock",
                record.lease.as_millis()
            ),
        )));
    }
    Ok(())
}

impl<S: LockStore> Inner<S> {
    fn observations(&self) -> std::sync::MutexGuard<'_, HashMap<String, Observation>> {
        self.observations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn released(&self) -> std::sync::MutexGuard<'_, HashMap<String, LockRecord>> {
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held(&self, key: &str, holder: &str, takeover_in: Duration) -> HeldBy {
        let now = self.clock.now();
        let until = chrono::Duration::from_std(takeover_in)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        HeldBy {
            error: LockError::Held {
                key: key.to_string(),
                holder: holder.to_string(),
                until,
            },
            takeover_in,
        }
    }

    /// One non-waiting attempt. `Err(Ok(held))` is a held lock.
    async fn attempt(
        self: &Arc<Self>,
        key: &str,
        owner: &str,
        lease: Lease,
    ) -> Result<LeaseGuard, Result<HeldBy, LockError>> {
        validate_name("key", key).map_err(Err)?;
        validate_name("owner", owner).map_err(Err)?;
        lease.validate().map_err(Err)?;
        let backend = self.store.backend_name();
        let mut last_holder = String::from("another contender");
        let mut hint = self.released().remove(key);
        for _ in 0..RACE_ATTEMPTS {
            let record = match hint.take() {
                Some(released) => Some(released),
                None => self.store.load(key).await.map_err(Err)?,
            };
            if let Some(r) = &record {
                check_stored_lease(r, backend)?;
            }
            let (condition, token, kind) = match &record {
                None => {
                    // A record that vanished (TTL, a deleted file, a
                    // recreated table) after we saw it held counts as held
                    // for one lease from when we last saw it held.
                    let now = self.clock.monotonic();
                    let vanished = self.observations().get(key).cloned();
                    if let Some(seen) = vanished {
                        let since = now.saturating_sub(seen.last_seen);
                        if since < seen.lease {
                            metrics::counter!("update_lock_contended_total", "backend" => backend)
                                .increment(1);
                            tracing::warn!(%key, holder = %seen.holder, "the lock record vanished while held; waiting out its lease");
                            return Err(Ok(self.held(key, &seen.holder, seen.lease - since)));
                        }
                        self.observations().remove(key);
                    }
                    (
                        WriteCondition::Absent,
                        FencingToken::initial(self.clock.now()),
                        "new",
                    )
                }
                Some(r) => match &r.holder {
                    None => {
                        self.observations().remove(key);
                        (
                            WriteCondition::VersionIs(r.version.clone()),
                            r.token.next(),
                            "free",
                        )
                    }
                    Some(holder) => {
                        let now = self.clock.monotonic();
                        let mut observations = self.observations();
                        let seen = observations
                            .entry(key.to_string())
                            .and_modify(|o| {
                                if o.version != r.version {
                                    o.version = r.version.clone();
                                    o.first_seen = now;
                                }
                                o.last_seen = now;
                                o.holder.clone_from(holder);
                                o.lease = r.lease;
                            })
                            .or_insert_with(|| Observation {
                                version: r.version.clone(),
                                first_seen: now,
                                last_seen: now,
                                holder: holder.clone(),
                                lease: r.lease,
                            })
                            .clone();
                        drop(observations);
                        let unchanged_for = now.saturating_sub(seen.first_seen);
                        if unchanged_for < r.lease {
                            metrics::counter!("update_lock_contended_total", "backend" => backend)
                                .increment(1);
                            return Err(Ok(self.held(key, holder, r.lease - unchanged_for)));
                        }
                        last_holder = holder.clone();
                        (
                            WriteCondition::VersionIs(r.version.clone()),
                            r.token.next(),
                            "takeover",
                        )
                    }
                },
            };
            let version = RecordVersion::random();
            let sent_at = self.clock.monotonic();
            let new = LockRecord {
                key: key.to_string(),
                holder: Some(owner.to_string()),
                lease: lease.duration(),
                version: version.clone(),
                token,
                written_at: self.clock.now(),
            };
            let landed = match self.store.write_reporting(&new, &condition).await {
                Ok(WriteReport::Written) => true,
                Ok(WriteReport::ConditionFailed { current }) => {
                    let current = self
                        .current_after_failure(key, current)
                        .await
                        .map_err(Err)?;
                    if current.as_ref().is_some_and(|r| is_this_write(r, &new)) {
                        // Our own write, landed by an earlier attempt (an
                        // SDK retry's condition failed on it).
                        true
                    } else {
                        // Someone wrote between our load and write: look
                        // again, at the record that failed the condition.
                        hint = current;
                        false
                    }
                }
                Err(error) if error.backend_kind() == Some(crate::BackendErrorKind::Transient) => {
                    // The outcome is unknown: the write may have landed.
                    match self.store.load(key).await {
                        Ok(Some(stored)) if is_this_write(&stored, &new) => true,
                        _ => return Err(Err(error)),
                    }
                }
                Err(error) => return Err(Err(error)),
            };
            if landed {
                self.observations().remove(key);
                metrics::counter!("update_lock_acquisitions_total", "backend" => backend, "kind" => kind)
                        .increment(1);
                if kind == "takeover" {
                    metrics::counter!("update_lock_takeovers_total", "backend" => backend)
                        .increment(1);
                    tracing::warn!(%key, %owner, previous = %last_holder, %token, "took over a stale lock");
                } else {
                    tracing::debug!(%key, %owner, %token, "lock acquired");
                }
                return Ok(self.guard(key, owner, token, lease, version, sent_at));
            }
        }
        Err(Ok(self.held(key, &last_holder, Duration::ZERO)))
    }

    fn guard(
        self: &Arc<Self>,
        key: &str,
        owner: &str,
        token: FencingToken,
        lease: Lease,
        version: RecordVersion,
        sent_at: Duration,
    ) -> LeaseGuard {
        let shared = Arc::new(GuardShared::new(
            key.to_string(),
            owner.to_string(),
            token,
            lease,
            Arc::clone(&self.clock),
            self.store.backend_name(),
            version,
            sent_at,
            self.config.holder_validity(lease.duration()),
        ));
        let heartbeat = lease.heartbeat().map(|period| {
            let inner = Arc::clone(self);
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { inner.heartbeat(shared, period).await })
        });
        LeaseGuard { shared, heartbeat }
    }

    /// Renews one `period` after the last successful renewal was sent (or
    /// after the last failed attempt) until a renewal fails its condition,
    /// the lease runs out without a successful renewal, or the guard is
    /// released. Each renewal times out after half a period on the clock;
    /// a timed-out renewal is an unknown outcome, recognised as ours if it
    /// landed.
    async fn heartbeat(self: Arc<Self>, shared: Arc<GuardShared>, period: Duration) {
        let limit = period / 2;
        let mut failed_at: Option<Duration> = None;
        loop {
            // One period after the last successful send (a manual renewal
            // counts) or after the last failed attempt, whichever is later.
            let due = shared
                .state()
                .last_sent
                .max(failed_at.unwrap_or_default())
                .saturating_add(period);
            if self.clock.monotonic() < due {
                shared.sleep_until_beat(due).await;
                continue;
            }
            shared.wait_resumed().await;
            if shared.ensure_active().is_err() {
                return;
            }
            let attempted_at = self.clock.monotonic();
            let result = with_timeout(&*self.clock, limit, self.renew(&shared))
                .await
                .unwrap_or_else(|| {
                    Err(LockError::backend(
                        crate::BackendErrorKind::Transient,
                        format!("{} lock record {:?}", shared.backend, shared.key),
                        format!(
                            "the heartbeat renewal did not answer within {limit:?} (half the \
                             heartbeat period); its outcome is unknown"
                        ),
                    ))
                });
            match result {
                Ok(()) => failed_at = None,
                Err(LockError::LeaseLost { .. }) => return,
                Err(error) => {
                    failed_at = Some(attempted_at);
                    let kind = error.backend_kind().map_or("other", |k| match k {
                        crate::BackendErrorKind::Transient => "transient",
                        crate::BackendErrorKind::Throttled => "throttled",
                        _ => "permanent",
                    });
                    metrics::counter!("update_lock_heartbeat_failures_total", "backend" => shared.backend, "kind" => kind)
                        .increment(1);
                    tracing::warn!(key = %shared.key, owner = %shared.owner, %error, "heartbeat failed; retrying next period");
                    if shared.expired() {
                        shared.mark_lost(LossReason::Expired);
                        return;
                    }
                }
            }
        }
    }

    /// A conditional write of a new version (or, with `release`, of a free
    /// record) over the version this guard wrote last.
    async fn write_over_own(&self, shared: &GuardShared, release: bool) -> Result<(), LockError> {
        // A renewal after release began fails at once, without queueing
        // behind the release's (possibly hung) write.
        if !release && shared.is_releasing() {
            return Err(shared.lost_error(LossReason::Released));
        }
        let _serialised = shared.writes.lock().await;
        shared.ensure_active()?;
        if !release && shared.is_releasing() {
            return Err(shared.lost_error(LossReason::Released));
        }
        let version = RecordVersion::random();
        let record = LockRecord {
            key: shared.key.clone(),
            holder: (!release).then(|| shared.owner.clone()),
            lease: shared.lease.duration(),
            version: version.clone(),
            token: shared.token,
            written_at: self.clock.now(),
        };
        let mut condition = WriteCondition::VersionIs(shared.state().version.clone());
        for _ in 0..2 {
            // Noted before sending: if this call fails or is abandoned (a
            // heartbeat timeout), the write may still land.
            shared.state().note_maybe_written(&version);
            let sent_at = self.clock.monotonic();
            let current = match self.store.write_reporting(&record, &condition).await? {
                WriteReport::Written => {
                    self.own_write_landed(shared, record, version, sent_at, release);
                    return Ok(());
                }
                WriteReport::ConditionFailed { current } => current,
            };
            // On a failed read the maybe-written versions stay noted, so
            // the next attempt can still recognise them.
            let current = self.current_after_failure(&shared.key, current).await?;
            let Some(current) = current.filter(|r| r.key == shared.key && r.token == shared.token)
            else {
                break;
            };
            if current.version == version {
                // This very write landed: an SDK retry's condition failed
                // on it.
                self.own_write_landed(shared, record, version, sent_at, release);
                return Ok(());
            }
            if !shared.state().maybe_written.contains(&current.version) {
                break;
            }
            // An earlier write of ours with an unknown outcome landed after
            // all: the record is still ours.
            {
                let mut state = shared.state();
                state.version = current.version.clone();
                state.maybe_written.clear();
            }
            if current.holder.is_none() {
                // It was our release.
                if release {
                    self.released().insert(current.key.clone(), current);
                    shared.mark_released();
                    return Ok(());
                }
                return Err(shared.lost_error(LossReason::Released));
            }
            condition = WriteCondition::VersionIs(current.version);
        }
        shared.mark_lost(LossReason::TakenOver);
        Err(shared.lost_error(LossReason::TakenOver))
    }

    async fn renew(&self, shared: &GuardShared) -> Result<(), LockError> {
        self.write_over_own(shared, false).await
    }

    /// The record that failed a condition: as returned by the store, or
    /// read now (consistently) when the store did not return it.
    async fn current_after_failure(
        &self,
        key: &str,
        returned: Option<LockRecord>,
    ) -> Result<Option<LockRecord>, LockError> {
        match returned {
            Some(record) => Ok(Some(record)),
            None => self.store.load(key).await,
        }
    }

    /// Books a renewal or release whose write landed.
    fn own_write_landed(
        &self,
        shared: &GuardShared,
        record: LockRecord,
        version: RecordVersion,
        sent_at: Duration,
        release: bool,
    ) {
        if release {
            shared.state().maybe_written.clear();
            self.released().insert(record.key.clone(), record);
            shared.mark_released();
        } else {
            shared.record_renewal(version, sent_at);
        }
    }
}

#[async_trait]
impl<S: LockStore> UpdateLock for LeaseLock<S> {
    async fn try_acquire(
        &self,
        key: &str,
        owner: &str,
        lease: Lease,
    ) -> Result<LeaseGuard, LockError> {
        match self.inner.attempt(key, owner, lease).await {
            Ok(guard) => Ok(guard),
            Err(Ok(held)) => Err(held.error),
            Err(Err(error)) => Err(error),
        }
    }

    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        lease: Lease,
        max_wait: Duration,
    ) -> Result<LeaseGuard, LockError> {
        let clock = &self.inner.clock;
        let config = &self.inner.config;
        let started = clock.monotonic();
        loop {
            let held = match self.inner.attempt(key, owner, lease).await {
                Ok(guard) => {
                    metrics::histogram!("update_lock_wait_seconds", "backend" => self.inner.store.backend_name())
                        .record((clock.monotonic() - started).as_secs_f64());
                    return Ok(guard);
                }
                Err(Ok(held)) => held,
                Err(Err(error)) => return Err(error),
            };
            let waited = clock.monotonic().saturating_sub(started);
            if waited >= max_wait {
                return Err(held.error);
            }
            let jitter_ms = u64::try_from(config.poll_jitter.as_millis()).unwrap_or(u64::MAX);
            let jitter = if jitter_ms == 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(rand::random_range(0..=jitter_ms))
            };
            // Wake at the next poll, at the moment a takeover becomes
            // possible, or at the deadline, whichever comes first.
            let pause = (config.poll_interval + jitter)
                .min(held.takeover_in.max(Duration::from_millis(1)))
                .min(max_wait - waited);
            clock.sleep(pause).await;
        }
    }

    async fn renew(&self, guard: &LeaseGuard) -> Result<(), LockError> {
        self.inner.renew(&guard.shared).await
    }

    async fn release(&self, guard: &LeaseGuard) -> Result<(), LockError> {
        // Terminal locally before anything is sent: `check` fails from here
        // on, whatever the write's outcome, and no heartbeat renews again.
        guard.shared.begin_release();
        guard.stop_heartbeat();
        let result = self.inner.write_over_own(&guard.shared, true).await;
        if result.is_ok() {
            tracing::debug!(key = %guard.key(), owner = %guard.owner(), token = %guard.token(), "lock released");
        }
        result
    }

    async fn inspect(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        validate_name("key", key)?;
        self.inner.store.load(key).await
    }
}
