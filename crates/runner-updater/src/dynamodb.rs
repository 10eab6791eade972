//! The DynamoDB journal and quarantine store (feature `aws`), kept in the
//! lock's own table so that every journal write can be checked against the
//! lock record atomically.
//!
//! # Items
//!
//! Both stores share the table of
//! [`DynamoDbLockStore`](update_lock::dynamodb::DynamoDbLockStore)
//! (partition key `lock_key`, created by
//! [`create_table_if_missing`](update_lock::dynamodb::create_table_if_missing))
//! and put their items next to the lock items, under prefixed keys:
//!
//! | item               | `lock_key`           | attributes                                                          |
//! |--------------------|----------------------|---------------------------------------------------------------------|
//! | lock (update-lock) | `<lock key>`         | `holder` (S, absent when free), `fence` (N), `record_version`, ... |
//! | journal entry      | `journal#<lock key>` | `entry` (S, JSON [`JournalEntry`]), `written_at` (S, RFC 3339), `step` (S, step name, informational) |
//! | runner record      | `runner#<runner key>`| `record` (S, JSON [`RunnerRecord`]), `revision` (N)                 |
//!
//! Lock keys must therefore not begin with `journal#` or `runner#`; a
//! journal write fenced by such a key is refused.
//!
//! # Fencing
//!
//! [`DynamoDbJournal::write`] is one `TransactWriteItems` with two parts: a
//! `ConditionCheck` on the lock item (`holder = :owner AND fence = :token`)
//! and the `Put` of the journal item. DynamoDB applies both or neither, so
//! an entry lands only while the writer still holds the lock with its
//! token. A check that fails cancels the transaction; the journal then
//! re-reads the lock item and answers [`Error::Fenced`] naming the current
//! holder. Reads are strongly consistent.
//!
//! A lock heartbeat (`PutItem` on the lock item) that collides with an
//! in-flight journal transaction may be rejected by DynamoDB with
//! `TransactionConflictException`, which the lock classifies as transient.
//!
//! # IAM
//!
//! On the table: `dynamodb:GetItem` (loads, and the re-read of the lock
//! item after a refused write), `dynamodb:PutItem` (quarantine writes and the
//! `Put` inside the journal transaction) and `dynamodb:ConditionCheckItem`
//! (the `ConditionCheck` inside the journal transaction). A
//! `TransactWriteItems` call is authorised by the actions of its parts
//! (AWS: "Using IAM with DynamoDB transactions"); there is no separate
//! `dynamodb:TransactWriteItems` IAM action to grant. The lock itself needs
//! `dynamodb:GetItem` and `dynamodb:PutItem` too.
//!
//! # Errors
//!
//! SDK failures become [`Error::Store`] with resource `<table>/<item key>`
//! and a class: throttling codes (and HTTP 429) are
//! [`Throttled`](ErrorClass::Throttled); internal errors, transaction
//! conflicts, 5xx, time-outs and dispatch or response failures are
//! [`Transient`](ErrorClass::Transient); everything else (a missing table,
//! access denied, validation) is [`Permanent`](ErrorClass::Permanent).
//! Items that cannot be decoded are [`Error::CorruptRecord`].

use std::{collections::HashMap, fmt};

use async_trait::async_trait;
use aws_sdk_dynamodb::{
    Client,
    config::http::HttpResponse,
    error::{BuildError, ProvideErrorMetadata, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, ConditionCheck, Put, TransactWriteItem},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    BoxError, Error, ErrorClass, Fence, Journal, JournalEntry, QuarantineStore, Result, Revision,
    RunnerRecord,
};

/// The partition key attribute of the shared table (the lock's).
const KEY_ATTRIBUTE: &str = "lock_key";
/// The lock item's holder attribute (absent when free).
const HOLDER: &str = "holder";
/// The lock item's fencing token attribute.
const FENCE: &str = "fence";
const ENTRY: &str = "entry";
const WRITTEN_AT: &str = "written_at";
const STEP: &str = "step";
const RECORD: &str = "record";
const REVISION: &str = "revision";

/// The key prefix of journal items: the entry of lock key `k` is the item
/// `journal#k`.
pub const JOURNAL_KEY_PREFIX: &str = "journal#";
/// The key prefix of runner records: the record of runner key `k` is the
/// item `runner#k`.
pub const RUNNER_KEY_PREFIX: &str = "runner#";

