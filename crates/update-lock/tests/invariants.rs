//! Property test on the in-memory backend: under any interleaving of
//! acquires, renewals, releases, crashes and clock advances by several
//! owners, at most one guard is valid at a time, the valid guard is the
//! record's holder, and tokens of successful acquisitions strictly increase.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;
use update_clock::ManualClock;
use update_lock::{Lease, LeaseGuard, LeaseLock, MemoryLockStore, UpdateLock};

const OWNERS: usize = 3;
const LEASE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    Acquire(usize),
    Renew(usize),
    Release(usize),
    Crash(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..OWNERS).prop_map(Op::Acquire),
        2 => (0..OWNERS).prop_map(Op::Renew),
        2 => (0..OWNERS).prop_map(Op::Release),
        1 => (0..OWNERS).prop_map(Op::Crash),
        3 => (0u64..12_000).prop_map(Op::Advance),
    ]
}

fn check_invariants(
    rt: &tokio::runtime::Runtime,
    lock: &LeaseLock<MemoryLockStore>,
    guards: &[Option<LeaseGuard>],
) -> Result<(), TestCaseError> {
    let valid: Vec<&LeaseGuard> = guards
        .iter()
        .flatten()
        .filter(|g| g.check().is_ok())
        .collect();
    prop_assert!(valid.len() <= 1, "two valid guards: {:?}", valid);
    if let Some(guard) = valid.first() {
        let record = rt.block_on(lock.inspect("k")).unwrap().expect("record");
        prop_assert_eq!(record.holder.as_deref(), Some(guard.owner()));
        prop_assert_eq!(record.token, guard.token());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn one_valid_holder_and_increasing_tokens(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let clock = ManualClock::new(ManualClock::EPOCH_2025);
        let lock = LeaseLock::in_memory(Arc::new(clock.clone()));
        let lease = Lease::new(LEASE).unwrap().without_heartbeat();
        let mut guards: Vec<Option<LeaseGuard>> = (0..OWNERS).map(|_| None).collect();
        let mut last_token = None;
        for op in ops {
            match op {
                Op::Acquire(o) => {
                    if let Ok(guard) = rt.block_on(lock.try_acquire("k", &format!("owner-{o}"), lease)) {
                        prop_assert!(last_token < Some(guard.token()), "token went back");
                        last_token = Some(guard.token());
                        guards[o] = Some(guard);
                    }
                }
                Op::Renew(o) => {
                    if let Some(guard) = &guards[o] {
                        let _ = rt.block_on(lock.renew(guard));
                    }
                }
                Op::Release(o) => {
                    if let Some(guard) = &guards[o] {
                        let _ = rt.block_on(lock.release(guard));
                    }
                }
                Op::Crash(o) => guards[o] = None,
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            }
            check_invariants(&rt, &lock, &guards)?;
        }
    }
}
