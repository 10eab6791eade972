//! The file journal is fenced by the file lock store it sits beside; the
//! file quarantine store compares and swaps.

use std::{sync::Arc, time::Duration};

use chrono::TimeZone;
use runner_updater::{
    Error, Fence, FileJournal, FileQuarantine, Journal, JournalEntry, JournalStep, QuarantineStore,
    Revision, RunnerRecord, modify,
};
use runner_version::{Channel, ImageRef, Release};
use update_clock::ManualClock;
use update_lock::{FileLockStore, Lease, LeaseLock, LockConfig, UpdateLock};

fn entry(
    key: &str,
    owner: &str,
    token: update_lock::FencingToken,
    step: JournalStep,
) -> JournalEntry {
    let at = chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    JournalEntry {
        key: key.into(),
        update_id: "u1".into(),
        release: Release {
            version: "20250102.1".parse().unwrap(),
            channel: Channel::Stable,
            image: ImageRef::parse(&format!("r.example.com/runner@sha256:{}", "ab".repeat(32)))
                .unwrap(),
            proxy_image: None,
            infra_version: Some("7".into()),
            template_url: "https://s3.amazonaws.com/b/t.json".into(),
            template_sha256: None,
            released_at: None,
            expires: None,
            waves: Default::default(),
        },
        targets: vec![],
        step,
        owner: owner.into(),
        token,
        started_at: at,
        written_at: at,
        history: vec![],
    }
}

#[tokio::test]
async fn a_takeover_fences_the_previous_holders_file_journal_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(ManualClock::EPOCH_2025));
    let store = FileLockStore::open(dir.path()).unwrap();
    let lock = LeaseLock::new(store.clone(), clock.clone(), LockConfig::default()).unwrap();
    let journal = FileJournal::new(store.clone());
    let lease = Lease::new(Duration::from_secs(60))
        .unwrap()
        .without_heartbeat();
    let key = "runners/runner";

    let a = lock.try_acquire(key, "a", lease).await.unwrap();
    let fence_a = Fence {
        key: key.into(),
        owner: "a".into(),
        token: a.token(),
    };
    journal
        .write(&entry(key, "a", a.token(), JournalStep::Locked), &fence_a)
        .await
        .unwrap();
    assert_eq!(journal.load(key).await.unwrap().unwrap().owner, "a");

    // B watches the record for one lease, then takes over.
    assert!(lock.try_acquire(key, "b", lease).await.is_err());
    clock.advance(Duration::from_secs(61));
    let b = lock.try_acquire(key, "b", lease).await.unwrap();
    assert!(b.token() > a.token());

    let err = journal
        .write(
            &entry(key, "a", a.token(), JournalStep::Registering { target: 0 }),
            &fence_a,
        )
        .await
        .unwrap_err();
    match &err {
        Error::Fenced { current, .. } => assert!(current.contains("\"b\""), "{current}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(
        journal.load(key).await.unwrap().unwrap().step,
        JournalStep::Locked,
        "unchanged"
    );

    let fence_b = Fence {
        key: key.into(),
        owner: "b".into(),
        token: b.token(),
    };
    journal
        .write(&entry(key, "b", b.token(), JournalStep::Locked), &fence_b)
        .await
        .unwrap();
    lock.release(&b).await.unwrap();
    assert!(
        matches!(
            journal
                .write(&entry(key, "b", b.token(), JournalStep::Locked), &fence_b)
                .await,
            Err(Error::Fenced { .. })
        ),
        "a released lock fences its last holder too"
    );
}

#[tokio::test]
async fn the_file_quarantine_store_compares_and_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileQuarantine::open(dir.path()).unwrap();
    let (record, rev) = store.load("r").await.unwrap();
    assert_eq!((record, rev), (RunnerRecord::default(), Revision(0)));
    let record = RunnerRecord {
        highest_successful_version: Some("20250101.1".parse().unwrap()),
        ..Default::default()
    };
    assert!(store.store("r", &record, Revision(0)).await.unwrap());
    assert!(
        !store.store("r", &record, Revision(0)).await.unwrap(),
        "stale revision refused"
    );
    let updated = modify(&store, "r", |r| {
        r.hold = Some(update_policy::Hold {
            reason: "freeze".into(),
            expires_at: None,
        })
    })
    .await
    .unwrap();
    assert_eq!(updated.hold.unwrap().reason, "freeze");
    let (record, rev) = store.load("r").await.unwrap();
    assert_eq!(rev, Revision(2));
    assert_eq!(
        record.highest_successful_version.unwrap().to_string(),
        "20250101.1"
    );

    // Concurrent modifications all land.
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            modify(store.as_ref(), "r", |r| {
                r.quarantine(update_policy::QuarantineEntry {
                    version: format!("2025010{}.1", i + 2).parse().unwrap(),
                    image_digest: None,
                    reason: "test".into(),
                    attempts: 1,
                    retry_after: chrono::Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
                })
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.load("r").await.unwrap().0.quarantine.len(), 4);
}
