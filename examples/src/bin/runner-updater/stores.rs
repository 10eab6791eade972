//! The lock, journal and quarantine backends, the release source, and the
//! commands that only touch the stores: `quarantine` and `hold`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use runner_updater::{
    FileJournal, FileQuarantine, Journal, MemoryJournal, MemoryQuarantine, QuarantineStore,
    RunnerRecord, modify,
};
use runner_version::{
    FileHighWaterMark, HttpConfig, HttpManifestSource, ReleaseSource, ReleaseVerifier,
    StaticSource, Version,
};
use serde_json::json;
use update_lock::{FileLockStore, LeaseLock, LockConfig, LockRecord, MemoryLockStore, UpdateLock};
use update_policy::Hold;

use crate::{
    cli::{HoldAction, QuarantineAction},
    config::{Backend, ReleaseLocation},
    context::Ctx,
    exit::{AppError, Exit},
    output::{self, Table},
};

/// The three stores of one runner; the journal lives with the lock, so its
/// writes can be fenced by the lock's token.
#[derive(Debug, Clone)]
pub struct Stores {
    /// The lease lock.
    pub lock: Arc<dyn UpdateLock>,
    /// The fenced journal.
    pub journal: Arc<dyn Journal>,
    /// Quarantine, hold, highest successful version, last outcome.
    pub quarantine: Arc<dyn QuarantineStore>,
}

impl Stores {
    /// Opens the configured backend.
    pub async fn open(ctx: &Ctx) -> Result<Self, AppError> {
        let clock = ctx.clock.clone();
        let lock_err = |e: update_lock::LockError| AppError::failed(format!("lock store: {e}"));
        match &ctx.settings.backend {
            Backend::Memory => {
                let locks = MemoryLockStore::new();
                Ok(Self {
                    lock: Arc::new(
                        LeaseLock::new(locks.clone(), clock, LockConfig::default())
                            .map_err(lock_err)?,
                    ),
                    journal: Arc::new(MemoryJournal::new(locks)),
                    quarantine: Arc::new(MemoryQuarantine::default()),
                })
            }
            Backend::File(dir) => {
                let locks = FileLockStore::open(dir.clone()).map_err(|e| {
                    AppError::config(
                        "lock.dir",
                        format!("cannot be used ({}): {e}", dir.display()),
                    )
                })?;
                Ok(Self {
                    lock: Arc::new(
                        LeaseLock::new(locks.clone(), clock, LockConfig::default())
                            .map_err(lock_err)?,
                    ),
                    journal: Arc::new(FileJournal::new(locks)),
                    quarantine: Arc::new(FileQuarantine::open(dir.clone())?),
                })
            }
            #[cfg(feature = "aws")]
            Backend::DynamoDb(table) => {
                use runner_updater::dynamodb::{DynamoDbJournal, DynamoDbQuarantine};
                use update_lock::dynamodb::DynamoDbLockStore;
                let client = aws_sdk_dynamodb::Client::new(ctx.sdk().await);
                Ok(Self {
                    lock: Arc::new(
                        LeaseLock::new(
                            DynamoDbLockStore::new(client.clone(), table.clone()),
                            clock,
                            LockConfig::default(),
                        )
                        .map_err(lock_err)?,
                    ),
                    journal: Arc::new(DynamoDbJournal::new(client.clone(), table.clone())),
                    quarantine: Arc::new(DynamoDbQuarantine::new(client, table.clone())),
                })
            }
            #[cfg(not(feature = "aws"))]
            Backend::DynamoDb(_) => Err(AppError::aws_not_built("lock.backend = \"dynamodb\"")),
        }
    }
}