/// The journal in the lock's DynamoDB table, fenced by the lock item (see
/// the [module docs](self) for the items, the IAM actions and the errors).
///
/// Takes a ready-built client: its retry, endpoint and credentials are the
/// embedder's. Use the same table as the updater's
/// [`DynamoDbLockStore`](update_lock::dynamodb::DynamoDbLockStore).
///
/// ```no_run
/// use aws_sdk_dynamodb::{
///     Client,
///     config::{BehaviorVersion, Region},
/// };
/// use runner_updater::{Journal, dynamodb::DynamoDbJournal};
///
/// # async fn demo() -> runner_updater::Result<()> {
/// // Usually `Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)`.
/// let config = aws_sdk_dynamodb::Config::builder()
///     .behavior_version(BehaviorVersion::latest())
///     .region(Region::new("eu-west-1"))
///     .build();
/// let journal = DynamoDbJournal::new(Client::from_conf(config), "update-locks");
/// assert_eq!(journal.backend_name(), "dynamodb");
/// if let Some(entry) = journal.load("runner/prod").await? {
///     println!("unfinished update {} at step {}", entry.update_id, entry.step.name());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbJournal {
    client: Client,
    table: String,
}

impl DynamoDbJournal {
    /// A journal in `table` (the lock's table) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn resource(&self, item_key: &str) -> String {
        format!("{}/{item_key}", self.table)
    }

    /// The [`Error::Fenced`] for `fence`, describing the lock item as it is
    /// now (read strongly consistent after the refused write).
    async fn fenced(&self, fence: &Fence) -> Error {
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(fence.key.clone()))
            .consistent_read(true)
            .send()
            .await;
        let current = match read {
            Ok(output) => describe_lock(output.item()),
            Err(error) => format!(
                "unknown: the write was refused, and re-reading the lock item failed ({})",
                failure_detail("GetItem", &error)
            ),
        };
        Error::Fenced {
            key: fence.key.clone(),
            owner: fence.owner.clone(),
            token: fence.token,
            current,
        }
    }
}

/// The lock item in the words of [`Fence::admits`].
fn describe_lock(item: Option<&HashMap<String, AttributeValue>>) -> String {
    let Some(item) = item else {
        return "absent".into();
    };
    let token = match item.get(FENCE).and_then(|v| v.as_n().ok()) {
        Some(n) => n
            .parse::<u64>()
            .map(|t| update_lock::FencingToken::new(t).to_string())
            .unwrap_or_else(|_| n.clone()),
        None => "?".into(),
    };
    match item.get(HOLDER).and_then(|v| v.as_s().ok()) {
        Some(holder) => format!("held by {holder:?} with token {token}"),
        None => format!("free (last token {token})"),
    }
}

#[async_trait]
impl Journal for DynamoDbJournal {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }

    async fn load(&self, key: &str) -> Result<Option<JournalEntry>> {
        let item_key = format!("{JOURNAL_KEY_PREFIX}{key}");
        let resource = self.resource(&item_key);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(item_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_failure("journal", &resource, "GetItem", e))?;
        output
            .item()
            .map(|item| decode(item, ENTRY, "journal", &resource))
            .transpose()
    }

    async fn write(&self, entry: &JournalEntry, fence: &Fence) -> Result<()> {
        let item_key = format!("{JOURNAL_KEY_PREFIX}{}", fence.key);
        let resource = self.resource(&item_key);
        let refuse = |reason: String| {
            Error::store("journal", resource.clone(), ErrorClass::Permanent, reason)
        };
        if entry.key != fence.key {
            return Err(refuse(format!(
                "the entry's key {:?} differs from the fence's key {:?}: an entry is fenced by \
                 the lock of its own key",
                entry.key, fence.key
            )));
        }
        if [JOURNAL_KEY_PREFIX, RUNNER_KEY_PREFIX]
            .iter()
            .any(|prefix| fence.key.starts_with(prefix))
        {
            return Err(refuse(format!(
                "lock key {:?} begins with a prefix reserved for journal and runner items in the \
                 shared table ({JOURNAL_KEY_PREFIX:?}, {RUNNER_KEY_PREFIX:?}); choose another lock key",
                fence.key
            )));
        }
        let json = to_json(entry, "journal", &resource)?;
        let build =
            |e: BuildError| Error::store("journal", resource.clone(), ErrorClass::Permanent, e);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(fence.key.clone()))
            .condition_expression("#h = :owner AND #f = :token")
            .expression_attribute_names("#h", HOLDER)
            .expression_attribute_names("#f", FENCE)
            .expression_attribute_values(":owner", AttributeValue::S(fence.owner.clone()))
            .expression_attribute_values(":token", AttributeValue::N(fence.token.get().to_string()))
            .build()
            .map_err(build)?;
        let put = Put::builder()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(item_key.clone()))
            .item(ENTRY, AttributeValue::S(json))
            .item(WRITTEN_AT, AttributeValue::S(entry.written_at.to_rfc3339()))
            .item(STEP, AttributeValue::S(entry.step.name().to_string()))
            .build()
            .map_err(build)?;
        let sent = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        let error = match sent {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        {
            let reasons: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            // Item 0 is the ConditionCheck on the lock item.
            if reasons.first() == Some(&"ConditionalCheckFailed") {
                return Err(self.fenced(fence).await);
            }
            let detail = format!(
                "TransactWriteItems was cancelled (lock item: {}, journal item: {}): {}",
                reasons.first().unwrap_or(&"None"),
                reasons.get(1).unwrap_or(&"None"),
                cancelled.message().unwrap_or("no message")
            );
            return Err(Error::store(
                "journal",
                resource,
                cancellation_class(&reasons),
                Failure {
                    detail,
                    source: Some(Box::new(error)),
                },
            ));
        }
        Err(sdk_failure(
            "journal",
            &resource,
            "TransactWriteItems",
            error,
        ))
    }
}

