//! The DynamoDB journal and quarantine store on moto (127.0.0.1, started by
//! moto-harness), in the table of a real `LeaseLock<DynamoDbLockStore>`.
//! Each test runs in its own moto account.
//!
//! moto 5.2.1 does not apply conditional writes atomically under concurrent
//! requests; real DynamoDB does. The server is therefore started with
//! update-lock's `moto_atomic_dynamodb.py`, a plugin that serialises moto's
//! DynamoDB item operations (including `transact_write_items`) and changes
//! nothing else.

use std::{sync::Arc, sync::OnceLock, time::Duration};

use aws_sdk_dynamodb::{Client, types::AttributeValue};
use chrono::{DateTime, Utc};
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use runner_updater::{
    Error, ErrorClass, Fence, Journal, JournalEntry, JournalStep, QuarantineStore, Revision,
    RunnerRecord, TargetProgress,
    dynamodb::{DynamoDbJournal, DynamoDbQuarantine},
    modify,
};
use runner_version::{Channel, ImageRef, Release, Version};
use update_clock::{Clock, ManualClock};
use update_lock::{
    Lease, LeaseGuard, LeaseLock, LockConfig, LockError, UpdateLock,
    dynamodb::{DynamoDbLockStore, create_table_if_missing},
};
use update_policy::QuarantineEntry;

const TABLE: &str = "update-locks";
const LEASE: Duration = Duration::from_secs(10);

/// The moto server of this test binary, with atomic DynamoDB item writes.
fn moto() -> &'static MotoServer {
    static SERVER: OnceLock<MotoServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = MotoServer::start_with_plugin(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../update-lock/tests/moto_atomic_dynamodb.py"
        ));
        let ping = server.control("ping", &serde_json::json!({}));
        let serialised = ping["serialised"].as_array().cloned().unwrap_or_default();
        assert!(
            serialised.iter().any(|n| n == "transact_write_items"),
            "the plugin must serialise transact_write_items: {ping}"
        );
        server
    })
}

fn client_for(account: &str) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&moto().sdk_config())
        .interceptor(MotoAccount(account.to_string()))
        .build();
    Client::from_conf(config)
}

/// A fresh account with the lock table, and a client for it.
async fn account() -> (String, Client) {
    let account = unique_account_id();
    let client = client_for(&account);
    let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
    create_table_if_missing(&client, TABLE, &clock, Duration::from_secs(60))
        .await
        .expect("create table");
    (account, client)
}

/// One updater "process": its own lock over the shared table.
fn lock(client: &Client, clock: &ManualClock) -> LeaseLock<DynamoDbLockStore> {
    LeaseLock::new(
        DynamoDbLockStore::new(client.clone(), TABLE),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .expect("lock")
}

fn lease() -> Lease {
    Lease::new(LEASE).expect("lease").without_heartbeat()
}

fn fence(guard: &LeaseGuard) -> Fence {
    Fence {
        key: guard.key().to_string(),
        owner: guard.owner().to_string(),
        token: guard.token(),
    }
}

fn release() -> Release {
    Release {
        version: Version::parse("20250101.1").unwrap(),
        channel: Channel::Stable,
        image: ImageRef::parse(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:20250101.1@sha256:{}",
            "ab".repeat(32)
        ))
        .unwrap(),
        proxy_image: None,
        infra_version: None,
        template_url: "https://templates.example.com/runner.json".into(),
        template_sha256: None,
        released_at: None,
        expires: None,
        waves: Default::default(),
    }
}

fn entry(fence: &Fence, update_id: &str, step: JournalStep, at: DateTime<Utc>) -> JournalEntry {
    JournalEntry {
        key: fence.key.clone(),
        update_id: update_id.into(),
        release: release(),
        targets: vec![TargetProgress {
            name: "runner".into(),
            previous_task_definition_arn: Some(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/runner:7".into(),
            ),
            ..TargetProgress::default()
        }],
        history: vec![step.name().to_string()],
        step,
        owner: fence.owner.clone(),
        token: fence.token,
        started_at: ManualClock::EPOCH_2025,
        written_at: at,
    }
}

