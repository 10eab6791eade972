//! The journal is the fence, and the journal is how an update survives the
//! death of the updater that started it.
//!
//! What is simulated: ECS (SimulatedEcs), a paused holder (the clock jumps
//! past its lease while it is between two steps), a killed task (the
//! journal write lands and the cycle's future never resumes: it is dropped,
//! as a process killed by ECS would be, without releasing its lock).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use runner_updater::{
    CycleOutcome, Fence, Journal, JournalEntry, JournalStep, MemoryJournal, QuarantineStore,
};
use tokio::sync::oneshot;
use update_lock::{Lease, LeaseGuard, UpdateLock};

/// What the hooked journal does when a given step is written.
enum Hook {
    /// Before the write: the clock jumps past the lease and `usurper` takes
    /// the lock over (the writer was paused).
    TakeOverBefore {
        step: &'static str,
        lock: Arc<dyn UpdateLock>,
        clock: Arc<update_clock::ManualClock>,
    },
    /// After the write landed (`before` false) or instead of it (`before`
    /// true: the task died just before it journalled `step`): signal, then
    /// never return (the task died).
    Die {
        step: &'static str,
        before: bool,
        signal: Option<oneshot::Sender<()>>,
    },
}

#[derive(Debug)]
struct HookedJournal {
    inner: MemoryJournal,
    hook: Mutex<Option<Hook>>,
    usurper: Mutex<Option<LeaseGuard>>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl HookedJournal {
    fn new(inner: MemoryJournal, hook: Hook) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hook: Mutex::new(Some(hook)),
            usurper: Mutex::new(None),
        })
    }
}

#[async_trait]
impl Journal for HookedJournal {
    fn backend_name(&self) -> &'static str {
        "hooked"
    }
    async fn load(&self, key: &str) -> runner_updater::Result<Option<JournalEntry>> {
        self.inner.load(key).await
    }
    async fn write(&self, entry: &JournalEntry, fence: &Fence) -> runner_updater::Result<()> {
        let fire = {
            let mut hook = self.hook.lock().unwrap();
            let due = match hook.as_ref() {
                Some(Hook::TakeOverBefore { step, .. } | Hook::Die { step, .. }) => {
                    // "registered" is the first target's; "registered:1" the second's.
                    let indexed = match &entry.step {
                        JournalStep::Registered { target, .. } => format!("registered:{target}"),
                        JournalStep::ServiceUpdated { target, .. } => {
                            format!("service_updated:{target}")
                        }
                        other => other.name().to_string(),
                    };
                    entry.step.name() == *step || indexed == *step
                }
                None => false,
            };
            if due { hook.take() } else { None }
        };
        match fire {
            Some(Hook::TakeOverBefore { lock, clock, .. }) => {
                // The contender watches the record for one full lease on
                // its own clock (which jumps ahead on every poll's sleep).
                let _ = &clock;
                let guard = lock
                    .acquire(
                        &fence.key,
                        "usurper",
                        Lease::new(Duration::from_secs(300))
                            .unwrap()
                            .without_heartbeat(),
                        Duration::from_secs(400),
                    )
                    .await
                    .expect("the paused holder's lease has lapsed");
                *self.usurper.lock().unwrap() = Some(guard);
                self.inner.write(entry, fence).await
            }
            Some(Hook::Die {
                before, mut signal, ..
            }) => {
                if !before {
                    self.inner.write(entry, fence).await?;
                }
                if let Some(s) = signal.take() {
                    let _ = s.send(());
                }
                std::future::pending::<()>().await;
                unreachable!()
            }
            None => self.inner.write(entry, fence).await,
        }
    }
}