/// Runner records in the lock's DynamoDB table, with compare-and-swap on
/// the `revision` attribute (see the [module docs](self) for the items, the
/// IAM actions and the errors).
///
/// Takes a ready-built client: its retry, endpoint and credentials are the
/// embedder's.
///
/// ```no_run
/// use aws_sdk_dynamodb::{
///     Client,
///     config::{BehaviorVersion, Region},
/// };
/// use runner_updater::{QuarantineStore, dynamodb::DynamoDbQuarantine, modify};
///
/// # async fn demo() -> runner_updater::Result<()> {
/// // Usually `Client::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)`.
/// let config = aws_sdk_dynamodb::Config::builder()
///     .behavior_version(BehaviorVersion::latest())
///     .region(Region::new("eu-west-1"))
///     .build();
/// let store = DynamoDbQuarantine::new(Client::from_conf(config), "update-locks");
/// assert_eq!(store.backend_name(), "dynamodb");
/// modify(&store, "runner/prod", |record| record.hold = None).await?;
/// let (record, revision) = store.load("runner/prod").await?;
/// println!("{} quarantined release(s) at revision {}", record.quarantine.len(), revision.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbQuarantine {
    client: Client,
    table: String,
}

impl DynamoDbQuarantine {
    /// A store in `table` (the lock's table) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }
}

#[async_trait]
impl QuarantineStore for DynamoDbQuarantine {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }

    async fn load(&self, key: &str) -> Result<(RunnerRecord, Revision)> {
        let item_key = format!("{RUNNER_KEY_PREFIX}{key}");
        let resource = format!("{}/{item_key}", self.table);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(item_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_failure("quarantine", &resource, "GetItem", e))?;
        let Some(item) = output.item() else {
            return Ok((RunnerRecord::default(), Revision(0)));
        };
        let record = decode(item, RECORD, "quarantine", &resource)?;
        let revision = item
            .get(REVISION)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| Error::CorruptRecord {
                what: "quarantine",
                resource: resource.clone(),
                reason: format!("the `{REVISION}` attribute is missing or not a whole number"),
            })?;
        Ok((record, Revision(revision)))
    }

    async fn store(&self, key: &str, record: &RunnerRecord, expected: Revision) -> Result<bool> {
        let item_key = format!("{RUNNER_KEY_PREFIX}{key}");
        let resource = format!("{}/{item_key}", self.table);
        let json = to_json(record, "quarantine", &resource)?;
        let next = expected.0.checked_add(1).ok_or_else(|| {
            Error::store(
                "quarantine",
                resource.clone(),
                ErrorClass::Permanent,
                "the record's revision cannot grow any further",
            )
        })?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(item_key))
            .item(RECORD, AttributeValue::S(json))
            .item(REVISION, AttributeValue::N(next.to_string()));
        let request = if expected.0 == 0 {
            request
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", KEY_ATTRIBUTE)
        } else {
            request
                .condition_expression("#r = :expected")
                .expression_attribute_names("#r", REVISION)
                .expression_attribute_values(":expected", AttributeValue::N(expected.0.to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(sdk_failure("quarantine", &resource, "PutItem", error)),
        }
    }
}

fn to_json(value: &impl Serialize, what: &'static str, resource: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::store(what, resource.to_string(), ErrorClass::Permanent, e))
}

/// Decodes the JSON string attribute `attribute` of `item`.
fn decode<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    attribute: &str,
    what: &'static str,
    resource: &str,
) -> Result<T> {
    let corrupt = |reason: String| Error::CorruptRecord {
        what,
        resource: resource.to_string(),
        reason,
    };
    let json = item
        .get(attribute)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt(format!("the `{attribute}` string attribute is missing")))?;
    serde_json::from_str(json).map_err(|e| corrupt(format!("`{attribute}`: {e}")))
}

