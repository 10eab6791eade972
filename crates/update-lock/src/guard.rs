//! The handle a holder keeps while it owns a lock.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{sync::watch, task::JoinHandle};
use update_clock::Clock;

use crate::{FencingToken, Lease, LockError, LossReason, RecordVersion};

/// Where a lease stands, as seen by its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Held; `renewals` counts successful renewals (heartbeats and manual).
    Active {
        /// Successful renewals so far.
        renewals: u64,
    },
    /// Lost for good; stop acting.
    Lost(LossReason),
    /// Released by its owner.
    Released,
}

/// The mutable part of a guard, shared with its heartbeat task.
#[derive(Debug)]
pub(crate) struct GuardShared {
    pub(crate) key: String,
    pub(crate) owner: String,
    pub(crate) token: FencingToken,
    pub(crate) lease: Lease,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) backend: &'static str,
    /// How long after sending a successful write the lease is valid
    /// locally: [`LockConfig::holder_validity`](crate::LockConfig::holder_validity).
    pub(crate) validity: Duration,
    /// Set as soon as `release()` starts, before its write is sent: from
    /// then on the guard is never valid again, whatever the write does.
    releasing: AtomicBool,
    state: Mutex<GuardState>,
    status: watch::Sender<LeaseStatus>,
    suspended: watch::Sender<bool>,
    /// When the parked heartbeat is due (monotonic), `None` while it is not
    /// waiting on the clock.
    next_beat: Mutex<Option<Duration>>,
    /// Serialises renewals and release so a manual renewal and the
    /// heartbeat never race on the record version.
    pub(crate) writes: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
pub(crate) struct GuardState {
    /// The record version we last wrote.
    pub(crate) version: RecordVersion,
    /// Versions this guard sent whose outcome is unknown (a timeout, an
    /// abandoned call); if the store holds one, that write did happen.
    /// Noted before each send, cleared once a later write or read settled
    /// the record.
    pub(crate) maybe_written: Vec<RecordVersion>,
    /// Monotonic time at which the last successful write was sent; the
    /// heartbeat schedules its next beat one period after it.
    pub(crate) last_sent: Duration,
    /// Monotonic time until which the lease is valid: the moment the last
    /// successful write was *sent*, plus the validity (the lease less the
    /// safety margin).
    pub(crate) valid_until: Duration,
}