#[tokio::test]
async fn a_stale_holder_is_refused_by_the_journal_before_any_ecs_call() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let journal = HookedJournal::new(
        fx.journal.clone(),
        Hook::TakeOverBefore {
            step: "registering",
            lock: fx.lock(),
            clock: fx.clock.clone(),
        },
    );
    let updater = fx.updater_with("host-a", journal.clone(), Fixture::config("host-a"));
    let report = updater.run_once().await.unwrap();
    match &report.outcome {
        CycleOutcome::Interrupted { reason } => {
            assert!(
                reason.contains("stale") || reason.contains("refused"),
                "{reason}"
            )
        }
        other => panic!("expected Interrupted, got {other:?}"),
    }
    // The refused write: the journal still holds A's `locked` step, and
    // not one state-changing ECS call was made.
    assert_eq!(report.journalled, vec!["locked".to_string()]);
    assert_eq!(fx.journal_entry().await.step.name(), "locked");
    assert_eq!(fx.mutations(), 0, "calls: {:?}", fx.sim.calls());
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
    let token_a = report.fencing_token.unwrap();
    let usurper = journal.usurper.lock().unwrap().take().unwrap();
    assert!(usurper.token().get() > token_a);
}

/// Runs `updater`'s cycle until the hooked journal reports that `step` was
/// written, then drops the cycle (the task died).
async fn kill_after(updater: &runner_updater::Updater, died: oneshot::Receiver<()>) {
    tokio::select! {
        r = updater.run_once() => panic!("the cycle should have died, got {:?}", r.map(|r| r.summary())),
        _ = died => {}
    }
}

/// An updater `owner` whose task dies right after it journalled `step`
/// (or right before, with `before`): its cycle is dropped and its lock is
/// never released.
async fn die_at(fx: &Fixture, owner: &str, step: &'static str, before: bool) {
    let (tx, rx) = oneshot::channel();
    let journal = HookedJournal::new(
        fx.journal.clone(),
        Hook::Die {
            step,
            before,
            signal: Some(tx),
        },
    );
    let updater = fx.updater_with(owner, journal, Fixture::config(owner));
    kill_after(&updater, rx).await;
}

/// [`die_at`] right after `step` was journalled.
async fn die_after(fx: &Fixture, owner: &str, step: &'static str) {
    die_at(fx, owner, step, false).await;
}

#[tokio::test]
async fn the_new_tasks_updater_finishes_the_cycle_its_old_task_started() {
    // The updater runs inside the runner service: ECS replaces its task
    // while it monitors the deployment. The new task's updater (another
    // owner) finds the journal and finishes from it.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    die_after(&fx, "task-old", "service_updated").await; // the old task is gone; its lock was never released
    let entry = fx.journal_entry().await;
    assert_eq!(entry.step.name(), "service_updated");
    assert_eq!(fx.calls("UpdateService"), 1);
    let token_old = entry.token;

    let new_task = fx.resumer("task-new");
    let report = new_task.run_once().await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert!(report.fencing_token.unwrap() > token_old.get());
    assert_eq!(
        report.journalled.first().map(String::as_str),
        Some("monitoring")
    );
    // Exactly one task definition and one forward deployment per target.
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
    assert_eq!(fx.calls("UpdateService"), 2);
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250102.1", "02")
    );
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250102.1", "02")
    );
    assert!(fx.journal_entry().await.is_finished());
}

#[tokio::test]
async fn a_restart_after_registration_reuses_the_registered_revision() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    die_after(&fx, "host-a", "registered").await;
    assert_eq!(fx.calls("RegisterTaskDefinition"), 1);
    assert_eq!(fx.calls("UpdateService"), 0);
    let report = fx.resumer("host-b").run_once().await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(
        fx.calls("RegisterTaskDefinition"),
        2,
        "runner once, proxy once"
    );
    assert_eq!(fx.calls("UpdateService"), 2);
}