/// The configured release source, verifying with the configured trust
/// policy on the system clock.
pub fn release_source(ctx: &Ctx) -> Result<Arc<dyn ReleaseSource>, AppError> {
    let settings = ctx.settings.release()?;
    let mut verifier = ReleaseVerifier::builder().clock(ctx.clock.clone());
    if let Some(policy) = &settings.trust {
        verifier = verifier.trust_policy(policy.clone());
    }
    if settings.allow_unsigned {
        verifier = verifier.allow_unsigned();
    }
    if let Some(path) = &settings.high_water_file {
        verifier = verifier.high_water_mark(Arc::new(FileHighWaterMark::new(path)));
    }
    let verifier = verifier
        .build()
        .map_err(|e| AppError::config("release.trusted_keys", e.to_string()))?;
    let channel = ctx.settings.policy.channel.clone();
    Ok(match &settings.location {
        ReleaseLocation::Url(url) => Arc::new(
            HttpManifestSource::builder()
                .channel_url(channel, url.clone())
                .config(HttpConfig {
                    timeout: settings.timeout,
                    connect_timeout: settings.timeout.min(std::time::Duration::from_secs(5)),
                    allow_loopback_http: settings.allow_loopback_http,
                    ..HttpConfig::default()
                })
                .verifier(verifier)
                .build()
                .map_err(|e| AppError::config("release.manifest_url", e.to_string()))?,
        ),
        ReleaseLocation::File(path) => {
            Arc::new(StaticSource::new(verifier).with_manifest_file(channel, path))
        }
    })
}

/// The lock record as JSON.
pub fn lock_json(record: Option<&LockRecord>) -> serde_json::Value {
    match record {
        None => json!({ "state": "never_taken" }),
        Some(r) => json!({
            "state": if r.holder.is_some() { "held" } else { "free" },
            "holder": r.holder,
            "fencing_token": r.token.get(),
            "lease_secs": r.lease.as_secs(),
            "written_at": r.written_at,
        }),
    }
}

