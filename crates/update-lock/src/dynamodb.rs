//! The DynamoDB backend (feature `aws`): one item per lock key, conditional
//! writes on the record version.
//!
//! # Table schema
//!
//! | attribute        | type | meaning                                                         |
//! |------------------|------|-----------------------------------------------------------------|
//! | `lock_key`       | S    | **partition key**: the lock key (no sort key)                   |
//! | `holder`         | S    | current holder; absent once released                            |
//! | `lease_ms`       | N    | lease duration in milliseconds (a duration, not a deadline)     |
//! | `record_version` | S    | random version, replaced on every write; the write condition    |
//! | `fence`          | N    | fencing token of the current or last holder                     |
//! | `written_at`     | S    | writer's wall clock, RFC 3339; informational only               |
//! | `expires_at`     | N    | **TTL attribute** (epoch seconds), on released records only: `written_at + lease + retention` |
//!
//! `expires_at` only lets DynamoDB delete released records untouched for
//! longer than the retention (default 7 days); a held record never carries
//! it, and the lock never reads it. Fencing tokens stay increasing across
//! such a deletion because a new record starts its token at the current
//! time in microseconds ([`FencingToken::initial`]); a contender that saw
//! the record held before it vanished still waits out one lease.
//!
//! Every write is a `PutItem` with `attribute_not_exists(lock_key)` or
//! `record_version = :expected` and `ReturnValuesOnConditionCheckFailure =
//! ALL_OLD`: `ConditionalCheckFailedException` becomes
//! [`WriteReport::ConditionFailed`] carrying the stored item, so the lock
//! recognises its own write that landed behind an SDK retry. Reads are
//! strongly consistent. [`create_table_if_missing`] creates the table
//! (on-demand billing), enables TTL on `expires_at` (also on an existing
//! table) and refuses an existing table with another key schema.
//!
//! # Not a global table
//!
//! DynamoDB global tables do **not** serialise conditional writes across
//! regions: concurrent writes in two regions are both accepted and
//! replication keeps the last writer's item, so two holders could each
//! believe they hold the lock. The lock table must be a plain, single-region
//! table, and every contender must use that table in that region.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
        TimeToLiveSpecification,
    },
};
use chrono::{DateTime, Utc};
use update_clock::Clock;

use crate::{
    BackendErrorKind, FencingToken, LockError, LockRecord, LockStore, RecordVersion,
    WriteCondition, WriteOutcome, WriteReport,
};
use aws_sdk_dynamodb::operation::put_item::PutItemError;

/// The partition key attribute.
pub const KEY_ATTRIBUTE: &str = "lock_key";
/// The TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
const HOLDER: &str = "holder";
const LEASE_MS: &str = "lease_ms";
const VERSION: &str = "record_version";
const FENCE: &str = "fence";
const WRITTEN_AT: &str = "written_at";

/// Lock records in a DynamoDB table (see the [module docs](self) for the
/// schema). Takes a ready-built client: its retry, endpoint and credentials
/// are the embedder's.
#[derive(Debug, Clone)]
pub struct DynamoDbLockStore {
    client: Client,
    table: Arc<str>,
    retention: Duration,
}

impl DynamoDbLockStore {
    /// The default time an untouched record is kept before TTL cleanup.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