#[tokio::test]
async fn an_operator_rollback_while_the_updater_was_dead_between_targets_is_respected() {
    // Timeline (found by the simulation campaign, seeds 1463, 5430, 8244):
    // the runner is updated and healthy; the updater registers the proxy's
    // revision and its task dies. While no updater runs, an operator rolls
    // the runner back by hand. The next updater resumes the journal: it
    // must not deploy the proxy (a mixed release over the operator's
    // rollback), and the next check must not redeploy the runner.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    die_after(&fx, "host-a", "registered:1").await;
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
    assert_eq!(fx.calls("UpdateService"), 1, "the runner only");
    let entry = fx.journal_entry().await;
    let old_runner = entry.targets[0]
        .previous_task_definition_arn
        .clone()
        .unwrap();
    fx.clock.advance(Duration::from_secs(300));
    fx.operator_deploys("runner", &old_runner).await;
    fx.clock.advance(Duration::from_secs(300));

    let report = fx.resumer("host-b").run_once().await.unwrap();
    assert!(report.resumed);
    let CycleOutcome::Superseded { reason } = &report.outcome else {
        panic!("expected Superseded, got {}", report.summary());
    };
    assert!(reason.contains("target runner"), "{reason}");
    assert!(reason.contains("not deploying target proxy"), "{reason}");
    assert_eq!(fx.calls("UpdateService"), 2, "the operator's only");
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250101.1", "01")
    );
    assert!(fx.journal_entry().await.is_finished());
    let before = fx.mutations();
    fx.clock.advance(Duration::from_secs(600));
    let next = fx.updater("host-c").run_once().await.unwrap();
    assert_eq!(next.outcome, CycleOutcome::Skipped, "{}", next.summary());
    assert_eq!(fx.mutations(), before, "nothing deployed over the operator");
}

#[tokio::test]
async fn a_deployment_in_flight_is_watched_to_its_verdict_even_when_an_earlier_target_was_replaced()
{
    // Timeline: the proxy's UpdateService was journalled and the updater
    // died; an operator then rolled the runner back. The resumed update
    // must first watch the proxy's deployment to its verdict (leaving it
    // unwatched would leave a failing deployment in place), then report
    // Superseded because the runner was replaced: never Succeeded.
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    die_after(&fx, "host-a", "service_updated:1").await;
    assert_eq!(fx.calls("UpdateService"), 2);
    let entry = fx.journal_entry().await;
    let old_runner = entry.targets[0]
        .previous_task_definition_arn
        .clone()
        .unwrap();
    fx.operator_deploys("runner", &old_runner).await;
    fx.clock.advance(Duration::from_secs(600));
    let report = fx.resumer("host-b").run_once().await.unwrap();
    assert!(report.resumed);
    let CycleOutcome::Superseded { reason } = &report.outcome else {
        panic!("expected Superseded, got {}", report.summary());
    };
    assert!(
        reason.contains("replaced after this update deployed it"),
        "{reason}"
    );
    let proxy = report.targets.iter().find(|t| t.name == "proxy").unwrap();
    assert_eq!(proxy.outcome_kind, "succeeded", "{}", report.summary());
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250102.1", "02")
    );
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
}

#[tokio::test]
async fn a_crash_during_a_failed_rollout_still_quarantines_after_resume() {
    let fx = Fixture::new();
    fx.script(
        &runner_image("20250103.1", "03"),
        ecs_rollout::ImageBehaviour::CrashLoop,
    );
    fx.publish(release("20250103.1", "03", "7"));
    die_after(&fx, "host-a", "service_updated").await;
    let report = fx.resumer("host-b").run_once().await.unwrap();
    assert!(report.resumed);
    assert!(
        matches!(report.outcome, CycleOutcome::RolledBack { .. }),
        "{}",
        report.summary()
    );
    assert!(report.quarantined);
    assert_eq!(
        fx.calls("UpdateService"),
        1,
        "no second deployment of the bad release"
    );
    assert_eq!(
        fx.primary_image("runner").await,
        runner_image("20250101.1", "01")
    );
}