/// The lock record in words.
pub fn lock_text(record: Option<&LockRecord>) -> String {
    match record {
        None => "never taken".into(),
        Some(r) => match &r.holder {
            Some(h) => format!(
                "held by {h} (fencing token {}, lease {} s, last written {})",
                r.token,
                r.lease.as_secs(),
                r.written_at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None => format!(
                "free (last fencing token {}, released {})",
                r.token,
                r.written_at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        },
    }
}

/// The quarantine entries as a table.
pub fn quarantine_table(record: &RunnerRecord, now: DateTime<Utc>) -> Table {
    let mut table = Table::new(&["version", "attempts", "retry after", "active", "reason"]);
    for q in &record.quarantine {
        table.row(vec![
            q.version.to_string(),
            q.attempts.to_string(),
            q.retry_after.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            if q.is_active(now) { "yes" } else { "expired" }.into(),
            q.reason.clone(),
        ]);
    }
    table
}

/// `quarantine list|clear`.
pub async fn quarantine(ctx: &Ctx, action: QuarantineAction) -> Result<Exit, AppError> {
    let stores = Stores::open(ctx).await?;
    let key = ctx.settings.runner();
    let now = ctx.clock.now();
    match action {
        QuarantineAction::List => {
            let (record, _) = stores.quarantine.load(key).await?;
            if ctx.text() {
                if record.quarantine.is_empty() {
                    println!("No quarantined release for runner {key}.");
                } else {
                    println!("Quarantined releases of runner {key}:");
                    println!("{}", quarantine_table(&record, now).render());
                }
            } else {
                let entries: Vec<_> = record
                    .quarantine
                    .iter()
                    .map(|q| {
                        let mut v = serde_json::to_value(q).unwrap_or_default();
                        v["active"] = json!(q.is_active(now));
                        v
                    })
                    .collect();
                output::json(&json!({ "runner": key, "quarantine": entries }));
            }
        }
        QuarantineAction::Clear { release } => {
            let version: Version = release.parse().map_err(|e| {
                AppError::Usage(format!("VERSION {release:?} is not a release version: {e}"))
            })?;
            let mut cleared = false;
            modify(stores.quarantine.as_ref(), key, |r| {
                cleared = r.clear_quarantine(&version);
            })
            .await?;
            if ctx.text() {
                if cleared {
                    println!(
                        "Lifted the quarantine of {version} for runner {key}; the next check may deploy it again."
                    );
                } else {
                    println!("{version} was not quarantined for runner {key}; nothing to do.");
                }
            } else {
                output::json(
                    &json!({ "runner": key, "version": version.to_string(), "cleared": cleared }),
                );
            }
        }
    }
    Ok(Exit::Success)
}

/// `hold set|clear`.
pub async fn hold(ctx: &Ctx, action: HoldAction) -> Result<Exit, AppError> {
    let stores = Stores::open(ctx).await?;
    let key = ctx.settings.runner().to_string();
    match action {
        HoldAction::Set { reason, until } => {
            if reason.trim().is_empty() {
                return Err(AppError::Usage(
                    "--reason is empty; say why you hold".into(),
                ));
            }
            let expires_at = until
                .as_deref()
                .map(|u| {
                    DateTime::parse_from_rfc3339(u)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| {
                            AppError::Usage(format!(
                                "--until {u:?} is not an RFC 3339 time such as 2025-02-01T00:00:00Z: {e}"
                            ))
                        })
                })
                .transpose()?;
            if let Some(t) = expires_at
                && t <= ctx.clock.now()
            {
                return Err(AppError::Usage(format!("--until {t} is in the past")));
            }
            let hold = Hold {
                reason: reason.clone(),
                expires_at,
            };
            let stored = hold.clone();
            modify(stores.quarantine.as_ref(), &key, move |r| {
                r.hold = Some(stored.clone());
            })
            .await?;
            if ctx.text() {
                println!(
                    "Runner {key} is held at its current version ({reason}){}.",
                    expires_at.map_or(" until `hold clear`".into(), |t| format!(
                        " until {}",
                        t.format("%Y-%m-%dT%H:%M:%SZ")
                    ))
                );
                if ctx.settings.policy.hold.is_some() {
                    println!(
                        "Note: [policy] hold in the config file takes precedence over this hold."
                    );
                }
            } else {
                output::json(&json!({ "runner": key, "hold": hold }));
            }
        }
        HoldAction::Clear {
            acknowledge_rollback,
        } => {
            let running = if acknowledge_rollback {
                Some(running_version(ctx).await?)
            } else {
                None
            };
            let record = modify(stores.quarantine.as_ref(), &key, |r| {
                r.hold = None;
                if let Some(v) = &running {
                    r.highest_successful_version = Some(v.clone());
                }
            })
            .await?;
            if ctx.text() {
                println!("Runner {key}: the operator hold is lifted.");
                if let Some(v) = &running {
                    println!(
                        "The manual rollback is acknowledged: {v} (running now) is the highest successful version; updates resume."
                    );
                }
                if ctx.settings.policy.hold.is_some() {
                    println!("Note: [policy] hold in the config file still holds the runner.");
                }
            } else {
                output::json(&json!({
                    "runner": key,
                    "hold": record.hold,
                    "highest_successful_version": record.highest_successful_version.map(|v| v.to_string()),
                }));
            }
        }
    }
    Ok(Exit::Success)
}

#[cfg(feature = "aws")]
async fn running_version(ctx: &Ctx) -> Result<Version, AppError> {
    let (updater, _) = crate::aws::updater(ctx, None).await?;
    let running = updater.running().await?;
    running.version.ok_or_else(|| {
        AppError::failed(format!(
            "cannot tell the version the runner runs (image {}); set targets[0].version_label",
            running.image
        ))
    })
}

#[cfg(not(feature = "aws"))]
async fn running_version(_ctx: &Ctx) -> Result<Version, AppError> {
    Err(AppError::aws_not_built("hold clear --acknowledge-rollback"))
}