    /// A store on `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
            retention: Self::DEFAULT_RETENTION,
        }
    }

    /// How long after its last write (plus its lease) a record may be
    /// deleted by DynamoDB TTL. Default 7 days.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The client in use (for other items in the same table, and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn item(&self, record: &LockRecord) -> HashMap<String, AttributeValue> {
        // Checked sums: an absurd lease or retention saturates at the
        // latest representable time instead of panicking.
        let expires = record
            .lease
            .checked_add(self.retention)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| record.written_at.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut item = HashMap::from([
            (
                KEY_ATTRIBUTE.to_string(),
                AttributeValue::S(record.key.clone()),
            ),
            (
                LEASE_MS.to_string(),
                AttributeValue::N(record.lease.as_millis().to_string()),
            ),
            (
                VERSION.to_string(),
                AttributeValue::S(record.version.as_str().to_string()),
            ),
            (
                FENCE.to_string(),
                AttributeValue::N(record.token.get().to_string()),
            ),
            (
                WRITTEN_AT.to_string(),
                AttributeValue::S(record.written_at.to_rfc3339()),
            ),
        ]);
        match &record.holder {
            Some(holder) => {
                item.insert(HOLDER.to_string(), AttributeValue::S(holder.clone()));
            }
            // Only a released record may expire: TTL never deletes a held
            // lock, however long its holder keeps renewing it.
            None => {
                item.insert(
                    TTL_ATTRIBUTE.to_string(),
                    AttributeValue::N(expires.timestamp().to_string()),
                );
            }
        }
        item
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<LockRecord, LockError> {
        let key = item
            .get(KEY_ATTRIBUTE)
            .and_then(|v| v.as_s().ok())
            .map_or("?", String::as_str);
        let bad = |what: &str| {
            LockError::backend(
                BackendErrorKind::Permanent,
                format!(
                    "DynamoDB table {}, item {KEY_ATTRIBUTE}={key:?}",
                    self.table
                ),
                format!(
                    "lock item has a missing or malformed `{what}` attribute: the table is not a \
                     lock table of this version, or the item was edited by hand; fix or delete \
                     the item once no process holds the lock"
                ),
            )
        };
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        // Absent means free; present with another type is corrupt, never free.
        let holder = match item.get(HOLDER) {
            None => None,
            Some(AttributeValue::S(holder)) => Some(holder.clone()),
            Some(_) => return Err(bad(HOLDER)),
        };
        let n = |name: &str| -> Result<u64, LockError> {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(name))
        };
        Ok(LockRecord {
            key: s(KEY_ATTRIBUTE).ok_or_else(|| bad(KEY_ATTRIBUTE))?,
            holder,
            lease: Duration::from_millis(n(LEASE_MS)?),
            version: RecordVersion::from_stored(s(VERSION).ok_or_else(|| bad(VERSION))?),
            token: FencingToken::new(n(FENCE)?),
            written_at: s(WRITTEN_AT)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| bad(WRITTEN_AT))?,
        })
    }

    fn sdk_error<E>(&self, action: &str, error: SdkError<E, HttpResponse>) -> LockError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        sdk_error(&self.table, action, error)
    }
}

/// The class of a DynamoDB failure from its error code and HTTP status.
/// The class of a DynamoDB failure from its error code and HTTP status:
/// throttling codes and 429 are `Throttled`; internal errors, transaction
/// conflicts and 5xx are `Transient`; everything else is `Permanent`. Shared
/// with other stores in the same table (the updater's journal).
///
/// ```
/// use update_lock::{BackendErrorKind, dynamodb::classify};
///
/// assert_eq!(classify(Some("ThrottlingException"), Some(400)), BackendErrorKind::Throttled);
/// assert_eq!(classify(None, Some(503)), BackendErrorKind::Transient);
/// assert_eq!(classify(Some("ValidationException"), Some(400)), BackendErrorKind::Permanent);
/// ```
pub fn classify(code: Option<&str>, status: Option<u16>) -> BackendErrorKind {
    match code {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException",
        ) => BackendErrorKind::Throttled,
        Some(
            "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException"
            | "ReplicatedWriteConflictException",
        ) => BackendErrorKind::Transient,
        _ => match status {
            Some(429) => BackendErrorKind::Throttled,
            Some(500..=599) => BackendErrorKind::Transient,
            _ => BackendErrorKind::Permanent,
        },
    }
}

