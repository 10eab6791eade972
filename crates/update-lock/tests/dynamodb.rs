//! The DynamoDB backend on moto (127.0.0.1, started by moto-harness): the
//! conformance suite, the table helper, error mapping, a racing-writes check
//! and the contention test. Each test runs in its own moto account.
//!
//! moto 5.2.1 does not apply conditional writes atomically under concurrent
//! requests (two racing conditional PutItems on one item can both succeed);
//! real DynamoDB does. Every test here therefore runs on one moto server
//! started with `moto_atomic_dynamodb.py`, a plugin that serialises moto's
//! DynamoDB item operations and changes nothing else.

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::Client;
use moto_harness::{MotoAccount, MotoServer, unique_account_id};
use update_clock::{ManualClock, SystemClock};
use update_lock::{
    BackendErrorKind, FencingToken, Lease, LeaseLock, LockConfig, LockError, LockRecord, LockStore,
    RecordVersion, UpdateLock, WriteCondition, WriteOutcome, conformance,
    dynamodb::{DynamoDbLockStore, TTL_ATTRIBUTE, TableSetup, create_table_if_missing},
};

const TABLE: &str = "update-locks";

/// The moto server of this test binary, with atomic DynamoDB item writes.
fn moto() -> &'static MotoServer {
    static SERVER: OnceLock<MotoServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = MotoServer::start_with_plugin(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/moto_atomic_dynamodb.py"
        ));
        let ping = server.control("ping", &serde_json::json!({}));
        assert!(
            ping["serialised"].as_array().is_some_and(|a| a.len() >= 4),
            "{ping}"
        );
        server
    })
}

/// A client for a fresh moto account.
fn client() -> Client {
    client_for(&unique_account_id())
}

fn client_for(account: &str) -> Client {
    let moto = moto();
    let config = aws_sdk_dynamodb::config::Builder::from(&moto.sdk_config())
        .interceptor(MotoAccount(account.to_string()))
        .build();
    Client::from_conf(config)
}

async fn table(client: &Client) {
    let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
    create_table_if_missing(client, TABLE, &clock, Duration::from_secs(60))
        .await
        .expect("create table");
}

async fn lock_on_moto() -> (LeaseLock<DynamoDbLockStore>, ManualClock) {
    let client = client();
    table(&client).await;
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = LeaseLock::new(
        DynamoDbLockStore::new(client, TABLE),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .expect("lock");
    (lock, clock)
}

macro_rules! suite {
    ($($behaviour:ident),* $(,)?) => {
        mod conformance_on_moto {
            use super::*;
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let (lock, clock) = lock_on_moto().await;
                    conformance::$behaviour(&lock, &clock).await;
                }
            )*
        }
    };
}

suite!(
    exclusive_acquire,
    reentrant_refusal,
    release_by_non_owner_refused,
    takeover_after_expiry,
    fencing_monotonic_across_takeovers,
    heartbeat_keeps_it,
    lost_heartbeat_detected,
);

#[tokio::test]
async fn create_table_if_missing_creates_once_with_ttl() {
    let client = client();
    let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
    let first = create_table_if_missing(&client, TABLE, &clock, Duration::from_secs(60)).await;
    assert_eq!(first.unwrap(), TableSetup::Created);
    let second = create_table_if_missing(&client, TABLE, &clock, Duration::from_secs(60)).await;
    assert_eq!(second.unwrap(), TableSetup::AlreadyExisted);
    let ttl = client
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    let table = client
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap();
    let schema = table.table().unwrap().key_schema();
    assert_eq!(schema.len(), 1);
    assert_eq!(schema[0].attribute_name(), "lock_key");
}

#[tokio::test]
async fn missing_table_is_a_permanent_error_that_says_what_to_do() {
    let store = DynamoDbLockStore::new(client(), "no-such-table");
    let err = store.load("k").await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("no-such-table"), "{text}");
    assert!(text.contains("create_table_if_missing"), "{text}");
}