#[tokio::test]
async fn shutdown_mid_cycle_releases_the_lock_and_keeps_a_resumable_journal() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let (tx, rx) = oneshot::channel();
    let journal = HookedJournal::new(
        fx.journal.clone(),
        Hook::Die {
            step: "service_updated",
            before: false,
            signal: Some(tx),
        },
    );
    let updater = fx.updater_with("host-a", journal, Fixture::config("host-a"));
    let schedule = update_policy::CheckSchedule::new(
        update_policy::CheckScheduleConfig {
            interval: Duration::from_secs(600),
            jitter: Duration::ZERO,
        },
        1,
    )
    .unwrap();
    let shutdown = async {
        let _ = rx.await;
    };
    let mut reports = 0;
    updater.run(schedule, shutdown, |_| reports += 1).await;
    assert_eq!(reports, 0, "the cycle was cut short");
    let lock = fx.lock().inspect(RUNNER_KEY).await.unwrap().unwrap();
    assert!(lock.holder.is_none(), "released on shutdown: {lock:?}");
    assert_eq!(fx.journal_entry().await.step.name(), "service_updated");

    // A restart resumes without a second deployment and without waiting.
    let report = fx.updater("host-a").run_once().await.unwrap();
    assert!(report.resumed);
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(fx.calls("UpdateService"), 2);
}

#[tokio::test]
async fn two_updaters_started_at_once_make_one_deployment() {
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let a = fx.updater("host-a");
    let b = fx.updater("host-b");
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let outcomes = [ra.unwrap().outcome, rb.unwrap().outcome];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == CycleOutcome::Succeeded)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
    assert_eq!(fx.calls("UpdateService"), 2);
}

const CRASH_LOOP: ecs_rollout::ImageBehaviour = ecs_rollout::ImageBehaviour::CrashLoop;
const NEVER_HEALTHY: ecs_rollout::ImageBehaviour = ecs_rollout::ImageBehaviour::NeverHealthy;

/// Timeline for the resume tests below: the runner's deployment succeeds,
/// the proxy's fails (`behaviour`: it crash-loops and ECS's breaker rolls it
/// back, or it never turns healthy and the updater rolls it back), and the
/// updater's task dies right after journalling `step` of that failure (or
/// right before, with `before`). The next task's updater must finish the
/// failure: both targets back on the previous release, the release
/// quarantined, the outcome `RolledBack` (not `RollbackFailed`: every
/// rollback succeeded) and no second deployment of the bad release. With
/// `runner_rollback_fails` the runner's previous image can no longer be
/// pulled: the runner's rollback fails, and the outcome is `RollbackFailed`.
struct Crash {
    step: &'static str,
    before: bool,
    behaviour: ecs_rollout::ImageBehaviour,
    runner_rollback_fails: bool,
}

impl Crash {
    fn after(step: &'static str, behaviour: ecs_rollout::ImageBehaviour) -> Self {
        Self {
            step,
            before: false,
            behaviour,
            runner_rollback_fails: false,
        }
    }

    fn fixture(&self) -> Fixture {
        let fx = Fixture::new();
        fx.publish(release("20250102.1", "02", "7"));
        fx.script(&proxy_image("20250102.1", "02"), self.behaviour);
        if self.runner_rollback_fails {
            fx.script(
                &runner_image("20250101.1", "01"),
                ecs_rollout::ImageBehaviour::PullError,
            );
        }
        fx
    }

    fn expected(&self, outcome: &CycleOutcome) -> bool {
        if self.runner_rollback_fails {
            matches!(outcome, CycleOutcome::RollbackFailed { .. })
        } else {
            matches!(outcome, CycleOutcome::RolledBack { .. })
        }
    }
}