fn sdk_error<E>(table: &str, action: &str, error: SdkError<E, HttpResponse>) -> LockError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &error {
        SdkError::ServiceError(service) => {
            classify(service.err().code(), Some(service.raw().status().as_u16()))
        }
        SdkError::ConstructionFailure(_) => BackendErrorKind::Permanent,
        // Timeouts, connection failures and unparseable responses: the
        // request may or may not have been applied.
        _ => BackendErrorKind::Transient,
    };
    let hint = match error.code() {
        Some("ResourceNotFoundException") => {
            "; the table does not exist: create it (see update_lock::dynamodb::create_table_if_missing)"
        }
        Some("AccessDeniedException") => {
            "; grant dynamodb:GetItem, PutItem (and DescribeTable, CreateTable, UpdateTimeToLive for the helper) on the table"
        }
        _ => "",
    };
    let detail = match error.code() {
        Some(code) => format!(
            "{action} failed with {code}: {}{hint}",
            error.message().unwrap_or("no message")
        ),
        None => format!(
            "{action} failed: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        ),
    };
    LockError::backend(kind, format!("DynamoDB table {table}"), detail)
}

#[async_trait]
impl LockStore for DynamoDbLockStore {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }

    async fn load(&self, key: &str) -> Result<Option<LockRecord>, LockError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .key(KEY_ATTRIBUTE, AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e))?;
        output.item().map(|item| self.parse(item)).transpose()
    }

    async fn write(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteOutcome, LockError> {
        self.write_reporting(record, condition)
            .await
            .map(WriteOutcome::from)
    }

    async fn write_reporting(
        &self,
        record: &LockRecord,
        condition: &WriteCondition,
    ) -> Result<WriteReport, LockError> {
        let request = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(self.item(record)))
            // A failed condition carries the item that failed it, so the
            // lock can recognise its own write that landed behind an SDK
            // retry without another read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let request = match condition {
            WriteCondition::Absent => request
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", KEY_ATTRIBUTE),
            WriteCondition::VersionIs(version) => request
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", AttributeValue::S(version.as_str().to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(WriteReport::Written),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let current = match service.err() {
                    PutItemError::ConditionalCheckFailedException(failed) => {
                        failed.item().map(|item| self.parse(item)).transpose()?
                    }
                    _ => None,
                };
                Ok(WriteReport::ConditionFailed { current })
            }
            Err(error) => Err(self.sdk_error("PutItem", error)),
        }
    }
}

/// What [`create_table_if_missing`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableSetup {
    /// The table existed with the lock's key schema; TTL on `expires_at`
    /// was enabled if it was off.
    AlreadyExisted,
    /// The table was created, is `ACTIVE`, and TTL on `expires_at` is on.
    Created,
}

/// Creates the lock table `table` (partition key `lock_key`, on-demand
/// billing) and enables TTL on `expires_at`, unless the table exists.
/// Waits until the table is `ACTIVE`, polling `DescribeTable` every second
/// on `clock`, for at most `timeout`.
///
/// An existing table must have the lock's key schema (`lock_key` of type
/// S, no sort key), else a permanent error says what is wrong; its TTL is
/// enabled if it is off. Calling it again is harmless. Do not point it at a
/// global table (see the [module docs](self)).
pub async fn create_table_if_missing(
    client: &Client,
    table: &str,
    clock: &dyn Clock,
    timeout: Duration,
) -> Result<TableSetup, LockError> {
    match client.describe_table().table_name(table).send().await {
        Ok(described) => {
            check_key_schema(table, described.table())?;
            ensure_ttl(client, table).await?;
            return Ok(TableSetup::AlreadyExisted);
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(sdk_error(table, "DescribeTable", e)),
    }
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        LockError::backend(
            BackendErrorKind::Permanent,
            format!("DynamoDB table {table}"),
            e,
        )
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY_ATTRIBUTE)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Someone else created it meanwhile: fine, wait for it below.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(e) => return Err(sdk_error(table, "CreateTable", e)),
    }
    let started = clock.monotonic();
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(table, "DescribeTable", e))?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        if clock.monotonic() - started >= timeout {
            return Err(LockError::backend(
                BackendErrorKind::Transient,
                format!("DynamoDB table {table}"),
                format!("the table did not become ACTIVE within {timeout:?}; call again later"),
            ));
        }
        clock.sleep(Duration::from_secs(1)).await;
    }
    ensure_ttl(client, table).await?;
    Ok(TableSetup::Created)
}