/// A DynamoDB failure in words, with the SDK error as its source.
#[derive(Debug)]
struct Failure {
    detail: String,
    source: Option<BoxError>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The class of a DynamoDB failure from its error code and HTTP status:
/// update-lock's table, so the lock and the journal in one table agree.
fn classify(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    match update_lock::dynamodb::classify(code, status) {
        update_lock::BackendErrorKind::Throttled => ErrorClass::Throttled,
        update_lock::BackendErrorKind::Transient => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// The class of a cancelled transaction whose lock check did not fail,
/// from its cancellation reason codes.
fn cancellation_class(reasons: &[&str]) -> ErrorClass {
    if reasons.iter().any(|r| {
        matches!(
            *r,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        ErrorClass::Throttled
    } else if reasons.contains(&"TransactionConflict") {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

fn failure_detail<E>(action: &str, error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let hint = match error.code() {
        Some("ResourceNotFoundException") => {
            "; the table does not exist: create it (see update_lock::dynamodb::create_table_if_missing)"
        }
        Some("AccessDeniedException") => {
            "; grant dynamodb:GetItem, dynamodb:PutItem and dynamodb:ConditionCheckItem on the table"
        }
        _ => "",
    };
    match error.code() {
        Some(code) => format!(
            "{action} failed with {code}: {}{hint}",
            error.message().unwrap_or("no message")
        ),
        None => format!(
            "{action} failed: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(error)
        ),
    }
}

fn sdk_failure<E>(
    what: &'static str,
    resource: &str,
    action: &str,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let class = match &error {
        SdkError::ServiceError(service) => {
            classify(service.err().code(), Some(service.raw().status().as_u16()))
        }
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        // Timeouts, connection failures and unparseable responses: the
        // request may or may not have been applied.
        _ => ErrorClass::Transient,
    };
    let detail = failure_detail(action, &error);
    Error::store(
        what,
        resource.to_string(),
        class,
        Failure {
            detail,
            source: Some(Box::new(error)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_follow_update_lock() {
        let cases = [
            (
                Some("ThrottlingException"),
                Some(400),
                ErrorClass::Throttled,
            ),
            (
                Some("TransactionConflictException"),
                Some(400),
                ErrorClass::Transient,
            ),
            (None, Some(503), ErrorClass::Transient),
            (
                Some("AccessDeniedException"),
                Some(400),
                ErrorClass::Permanent,
            ),
        ];
        for (code, status, class) in cases {
            assert_eq!(classify(code, status), class, "{code:?} {status:?}");
        }
    }

    #[test]
    fn cancellation_classes() {
        assert_eq!(
            cancellation_class(&["None", "ThrottlingError"]),
            ErrorClass::Throttled
        );
        assert_eq!(
            cancellation_class(&["ProvisionedThroughputExceeded", "None"]),
            ErrorClass::Throttled
        );
        assert_eq!(
            cancellation_class(&["TransactionConflict", "None"]),
            ErrorClass::Transient
        );
        assert_eq!(
            cancellation_class(&["None", "ValidationError"]),
            ErrorClass::Permanent
        );
        assert_eq!(cancellation_class(&[]), ErrorClass::Permanent);
    }

    #[test]
    fn lock_descriptions_use_the_words_of_fence_admits() {
        use update_lock::{FencingToken, LockRecord, RecordVersion};

        let fence = Fence {
            key: "k".into(),
            owner: "a".into(),
            token: FencingToken::new(7),
        };
        let admits = |record: Option<&LockRecord>| match fence.admits(record) {
            Err(Error::Fenced { current, .. }) => current,
            other => panic!("{other:?}"),
        };
        let record = |holder: Option<&str>| LockRecord {
            key: "k".into(),
            holder: holder.map(str::to_string),
            lease: std::time::Duration::from_secs(10),
            version: RecordVersion::random(),
            token: FencingToken::new(42),
            written_at: chrono::DateTime::UNIX_EPOCH,
        };
        assert_eq!(describe_lock(None), admits(None));
        let held = HashMap::from([
            (HOLDER.to_string(), AttributeValue::S("b".into())),
            (FENCE.to_string(), AttributeValue::N("42".into())),
        ]);
        assert_eq!(describe_lock(Some(&held)), admits(Some(&record(Some("b")))));
        assert_eq!(describe_lock(Some(&held)), "held by \"b\" with token 42");
        let free = HashMap::from([(FENCE.to_string(), AttributeValue::N("42".into()))]);
        assert_eq!(describe_lock(Some(&free)), admits(Some(&record(None))));
    }
}