#[tokio::test]
async fn failed_condition_is_an_outcome_not_an_error() {
    let client = client();
    table(&client).await;
    let store = DynamoDbLockStore::new(client, TABLE);
    let record = LockRecord {
        key: "k".into(),
        holder: Some("a".into()),
        lease: Duration::from_secs(10),
        version: RecordVersion::random(),
        token: FencingToken::new(7),
        written_at: ManualClock::EPOCH_2025,
    };
    let absent = WriteCondition::Absent;
    let cases = [
        (&absent, WriteOutcome::Written),
        (&absent, WriteOutcome::ConditionFailed),
    ];
    for (condition, expected) in cases {
        assert_eq!(store.write(&record, condition).await.unwrap(), expected);
    }
    let wrong = WriteCondition::VersionIs(RecordVersion::random());
    assert_eq!(
        store.write(&record, &wrong).await.unwrap(),
        WriteOutcome::ConditionFailed
    );
    let right = WriteCondition::VersionIs(record.version.clone());
    let released = LockRecord {
        holder: None,
        version: RecordVersion::random(),
        ..record.clone()
    };
    assert_eq!(
        store.write(&released, &right).await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(store.load("k").await.unwrap(), Some(released));
    assert_eq!(store.load("other").await.unwrap(), None);
}

/// 8 racers, each its own client, write over the same record version at
/// once, 30 times: exactly one wins each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conditional_writes_have_one_winner() {
    let account = unique_account_id();
    table(&client_for(&account)).await;
    let store = DynamoDbLockStore::new(client_for(&account), TABLE);
    let mut current = LockRecord {
        key: "race".into(),
        holder: None,
        lease: Duration::from_secs(10),
        version: RecordVersion::random(),
        token: FencingToken::new(1),
        written_at: ManualClock::EPOCH_2025,
    };
    assert_eq!(
        store
            .write(&current, &WriteCondition::Absent)
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    for round in 0..30 {
        let condition = WriteCondition::VersionIs(current.version.clone());
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = DynamoDbLockStore::new(client_for(&account), TABLE);
                let record = LockRecord {
                    holder: Some(format!("racer-{i}")),
                    version: RecordVersion::random(),
                    ..current.clone()
                };
                let condition = condition.clone();
                tokio::spawn(
                    async move { (store.write(&record, &condition).await.unwrap(), record) },
                )
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (outcome, record) = racer.await.unwrap();
            if outcome == WriteOutcome::Written {
                winners.push(record);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        current = store.load("race").await.unwrap().expect("record");
        assert_eq!(current, winners[0], "the stored record is the winner's");
    }
}

const CONTENDERS: usize = 8;
const ROUNDS: usize = 250;

/// 8 contenders, each its own client and `LeaseLock` (like 8 hosts), each
/// doing 250 acquire/act/release rounds on one key with the real clock.
/// Every act records its fencing token; a counter detects overlapping acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contention_eight_contenders_no_overlap_increasing_tokens() {
    let account = unique_account_id();
    let make_client = || client_for(&account);
    table(&make_client()).await;
    let active = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tokens: Arc<Mutex<Vec<FencingToken>>> = Arc::new(Mutex::new(Vec::new()));
    let config = LockConfig {
        poll_interval: Duration::from_millis(100),
        poll_jitter: Duration::from_millis(100),
        ..LockConfig::default()
    };
    let lease = Lease::new(Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONTENDERS {
        let lock = LeaseLock::new(
            DynamoDbLockStore::new(make_client(), TABLE),
            Arc::new(SystemClock::new()),
            config.clone(),
        )
        .unwrap();
        let (active, overlaps, tokens) = (active.clone(), overlaps.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("contender-{c}");
            for _ in 0..ROUNDS {
                let guard = lock
                    .acquire("svc/contended", &owner, lease, Duration::from_secs(300))
                    .await
                    .unwrap_or_else(|e| panic!("{owner}: {e}"));
                let token = guard.check().expect("valid right after acquire");
                if active.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokens.lock().unwrap().push(token);
                tokio::task::yield_now().await;
                active.fetch_sub(1, Ordering::SeqCst);
                guard.check().expect("still valid after the act");
                lock.release(&guard)
                    .await
                    .unwrap_or_else(|e| panic!("{owner} release: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("contender task");
    }
    let elapsed = started.elapsed();
    let tokens = tokens.lock().unwrap().clone();
    eprintln!(
        "contention: {CONTENDERS} contenders x {ROUNDS} rounds = {} acts in {:.1?} ({:.1} rounds/s)",
        tokens.len(),
        elapsed,
        tokens.len() as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(overlaps.load(Ordering::SeqCst), 0, "overlapping holds");
    assert_eq!(tokens.len(), CONTENDERS * ROUNDS);
    let bad: Vec<_> = tokens.windows(2).filter(|w| w[0] >= w[1]).collect();
    assert!(bad.is_empty(), "tokens not strictly increasing: {bad:?}");
}

/// Holder "crashes" (its guard is dropped: no heartbeat, no release) on a
/// real DynamoDB table; a second process-like lock takes over only after
/// the lease on its own clock.
#[tokio::test]
async fn crashed_holder_on_dynamodb_taken_over_only_after_lease() {
    let client = client();
    table(&client).await;
    let holder_clock = ManualClock::new(ManualClock::EPOCH_2025);
    let holder = LeaseLock::new(
        DynamoDbLockStore::new(client.clone(), TABLE),
        Arc::new(holder_clock.clone()),
        LockConfig::default(),
    )
    .unwrap();
    // The contender runs on its own clock, started at another time: only
    // durations matter.
    let clock = ManualClock::new(ManualClock::EPOCH_2025 + chrono::Duration::hours(5));
    let contender = LeaseLock::new(
        DynamoDbLockStore::new(client, TABLE),
        Arc::new(clock.clone()),
        LockConfig::default(),
    )
    .unwrap();
    let lease = Lease::new(Duration::from_secs(20)).unwrap();
    let guard = holder
        .try_acquire("svc/crash", "holder", lease)
        .await
        .unwrap();
    let token = guard.token();
    drop(guard); // crash: heartbeat stops, nothing released
    let contender_lease = lease.without_heartbeat();
    for step in [0, 5_000, 10_000, 4_999] {
        clock.advance(Duration::from_millis(step));
        let result = contender
            .try_acquire("svc/crash", "contender", contender_lease)
            .await;
        assert!(
            matches!(&result, Err(LockError::Held { holder, .. }) if holder == "holder"),
            "taken over before the lease: {result:?}"
        );
    }
    clock.advance(Duration::from_millis(1));
    let taken = contender
        .try_acquire("svc/crash", "contender", contender_lease)
        .await
        .expect("taken over after the lease");
    assert!(taken.token() > token);
}

/// A stored `lease_ms` of `u64::MAX` (a foreign or corrupt item) is a
/// permanent error when acquiring, not a panic; writing such a record does
/// not overflow the TTL sum either.
#[tokio::test]
async fn stored_lease_of_u64_max_is_an_error_on_dynamodb() {
    let client = client();
    table(&client).await;
    let store = DynamoDbLockStore::new(client.clone(), TABLE).with_retention(Duration::MAX);
    let record = LockRecord {
        key: "absurd".into(),
        holder: Some("intruder".into()),
        lease: Duration::from_millis(u64::MAX),
        version: RecordVersion::random(),
        token: FencingToken::new(u64::MAX),
        written_at: ManualClock::EPOCH_2025,
    };
    assert_eq!(
        store.write(&record, &WriteCondition::Absent).await.unwrap(),
        WriteOutcome::Written
    );
    let item = client
        .get_item()
        .table_name(TABLE)
        .key(
            "lock_key",
            aws_sdk_dynamodb::types::AttributeValue::S("absurd".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let stored = item.item().unwrap();
    assert_eq!(stored["lease_ms"].as_n().unwrap(), &u64::MAX.to_string());
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = LeaseLock::new(store, Arc::new(clock), LockConfig::default()).unwrap();
    let lease = Lease::new(Duration::from_secs(10))
        .unwrap()
        .without_heartbeat();
    let err = lock.try_acquire("absurd", "a", lease).await.unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
    let err = lock
        .acquire("absurd", "a", lease, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.backend_kind(),
        Some(BackendErrorKind::Permanent),
        "{err}"
    );
}

/// The lock's own write that landed behind an SDK retry. What is simulated:
/// the first attempt of a conditional PutItem lands but its response is
/// lost, and the SDK's retry of the very same request fails its condition.
/// Here the wrapper sends the same PutItem twice; moto 5.2.1 honours
/// `ReturnValuesOnConditionCheckFailure=ALL_OLD` on PutItem (checked in
/// moto/dynamodb/models/table.py), so the failure carries our own item.
#[derive(Debug)]
struct RetriedPut(DynamoDbLockStore);

#[async_trait::async_trait]
impl LockStore for RetriedPut {
    fn backend_name(&self) -> &'static str {
        "dynamodb-retried"
    }
    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        self.0.load(key).await
    }
    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        self.write_reporting(record, condition)
            .await
            .map(Into::into)
    }
    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<update_lock::WriteReport, LockError> {
        assert_eq!(
            self.0.write(record, condition).await?,
            WriteOutcome::Written,
            "first attempt"
        );
        self.0.write_reporting(record, condition).await
    }
}

#[tokio::test]
async fn a_write_that_landed_behind_an_sdk_retry_is_ours_on_moto() {
    let client = client();
    table(&client).await;
    let store = DynamoDbLockStore::new(client, TABLE);
    let record = LockRecord {
        key: "k".into(),
        holder: Some("a".into()),
        lease: Duration::from_secs(10),
        version: RecordVersion::random(),
        token: FencingToken::new(7),
        written_at: ManualClock::EPOCH_2025,
    };
    // The store reports the item that failed the condition.
    store.write(&record, &WriteCondition::Absent).await.unwrap();
    let report = store
        .write_reporting(&record, &WriteCondition::Absent)
        .await
        .unwrap();
    assert_eq!(
        report,
        update_lock::WriteReport::ConditionFailed {
            current: Some(record.clone())
        }
    );
    // The lock calls such a retried acquisition, renewal and release its own.
    let clock = ManualClock::new(ManualClock::EPOCH_2025);
    let lock = LeaseLock::new(RetriedPut(store), Arc::new(clock), LockConfig::default()).unwrap();
    let lease = Lease::new(Duration::from_secs(10))
        .unwrap()
        .without_heartbeat();
    let guard = lock.try_acquire("svc", "a", lease).await.expect("ours");
    lock.renew(&guard).await.expect("renewal ours");
    let stored = lock.inspect("svc").await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.token),
        (guard.record_version(), guard.token())
    );
    lock.release(&guard).await.expect("release ours");
    assert_eq!(lock.inspect("svc").await.unwrap().unwrap().holder, None);
}

#[tokio::test]
async fn ttl_is_set_only_on_released_records_on_moto() {
    let (lock, _clock) = lock_on_moto().await;
    let lease = Lease::new(Duration::from_secs(10))
        .unwrap()
        .without_heartbeat();
    let guard = lock.try_acquire("svc", "a", lease).await.unwrap();
    let held = client_item(lock.store(), "svc").await;
    assert!(!held.contains_key(TTL_ATTRIBUTE), "held: {held:?}");
    lock.renew(&guard).await.unwrap();
    assert!(
        !client_item(lock.store(), "svc")
            .await
            .contains_key(TTL_ATTRIBUTE)
    );
    lock.release(&guard).await.unwrap();
    let released = client_item(lock.store(), "svc").await;
    assert!(
        released.contains_key(TTL_ATTRIBUTE),
        "released: {released:?}"
    );
    assert!(!released.contains_key("holder"));
}

async fn client_item(
    store: &DynamoDbLockStore,
    key: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            "lock_key",
            aws_sdk_dynamodb::types::AttributeValue::S(key.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .expect("item")
}

#[tokio::test]
async fn a_holder_of_the_wrong_type_is_an_error_not_free() {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    let client = client();
    table(&client).await;
    client
        .put_item()
        .table_name(TABLE)
        .item("lock_key", V::S("svc".into()))
        .item("holder", V::N("7".into()))
        .item("lease_ms", V::N("10000".into()))
        .item("record_version", V::S("v".into()))
        .item("fence", V::N("1".into()))
        .item("written_at", V::S("2025-01-01T00:00:00Z".into()))
        .send()
        .await
        .unwrap();
    let store = DynamoDbLockStore::new(client, TABLE);
    let err = store.load("svc").await.unwrap_err();
    assert_eq!(err.backend_kind(), Some(BackendErrorKind::Permanent));
    let text = err.to_string();
    for part in [TABLE, "\"svc\"", "`holder`"] {
        assert!(text.contains(part), "{part} in {text}");
    }
}

#[tokio::test]
async fn create_table_if_missing_checks_the_key_schema_and_enables_ttl() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveStatus,
    };
    let client = client();
    let clock = ManualClock::auto_advancing(ManualClock::EPOCH_2025);
    // (table, key attribute, key type): an existing table without TTL.
    let cases = [
        ("right", "lock_key", ScalarAttributeType::S, true),
        ("wrong-name", "id", ScalarAttributeType::S, false),
        ("wrong-type", "lock_key", ScalarAttributeType::N, false),
    ];
    for (name, attribute, kind, ok) in cases {
        client
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(kind)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap();
        let result = create_table_if_missing(&client, name, &clock, Duration::from_secs(60)).await;
        if ok {
            assert_eq!(result.unwrap(), TableSetup::AlreadyExisted);
            let ttl = client
                .describe_time_to_live()
                .table_name(name)
                .send()
                .await
                .unwrap();
            let ttl = ttl.time_to_live_description().unwrap();
            assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
            assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
            // Idempotent.
            let again = create_table_if_missing(&client, name, &clock, Duration::from_secs(60));
            assert_eq!(again.await.unwrap(), TableSetup::AlreadyExisted);
        } else {
            let err = result.unwrap_err();
            assert_eq!(
                err.backend_kind(),
                Some(BackendErrorKind::Permanent),
                "{err}"
            );
            let text = err.to_string();
            assert!(text.contains(name) && text.contains("lock_key"), "{text}");
        }
    }
}
