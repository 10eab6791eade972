//! Two updaters started at once against one DynamoDB table (moto on
//! 127.0.0.1, with update-lock's plugin that makes moto's conditional item
//! writes atomic, as DynamoDB's are) and one simulated ECS: exactly one
//! deployment per service. Then a holder whose task died mid-monitoring is
//! taken over and its journal finished by the other updater.
//!
//! What is simulated: ECS (SimulatedEcs); DynamoDB is moto's.

mod common;

use std::{sync::Arc, sync::OnceLock, time::Duration};

use aws_sdk_dynamodb::Client;
use common::*;
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use runner_updater::{
    CycleOutcome, InfraVersionSource, Journal, Updater, UpdaterConfig,
    dynamodb::{DynamoDbJournal, DynamoDbQuarantine},
};
use update_clock::ManualClock;
use update_lock::{
    LeaseLock, LockConfig,
    dynamodb::{DynamoDbLockStore, create_table_if_missing},
};

const TABLE: &str = "runner-updater";

fn moto() -> &'static MotoServer {
    static SERVER: OnceLock<MotoServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        MotoServer::start_with_plugin(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../update-lock/tests/moto_atomic_dynamodb.py"
        ))
    })
}

fn client_for(account: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&moto().sdk_config())
        .interceptor(MotoAccount(account.to_string()))
        .build();
    Client::from_conf(config)
}

async fn table() -> String {
    let account = unique_account_id();
    let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
    create_table_if_missing(
        &client_for(&account),
        TABLE,
        &clock,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    account
}

/// The DynamoDB journal of a task that dies right after writing `step`:
/// the write lands, then the cycle never continues.
#[derive(Debug)]
struct DiesAfter {
    inner: DynamoDbJournal,
    step: &'static str,
    died: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

#[async_trait::async_trait]
impl Journal for DiesAfter {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }
    async fn load(
        &self,
        key: &str,
    ) -> runner_updater::Result<Option<runner_updater::JournalEntry>> {
        self.inner.load(key).await
    }
    async fn write(
        &self,
        entry: &runner_updater::JournalEntry,
        fence: &runner_updater::Fence,
    ) -> runner_updater::Result<()> {
        self.inner.write(entry, fence).await?;
        let died = if entry.step.name() == self.step {
            self.died.lock().unwrap().take()
        } else {
            None
        };
        if let Some(died) = died {
            let _ = died.send(());
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// One updater "process" with its own SDK client over the shared table.
fn updater(fx: &Fixture, account: &str, config: UpdaterConfig) -> Updater {
    updater_with(fx, account, config, None)
}

fn updater_with(
    fx: &Fixture,
    account: &str,
    config: UpdaterConfig,
    journal: Option<Arc<dyn Journal>>,
) -> Updater {
    let client = client_for(account);
    let journal = journal.unwrap_or_else(|| Arc::new(DynamoDbJournal::new(client.clone(), TABLE)));
    Updater::builder()
        .source(fx.source.clone())
        .lock(Arc::new(
            LeaseLock::new(
                DynamoDbLockStore::new(client.clone(), TABLE),
                fx.clock.clone(),
                LockConfig::default(),
            )
            .unwrap(),
        ))
        .journal(journal)
        .quarantine(Arc::new(DynamoDbQuarantine::new(client, TABLE)))
        .ecs(fx.sim.clone())
        .infra(InfraVersionSource::Fixed("7".into()))
        .clock(fx.clock.clone())
        .config(config)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updaters_started_at_once_make_exactly_one_deployment() {
    let account = table().await;
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let a = updater(&fx, &account, Fixture::config("host-a"));
    let b = updater(&fx, &account, Fixture::config("host-b"));
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let outcomes = [ra.outcome.clone(), rb.outcome.clone()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == CycleOutcome::Succeeded)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, CycleOutcome::LockBusy { .. } | CycleOutcome::Skipped)),
        "{outcomes:?}"
    );
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2, "one per service");
    assert_eq!(
        fx.calls("UpdateService"),
        2,
        "one forward deployment per service"
    );
    let entry = DynamoDbJournal::new(client_for(&account), TABLE)
        .load(RUNNER_KEY)
        .await
        .unwrap()
        .unwrap();
    assert!(entry.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_left_by_a_dead_holder_is_finished_by_the_other_updater() {
    let account = table().await;
    let fx = Fixture::new();
    fx.publish(release("20250102.1", "02", "7"));
    let (tx, died) = tokio::sync::oneshot::channel();
    let dying = Arc::new(DiesAfter {
        inner: DynamoDbJournal::new(client_for(&account), TABLE),
        step: "service_updated",
        died: std::sync::Mutex::new(Some(tx)),
    });
    let old = updater_with(&fx, &account, Fixture::config("task-old"), Some(dying));
    // The old task dies right after its deployment of the runner started.
    tokio::select! {
        r = old.run_once() => panic!("expected the cycle to be cut, got {:?}", r.map(|r| r.summary())),
        _ = died => {}
    }
    drop(old);
    let mut config = Fixture::config("task-new");
    config.lock_wait = Duration::from_secs(600);
    let new = updater(&fx, &account, config);
    let report = new.run_once().await.unwrap();
    assert!(report.resumed, "{}", report.summary());
    assert_eq!(
        report.outcome,
        CycleOutcome::Succeeded,
        "{}",
        report.summary()
    );
    assert_eq!(fx.calls("RegisterTaskDefinition"), 2);
    assert_eq!(fx.calls("UpdateService"), 2);
}