/// Refuses a table whose key schema is not `lock_key` (S) alone.
fn check_key_schema(
    table: &str,
    description: Option<&aws_sdk_dynamodb::types::TableDescription>,
) -> Result<(), LockError> {
    let Some(description) = description else {
        return Ok(());
    };
    let keys: Vec<String> = description
        .key_schema()
        .iter()
        .map(|k| {
            let kind = description
                .attribute_definitions()
                .iter()
                .find(|d| d.attribute_name() == k.attribute_name())
                .map_or("?".to_string(), |d| d.attribute_type().as_str().to_string());
            format!("{} {} ({kind})", k.key_type().as_str(), k.attribute_name())
        })
        .collect();
    let expected = format!("{} {KEY_ATTRIBUTE} (S)", KeyType::Hash.as_str());
    if keys != [expected.clone()] {
        return Err(LockError::backend(
            BackendErrorKind::Permanent,
            format!("DynamoDB table {table}"),
            format!(
                "the table exists with key schema [{}], but a lock table needs exactly [{expected}] \
                 (partition key `{KEY_ATTRIBUTE}` of type S, no sort key); use another table name \
                 or recreate this table",
                keys.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Enables TTL on `expires_at` unless it is already on (idempotent);
/// refuses a table whose TTL is on another attribute.
async fn ensure_ttl(client: &Client, table: &str) -> Result<(), LockError> {
    use aws_sdk_dynamodb::types::TimeToLiveStatus;
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(table, "DescribeTimeToLive", e))?;
    let ttl = described.time_to_live_description();
    let status = ttl.and_then(|t| t.time_to_live_status());
    let attribute = ttl.and_then(|t| t.attribute_name());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        if attribute == Some(TTL_ATTRIBUTE) {
            return Ok(());
        }
        return Err(LockError::backend(
            BackendErrorKind::Permanent,
            format!("DynamoDB table {table}"),
            format!(
                "TTL is enabled on attribute {attribute:?}, but the lock expires released records \
                 through `{TTL_ATTRIBUTE}`; use another table or switch its TTL attribute"
            ),
        ));
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(|e| {
            LockError::backend(
                BackendErrorKind::Permanent,
                format!("DynamoDB table {table}"),
                e,
            )
        })?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| sdk_error(table, "UpdateTimeToLive", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_table() {
        let cases = [
            (
                Some("ProvisionedThroughputExceededException"),
                Some(400),
                BackendErrorKind::Throttled,
            ),
            (
                Some("ThrottlingException"),
                Some(400),
                BackendErrorKind::Throttled,
            ),
            (
                Some("RequestLimitExceeded"),
                Some(400),
                BackendErrorKind::Throttled,
            ),
            (
                Some("InternalServerError"),
                Some(500),
                BackendErrorKind::Transient,
            ),
            (
                Some("TransactionConflictException"),
                Some(400),
                BackendErrorKind::Transient,
            ),
            (
                Some("ResourceNotFoundException"),
                Some(400),
                BackendErrorKind::Permanent,
            ),
            (
                Some("AccessDeniedException"),
                Some(400),
                BackendErrorKind::Permanent,
            ),
            (
                Some("ValidationException"),
                Some(400),
                BackendErrorKind::Permanent,
            ),
            (None, Some(503), BackendErrorKind::Transient),
            (None, Some(429), BackendErrorKind::Throttled),
            (None, None, BackendErrorKind::Permanent),
        ];
        for (code, status, kind) in cases {
            assert_eq!(classify(code, status), kind, "{code:?} {status:?}");
        }
    }
}