async fn resume_after_a_crash_at_the_proxy_failure(crash: Crash) {
    let Crash {
        step,
        before,
        behaviour,
        ..
    } = crash;
    let fx = crash.fixture();
    die_at(&fx, "host-a", step, before).await;
    if !before {
        let died = fx.journal_entry().await;
        assert_eq!(died.step.name(), step);
        if let JournalStep::RollingBack { target, .. } = died.step {
            // The first rollback journalled: the proxy's own when the
            // updater rolls it back, else the runner's (ECS rolled the
            // proxy back).
            let never_healthy = matches!(behaviour, NEVER_HEALTHY);
            assert_eq!(target, usize::from(never_healthy), "{:?}", died.step);
        }
    }
    let forward = fx.calls("UpdateService");
    let report = fx.resumer("host-b").run_once().await.unwrap();
    assert!(report.resumed);
    assert!(
        crash.expected(&report.outcome),
        "after a crash at '{step}': {}",
        report.summary()
    );
    assert!(report.quarantined, "{}", report.summary());
    if !crash.runner_rollback_fails {
        assert_eq!(
            fx.primary_image("runner").await,
            runner_image("20250101.1", "01"),
            "the runner is rolled back with the proxy (no mixed release): {}",
            report.summary()
        );
    }
    assert_eq!(
        fx.primary_image("proxy").await,
        proxy_image("20250101.1", "01")
    );
    if before {
        // Every rollback had finished before the crash: the resume rolls
        // nothing back again (not even a no-op rollback step).
        assert!(
            !report.journalled.iter().any(|s| s == "rolling_back"),
            "{:?}",
            report.journalled
        );
    }
    // The same deployments as the same failure without a crash: nothing
    // deployed twice, no target rolled back twice.
    let uncrashed = crash.fixture();
    let clean = uncrashed.updater("host-a").run_once().await.unwrap();
    assert!(crash.expected(&clean.outcome), "{}", clean.summary());
    assert_eq!(
        fx.calls("UpdateService"),
        uncrashed.calls("UpdateService"),
        "after a crash at '{step}' ({forward} before the resume): {}",
        report.summary()
    );
    // The failure is counted once, although the quarantine may have been
    // recorded before the crash and again by the resume.
    let (record, _) = fx.quarantine.load(RUNNER_KEY).await.unwrap();
    let entries: Vec<_> = record
        .quarantine
        .iter()
        .filter(|q| q.version.to_string() == "20250102.1")
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        entries[0].attempts, 1,
        "one failure, one attempt: {entries:?}"
    );
    assert!(fx.journal_entry().await.is_finished());
}

#[tokio::test]
async fn a_crash_while_rolling_back_after_the_proxy_failed_resumes_the_rollback_of_both_targets() {
    resume_after_a_crash_at_the_proxy_failure(Crash::after("rolling_back", CRASH_LOOP)).await;
}

#[tokio::test]
async fn a_crash_after_quarantining_the_proxy_release_still_rolls_the_runner_back() {
    resume_after_a_crash_at_the_proxy_failure(Crash::after("quarantined", CRASH_LOOP)).await;
}

#[tokio::test]
async fn a_crash_after_the_quarantine_was_recorded_but_before_the_journal_closed_counts_the_failure_once()
 {
    // The quarantine store is written at the end of the cycle, before the
    // journal's `done`: the resume concludes again and must not count the
    // same failure twice (which would double its backoff).
    resume_after_a_crash_at_the_proxy_failure(Crash {
        before: true,
        ..Crash::after("done", CRASH_LOOP)
    })
    .await;
}

#[tokio::test]
async fn a_crash_while_the_updater_rolls_back_a_proxy_that_never_turned_healthy_finishes_both_rollbacks()
 {
    // The proxy's new tasks never report healthy: ECS's breaker never
    // trips, so the updater itself rolls the proxy back at its deadline,
    // and dies right after journalling that rollback. The resume finishes
    // the proxy's rollback and rolls the runner back too.
    resume_after_a_crash_at_the_proxy_failure(Crash::after("rolling_back", NEVER_HEALTHY)).await;
}

#[tokio::test]
async fn a_crash_after_quarantining_a_proxy_that_never_turned_healthy_still_rolls_back_both_targets()
 {
    resume_after_a_crash_at_the_proxy_failure(Crash::after("quarantined", NEVER_HEALTHY)).await;
}

#[tokio::test]
async fn a_crash_while_rolling_back_the_proxy_then_a_failed_runner_rollback_is_rollback_failed() {
    // As above (the updater rolls back a proxy that never turned healthy and
    // dies right after journalling it), but the runner's previous image can
    // no longer be pulled: the resumed proxy rollback succeeds, the runner's
    // fails. One target is left on the new release: `RollbackFailed`.
    resume_after_a_crash_at_the_proxy_failure(Crash {
        runner_rollback_fails: true,
        ..Crash::after("rolling_back", NEVER_HEALTHY)
    })
    .await;
}