impl GuardShared {
    // Internal constructor called from one place; a parameter struct would only rename the fields.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        key: String,
        owner: String,
        token: FencingToken,
        lease: Lease,
        clock: Arc<dyn Clock>,
        backend: &'static str,
        version: RecordVersion,
        sent_at: Duration,
        validity: Duration,
    ) -> Self {
        Self {
            key,
            owner,
            token,
            lease,
            clock,
            backend,
            validity,
            releasing: AtomicBool::new(false),
            state: Mutex::new(GuardState {
                version,
                maybe_written: Vec::new(),
                last_sent: sent_at,
                valid_until: valid_until(sent_at, validity),
            }),
            status: watch::Sender::new(LeaseStatus::Active { renewals: 0 }),
            suspended: watch::Sender::new(false),
            next_beat: Mutex::new(None),
            writes: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, GuardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self) -> LeaseStatus {
        self.status.borrow().clone()
    }

    pub(crate) fn lost_error(&self, reason: LossReason) -> LockError {
        LockError::LeaseLost {
            key: self.key.clone(),
            owner: self.owner.clone(),
            token: self.token,
            reason,
        }
    }

    /// Fails unless the guard is still active (not lost, not released).
    pub(crate) fn ensure_active(&self) -> Result<(), LockError> {
        match self.status() {
            LeaseStatus::Active { .. } => Ok(()),
            LeaseStatus::Lost(reason) => Err(self.lost_error(reason)),
            LeaseStatus::Released => Err(self.lost_error(LossReason::Released)),
        }
    }

    /// Marks the start of a release: the guard is no longer valid.
    pub(crate) fn begin_release(&self) {
        self.releasing.store(true, Ordering::SeqCst);
    }

    /// Whether a release has started.
    pub(crate) fn is_releasing(&self) -> bool {
        self.releasing.load(Ordering::SeqCst)
    }

    pub(crate) fn record_renewal(&self, version: RecordVersion, sent_at: Duration) {
        {
            let mut state = self.state();
            state.version = version;
            state.maybe_written.clear();
            state.last_sent = sent_at;
            state.valid_until = valid_until(sent_at, self.validity);
        }
        self.status.send_modify(|status| {
            if let LeaseStatus::Active { renewals } = status {
                *renewals += 1;
            }
        });
    }

    /// Marks the guard lost (terminal) and counts it.
    pub(crate) fn mark_lost(&self, reason: LossReason) {
        let changed = self.status.send_if_modified(|status| {
            if matches!(status, LeaseStatus::Active { .. }) {
                *status = LeaseStatus::Lost(reason.clone());
                true
            } else {
                false
            }
        });
        if changed {
            tracing::warn!(key = %self.key, owner = %self.owner, token = %self.token, %reason, "lease lost");
            let reason_label = match reason {
                LossReason::Expired => "expired",
                LossReason::TakenOver => "taken_over",
                LossReason::Released => "released",
            };
            metrics::counter!("update_lock_leases_lost_total", "backend" => self.backend, "reason" => reason_label)
                .increment(1);
        }
    }

    pub(crate) fn mark_released(&self) {
        self.status.send_replace(LeaseStatus::Released);
    }

    /// Whether the local validity has run out.
    pub(crate) fn expired(&self) -> bool {
        self.clock.monotonic() >= self.state().valid_until
    }

    /// Sleeps on the clock until the monotonic time `due`, publishing it.
    pub(crate) async fn sleep_until_beat(&self, due: Duration) {
        *self.next_beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(due);
        let now = self.clock.monotonic();
        self.clock.sleep(due.saturating_sub(now)).await;
        *self.next_beat.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Waits until the heartbeat is not suspended.
    pub(crate) async fn wait_resumed(&self) {
        let mut rx = self.suspended.subscribe();
        let _ = rx.wait_for(|suspended| !*suspended).await;
    }
}

impl GuardState {
    /// The most versions of unknown outcome remembered.
    const MAX_MAYBE_WRITTEN: usize = 16;

    /// Notes `version` as sent with an outcome not yet known.
    pub(crate) fn note_maybe_written(&mut self, version: &RecordVersion) {
        if self.maybe_written.contains(version) {
            return;
        }
        if self.maybe_written.len() >= Self::MAX_MAYBE_WRITTEN {
            self.maybe_written.remove(0);
        }
        self.maybe_written.push(version.clone());
    }
}

/// `sent_at + validity`, or `sent_at` (already expired) on overflow.
fn valid_until(sent_at: Duration, validity: Duration) -> Duration {
    sent_at.checked_add(validity).unwrap_or(sent_at)
}

/// Proof of holding a lock: its key, owner and fencing token, the lease's
/// local validity and, if the lease has one, the background heartbeat.
///
/// Call [`check`](LeaseGuard::check) before every state-changing step and
/// pass the token it returns to the system you change.
///
/// Dropping a guard stops its heartbeat but does not release the lock (a
/// destructor cannot wait for the backend): the lease then lapses after its
/// duration. Release with [`UpdateLock::release`](crate::UpdateLock::release).
#[derive(Debug)]
pub struct LeaseGuard {
    pub(crate) shared: Arc<GuardShared>,
    pub(crate) heartbeat: Option<JoinHandle<()>>,
}

impl LeaseGuard {
    /// The lock key.
    pub fn key(&self) -> &str {
        &self.shared.key
    }

    /// The owner that acquired it.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// The fencing token of this acquisition.
    pub fn token(&self) -> FencingToken {
        self.shared.token
    }

    /// The lease as requested.
    pub fn lease(&self) -> Lease {
        self.shared.lease
    }

    /// The record version this guard wrote last.
    pub fn record_version(&self) -> RecordVersion {
        self.shared.state().version.clone()
    }

    /// How long after sending each successful write the lease counts as
    /// valid on this holder's clock: `lease · (1 − ε) − δ`
    /// ([`LockConfig::holder_validity`](crate::LockConfig::holder_validity)),
    /// always shorter than the lease a contender waits out.
    pub fn validity(&self) -> Duration {
        self.shared.validity
    }

    /// Whether the lease is still valid, without I/O: the guard is neither
    /// lost nor released (nor being released: a release is terminal as soon
    /// as it starts, whatever its write's outcome), and less than
    /// [`validity`](Self::validity) has passed on the local monotonic clock
    /// since the last successful write was sent.
    ///
    /// Returns the fencing token to pass along with the step, or
    /// [`LockError::LeaseLost`]. A lease that ran out locally
    /// ([`LossReason::Expired`]) may become valid again if the heartbeat
    /// renews it before anyone takes over; [`LeaseStatus::Lost`] is final.
    pub fn check(&self) -> Result<FencingToken, LockError> {
        self.shared.ensure_active()?;
        if self.shared.is_releasing() {
            return Err(self.shared.lost_error(LossReason::Released));
        }
        if self.shared.expired() {
            return Err(self.shared.lost_error(LossReason::Expired));
        }
        Ok(self.shared.token)
    }

    /// Like [`check`](Self::check), and also requires at least `budget` of
    /// the lease left: call it before a state-changing step that may take
    /// up to `budget`, so the step ends before any contender could take the
    /// lock over. The lease must be much longer than the longest guarded
    /// step. Fails with [`LockError::LeaseTooShort`] when too little is
    /// left (the lease may still be renewed by the heartbeat).
    pub fn check_for(&self, budget: Duration) -> Result<FencingToken, LockError> {
        let token = self.check()?;
        let remaining = self.remaining();
        if remaining < budget {
            return Err(LockError::LeaseTooShort {
                key: self.shared.key.clone(),
                owner: self.shared.owner.clone(),
                token,
                remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
                needed_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(token)
    }

    /// How much of the lease is left on the local clock (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.shared
            .state()
            .valid_until
            .saturating_sub(self.shared.clock.monotonic())
    }

    /// The current status.
    pub fn status(&self) -> LeaseStatus {
        self.shared.status()
    }

    /// A receiver that sees every status change (each renewal, loss,
    /// release). Use `changed().await` on it to wait for the next one.
    pub fn subscribe(&self) -> watch::Receiver<LeaseStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until the lease is lost or released and says why; useful to
    /// cancel work in a `select!`.
    pub async fn lost(&self) -> LossReason {
        let mut rx = self.subscribe();
        let status = rx
            .wait_for(|s| !matches!(s, LeaseStatus::Active { .. }))
            .await
            .map(|s| s.clone());
        match status {
            Ok(LeaseStatus::Lost(reason)) => reason,
            // The sender lives as long as this guard, so only `Released`
            // remains.
            _ => LossReason::Released,
        }
    }

    /// Holds back the background heartbeat, as a frozen process would: no
    /// renewals until [`resume_heartbeat`](Self::resume_heartbeat). For
    /// fault-injection tests and for handing a lock over by letting it
    /// lapse. The lease then runs out normally.
    pub fn suspend_heartbeat(&self) {
        self.shared.suspended.send_replace(true);
    }

    /// Lets a suspended heartbeat renew again (at once if a beat is overdue).
    /// If someone took the lock over meanwhile, that renewal fails its
    /// condition and the guard becomes [`LeaseStatus::Lost`].
    pub fn resume_heartbeat(&self) {
        self.shared.suspended.send_replace(false);
    }

    /// When the background heartbeat will next renew, on the lock's monotonic
    /// clock; `None` without a heartbeat, while a renewal is in flight or
    /// suspended, and once the heartbeat stopped.
    pub fn next_heartbeat(&self) -> Option<Duration> {
        if !self.is_heartbeat_running() {
            return None;
        }
        *self
            .shared
            .next_beat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the background heartbeat task is still running (false for a
    /// lease without heartbeat, and once it stopped: lost, released, or
    /// the guard's heartbeat ended).
    pub fn is_heartbeat_running(&self) -> bool {
        self.heartbeat.as_ref().is_some_and(|h| !h.is_finished())
    }

    pub(crate) fn stop_heartbeat(&self) {
        if let Some(handle) = &self.heartbeat {
            handle.abort();
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}