/// The `current` of an `Error::Fenced`, with a check of the other fields.
#[track_caller]
fn fenced_current(result: runner_updater::Result<()>, fence: &Fence) -> String {
    match result {
        Err(Error::Fenced {
            key,
            owner,
            token,
            current,
        }) => {
            assert_eq!(
                (&key, &owner, token),
                (&fence.key, &fence.owner, fence.token)
            );
            current
        }
        other => panic!("expected Error::Fenced, got {other:?}"),
    }
}

/// What `Fence::admits` says about the lock record as it is stored now.
async fn admits_says(lock: &dyn UpdateLock, fence: &Fence) -> String {
    let record = lock.inspect(&fence.key).await.expect("inspect");
    fenced_current(fence.admits(record.as_ref()), fence)
}

async fn raw_item(
    client: &Client,
    key: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(TABLE)
        .key("lock_key", AttributeValue::S(key.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

#[tokio::test]
async fn holder_writes_and_loads_back_its_entry() {
    let (_, client) = account().await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = lock(&client, &clock);
    let journal = DynamoDbJournal::new(client.clone(), TABLE);
    assert_eq!(journal.backend_name(), "dynamodb");
    assert_eq!(journal.load("svc/a").await.unwrap(), None);

    let a = lock
        .try_acquire("svc/a", "updater-a", lease())
        .await
        .unwrap();
    let before = lock.inspect("svc/a").await.unwrap();
    let first = entry(&fence(&a), "u1", JournalStep::Locked, clock.now());
    journal.write(&first, &fence(&a)).await.unwrap();
    assert_eq!(journal.load("svc/a").await.unwrap(), Some(first));

    let second = entry(
        &fence(&a),
        "u1",
        JournalStep::Registered {
            target: 0,
            task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/runner:8"
                .into(),
        },
        clock.now(),
    );
    journal.write(&second, &fence(&a)).await.unwrap();
    assert_eq!(journal.load("svc/a").await.unwrap(), Some(second.clone()));

    // The item's layout, and the lock item untouched by journal writes.
    let item = raw_item(&client, "journal#svc/a")
        .await
        .expect("journal item");
    assert_eq!(item["step"].as_s().unwrap(), "registered");
    assert_eq!(
        item["written_at"].as_s().unwrap(),
        &second.written_at.to_rfc3339()
    );
    let stored: JournalEntry = serde_json::from_str(item["entry"].as_s().unwrap()).unwrap();
    assert_eq!(stored, second);
    assert_eq!(lock.inspect("svc/a").await.unwrap(), before);
    assert_eq!(journal.load("svc/other").await.unwrap(), None);
}

#[tokio::test]
async fn stale_holder_is_fenced_after_takeover() {
    let (_, client) = account().await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let (lock_a, lock_b) = (lock(&client, &clock), lock(&client, &clock));
    let journal = DynamoDbJournal::new(client.clone(), TABLE);
    let key = "svc/takeover";

    let a = lock_a.try_acquire(key, "updater-a", lease()).await.unwrap();
    let fence_a = fence(&a);
    let a_locked = entry(&fence_a, "u-a", JournalStep::Locked, clock.now());
    journal.write(&a_locked, &fence_a).await.unwrap();

    // A stops renewing (paused, no heartbeat); B sees the same record for
    // one full lease and takes over.
    assert!(matches!(
        lock_b.try_acquire(key, "updater-b", lease()).await,
        Err(LockError::Held { .. })
    ));
    clock.advance(LEASE);
    let b = lock_b.try_acquire(key, "updater-b", lease()).await.unwrap();
    assert!(b.token() > a.token());
    assert!(a.check().is_err(), "A's own lease has lapsed");

    // A wakes up and journals its next step: refused, nothing written.
    let a_next = entry(
        &fence_a,
        "u-a",
        JournalStep::Registering { target: 0 },
        clock.now(),
    );
    let current = fenced_current(journal.write(&a_next, &fence_a).await, &fence_a);
    assert!(current.contains("\"updater-b\""), "{current}");
    assert!(current.contains(&b.token().to_string()), "{current}");
    assert_eq!(current, admits_says(&lock_b, &fence_a).await);
    assert_eq!(journal.load(key).await.unwrap(), Some(a_locked));

    // B journals; A is still refused and B's entry stays.
    let fence_b = fence(&b);
    let b_monitoring = entry(
        &fence_b,
        "u-a",
        JournalStep::Monitoring {
            target: 0,
            deployment_id: "ecs-svc/123".into(),
        },
        clock.now(),
    );
    journal.write(&b_monitoring, &fence_b).await.unwrap();
    let current = fenced_current(journal.write(&a_next, &fence_a).await, &fence_a);
    assert_eq!(
        current,
        format!("held by \"updater-b\" with token {}", b.token())
    );
    assert_eq!(journal.load(key).await.unwrap(), Some(b_monitoring));
}

#[tokio::test]
async fn write_after_release_or_without_a_lock_is_fenced() {
    let (_, client) = account().await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = lock(&client, &clock);
    let journal = DynamoDbJournal::new(client.clone(), TABLE);
    let key = "svc/release";

    let a = lock.try_acquire(key, "updater-a", lease()).await.unwrap();
    let fence_a = fence(&a);
    let done = entry(
        &fence_a,
        "u1",
        JournalStep::Done {
            outcome: "succeeded".into(),
        },
        clock.now(),
    );
    journal.write(&done, &fence_a).await.unwrap();
    lock.release(&a).await.unwrap();

    let late = entry(&fence_a, "u1", JournalStep::Succeeded, clock.now());
    let current = fenced_current(journal.write(&late, &fence_a).await, &fence_a);
    assert_eq!(current, format!("free (last token {})", a.token()));
    assert_eq!(current, admits_says(&lock, &fence_a).await);
    assert_eq!(journal.load(key).await.unwrap(), Some(done));

    // No lock record at all.
    let nobody = Fence {
        key: "svc/never-locked".into(),
        owner: "updater-a".into(),
        token: a.token(),
    };
    let orphan = entry(&nobody, "u2", JournalStep::Locked, clock.now());
    let current = fenced_current(journal.write(&orphan, &nobody).await, &nobody);
    assert_eq!(current, "absent");
    assert_eq!(journal.load("svc/never-locked").await.unwrap(), None);
}

#[tokio::test]
async fn misuse_and_missing_table_are_permanent_store_errors() {
    let (account, client) = account().await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = lock(&client, &clock);
    let journal = DynamoDbJournal::new(client.clone(), TABLE);
    let a = lock
        .try_acquire("svc/x", "updater-a", lease())
        .await
        .unwrap();
    let mut other = entry(&fence(&a), "u1", JournalStep::Locked, clock.now());
    other.key = "svc/y".into();
    let err = journal.write(&other, &fence(&a)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Store {
                what: "journal",
                class: ErrorClass::Permanent,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(journal.load("svc/y").await.unwrap(), None);

    let reserved = lock
        .try_acquire("runner#svc", "updater-a", lease())
        .await
        .unwrap();
    let err = journal
        .write(
            &entry(&fence(&reserved), "u1", JournalStep::Locked, clock.now()),
            &fence(&reserved),
        )
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(err.to_string().contains("reserved"), "{err}");

    let missing = client_for(&account);
    let journal = DynamoDbJournal::new(missing.clone(), "no-such-table");
    for err in [
        journal.load("svc/x").await.unwrap_err(),
        DynamoDbQuarantine::new(missing, "no-such-table")
            .load("svc/x")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
        let text = format!("{err}");
        assert!(text.contains("no-such-table"), "{text}");
        assert!(text.contains("create_table_if_missing"), "{text}");
    }
}

#[tokio::test]
async fn unreadable_items_are_corrupt_records() {
    let (_, client) = account().await;
    for (key, attributes) in [
        (
            "journal#svc/bad",
            vec![("entry", AttributeValue::S("{".into()))],
        ),
        (
            "runner#svc/bad",
            vec![
                ("record", AttributeValue::S(r#"{"quarantine": 5}"#.into())),
                ("revision", AttributeValue::N("1".into())),
            ],
        ),
        (
            "runner#svc/norev",
            vec![("record", AttributeValue::S("{}".into()))],
        ),
    ] {
        let mut put = client
            .put_item()
            .table_name(TABLE)
            .item("lock_key", AttributeValue::S(key.into()));
        for (name, value) in attributes {
            put = put.item(name, value);
        }
        put.send().await.unwrap();
    }
    let journal = DynamoDbJournal::new(client.clone(), TABLE);
    let quarantine = DynamoDbQuarantine::new(client, TABLE);
    let errors = [
        journal.load("svc/bad").await.unwrap_err(),
        quarantine.load("svc/bad").await.unwrap_err(),
        quarantine.load("svc/norev").await.unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::CorruptRecord { .. }), "{err:?}");
    }
}

fn quarantined(version: &str) -> QuarantineEntry {
    QuarantineEntry {
        version: Version::parse(version).unwrap(),
        image_digest: None,
        reason: format!("{version} rolled back"),
        attempts: 1,
        retry_after: ManualClock::EPOCH_2025 + chrono::Duration::hours(6),
    }
}

#[tokio::test]
async fn quarantine_store_is_compare_and_swap() {
    let (_, client) = account().await;
    let store = DynamoDbQuarantine::new(client, TABLE);
    assert_eq!(store.backend_name(), "dynamodb");
    assert_eq!(
        store.load("runner/prod").await.unwrap(),
        (RunnerRecord::default(), Revision(0))
    );

    let mut first = RunnerRecord::default();
    first.quarantine(quarantined("20250101.1"));
    assert!(
        store
            .store("runner/prod", &first, Revision(0))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load("runner/prod").await.unwrap(),
        (first.clone(), Revision(1))
    );

    let second = RunnerRecord {
        highest_successful_version: Some(Version::parse("20241201.3").unwrap()),
        ..RunnerRecord::default()
    };
    assert!(
        !store
            .store("runner/prod", &second, Revision(0))
            .await
            .unwrap(),
        "a stale revision 0 loses"
    );
    assert_eq!(
        store.load("runner/prod").await.unwrap(),
        (first, Revision(1))
    );
    assert!(
        store
            .store("runner/prod", &second, Revision(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .store("runner/prod", &second, Revision(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .store("runner/prod", &second, Revision(7))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load("runner/prod").await.unwrap(),
        (second, Revision(2))
    );
}

#[tokio::test]
async fn modify_adds_a_quarantine_entry_next_to_the_lock() {
    let (_, client) = account().await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = lock(&client, &clock);
    // The lock item and the runner record of the same key coexist.
    let guard = lock
        .try_acquire("runner/prod", "updater-a", lease())
        .await
        .unwrap();
    let store = DynamoDbQuarantine::new(client, TABLE);
    let record = modify(&store, "runner/prod", |r| {
        r.quarantine(quarantined("20250101.1"))
    })
    .await
    .unwrap();
    assert_eq!(record.quarantine, vec![quarantined("20250101.1")]);
    let (stored, revision) = store.load("runner/prod").await.unwrap();
    assert_eq!((stored, revision), (record, Revision(1)));
    let held = lock
        .inspect("runner/prod")
        .await
        .unwrap()
        .expect("lock record");
    assert_eq!(held.holder.as_deref(), Some("updater-a"));
    assert_eq!(held.token, guard.token());
}

/// Four writers, each with its own client, each add a different entry at
/// once: every entry lands, each after exactly one successful write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_modifies_all_land() {
    let (account, _) = account().await;
    let tasks: Vec<_> = (1..=4)
        .map(|i| {
            let store = DynamoDbQuarantine::new(client_for(&account), TABLE);
            tokio::spawn(async move {
                modify(&store, "runner/race", |r| {
                    r.quarantine(quarantined(&format!("20250101.{i}")))
                })
                .await
                .expect("modify")
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let store = DynamoDbQuarantine::new(client_for(&account), TABLE);
    let (record, revision) = store.load("runner/race").await.unwrap();
    let mut versions: Vec<String> = record
        .quarantine
        .iter()
        .map(|e| e.version.to_string())
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        ["20250101.1", "20250101.2", "20250101.3", "20250101.4"]
    );
    assert_eq!(revision, Revision(4));
}
