//! The one error type of this crate.

use std::time::Duration;

use crate::{StackStatus, SubnetReport, WaitResume};

/// How a backend failure should be treated by a caller that retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A network failure, a timeout or a server error: retrying later may work.
    Transient,
    /// The service throttled the request: retry later, more slowly.
    Throttled,
    /// The request itself is wrong or not allowed: retrying will not help.
    Permanent,
}

/// A boxed error from a backend (an SDK error, an HTTP error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while reading, planning, updating or waiting
/// for a CloudFormation stack, or validating its subnets.
///
/// Input errors ([`InvalidTemplateUrl`](Error::InvalidTemplateUrl),
/// [`TemplateHashMismatch`](Error::TemplateHashMismatch),
/// [`UnknownParameter`](Error::UnknownParameter),
/// [`MissingParameter`](Error::MissingParameter),
/// [`InvalidSubnets`](Error::InvalidSubnets),
/// [`CapabilityNotAcknowledged`](Error::CapabilityNotAcknowledged)) are
/// always raised before any
/// mutating CloudFormation call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template URL is not an `https` S3 URL (and its host is not on the
    /// allow-list).
    #[error(
        "template URL {url:?} rejected: {reason}; use an https S3 URL \
         (https://<bucket>.s3.<region>.amazonaws.com/<key> or https://s3.<region>.amazonaws.com/<bucket>/<key>) \
         or add the host to TemplateUrlPolicy::allowed_hosts"
    )]
    InvalidTemplateUrl {
        /// The rejected URL.
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The template at `url` does not have the expected sha256.
    #[error(
        "template {url} has sha256 {actual}, expected {expected}: the template changed or the \
         expected hash is wrong; nothing was updated"
    )]
    TemplateHashMismatch {
        /// The template URL.
        url: String,
        /// The expected sha256 (lower-case hex).
        expected: String,
        /// The sha256 of the fetched body (lower-case hex).
        actual: String,
    },

    /// A template with an expected sha256 cannot be applied so that the
    /// verified bytes are the ones CloudFormation uses.
    #[error("template {url} cannot be applied verified: {reason}; nothing was updated")]
    TemplateNotVerifiable {
        /// The template URL.
        url: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// The template body could not be fetched to check its hash.
    #[error("cannot fetch template {url} to check its sha256: {reason}")]
    TemplateFetch {
        /// The template URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A parameter change names a parameter the (new) template does not
    /// declare.
    #[error(
        "stack {stack}: parameter {parameter:?} is not declared by the template \
         (declared: {declared:?}); fix the parameter name or the template"
    )]
    UnknownParameter {
        /// The stack.
        stack: String,
        /// The undeclared parameter.
        parameter: String,
        /// The parameters the template declares.
        declared: Vec<String>,
    },

    /// The new template declares a parameter without a default that the
    /// stack has no value for and the caller did not set.
    #[error(
        "stack {stack}: the template declares parameter {parameter:?} without a default and the \
         stack has no value for it; set it in parameter_changes"
    )]
    MissingParameter {
        /// The stack.
        stack: String,
        /// The parameter that needs a value.
        parameter: String,
    },

    /// A change gives a `NoEcho` parameter the masked value `****` that
    /// `DescribeStacks` reports instead of the secret; sending it would
    /// overwrite the secret with `****`.
    #[error(
        "stack {stack}: parameter {parameter:?} is NoEcho and was given the masked value \"****\" \
         that DescribeStacks reports instead of its value; sending it would overwrite the secret. \
         Leave the parameter out to keep its value, or give the real value"
    )]
    MaskedNoEchoValue {
        /// The stack.
        stack: String,
        /// The `NoEcho` parameter.
        parameter: String,
    },

    /// The subnet / availability-zone parameters of the update do not hold
    /// together.
    #[error("stack {stack}: subnets do not match the availability zones: {report}")]
    InvalidSubnets {
        /// The stack.
        stack: String,
        /// Every problem found.
        report: Box<SubnetReport>,
    },

    /// The template needs capabilities the configuration does not
    /// acknowledge ([`StackUpdaterConfig::capabilities`](crate::StackUpdaterConfig::capabilities)).
    #[error(
        "stack {stack}: the template needs {} which the configuration does not acknowledge{}; \
         review the template and add them to StackUpdaterConfig::capabilities to allow it",
        missing.join(", "),
        reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    CapabilityNotAcknowledged {
        /// The stack.
        stack: String,
        /// The capabilities needed and not acknowledged.
        missing: Vec<String>,
        /// CloudFormation's `CapabilitiesReason`, if any.
        reason: Option<String>,
    },

    /// The stack does not exist.
    #[error("stack {stack} does not exist (check the name and the region)")]
    StackNotFound {
        /// The stack name or id.
        stack: String,
    },

    /// The stack is already being changed; this crate does not wait for
    /// someone else's operation.
    #[error(
        "stack {stack} is busy ({status}); wait for the running operation to finish, then retry"
    )]
    StackBusy {
        /// The stack.
        stack: String,
        /// Its `*_IN_PROGRESS` status.
        status: StackStatus,
    },

    /// The stack is in a state that cannot be updated (a failed create, a
    /// failed rollback, deleted).
    #[error("stack {stack} cannot be updated in status {status}; {hint}")]
    StackNotUpdatable {
        /// The stack.
        stack: String,
        /// Its status.
        status: StackStatus,
        /// What an operator can do.
        hint: &'static str,
    },

    /// The change set failed to be created for a reason other than "no
    /// changes".
    #[error("change set {change_set} of stack {stack} failed: {reason}")]
    ChangeSetFailed {
        /// The stack.
        stack: String,
        /// The change set name or id.
        change_set: String,
        /// CloudFormation's status reason.
        reason: String,
    },

    /// The change set does not exist.
    #[error("change set {change_set} of stack {stack} does not exist")]
    ChangeSetNotFound {
        /// The stack.
        stack: String,
        /// The change set name or id.
        change_set: String,
    },

    /// Waiting ran out of time. The stack operation itself may still finish:
    /// resume waiting ([`StackUpdater::resume_wait`](crate::StackUpdater::resume_wait)
    /// with `resume`), never apply the change again. Its class is
    /// [`ErrorClass::Permanent`] so that retrying callers do not re-apply.
    #[error(
        "stack {stack} still {status} after {waited:?} ({operation}); the operation continues \
         in CloudFormation: wait again (do not re-apply the change)"
    )]
    WaitTimedOut {
        /// The stack.
        stack: String,
        /// What was being waited for (a change set, a stack update).
        operation: &'static str,
        /// The last status seen.
        status: String,
        /// How long was waited, on the injected clock.
        waited: Duration,
        /// How to resume the wait
        /// ([`StackUpdater::resume_wait`](crate::StackUpdater::resume_wait)).
        resume: Box<WaitResume>,
    },

    /// A configuration that cannot work.
    #[error("invalid cfn-stack configuration: {0}")]
    InvalidConfig(String),

    /// The backend (CloudFormation, EC2, ...) failed.
    #[error("{operation} on {resource} failed ({class:?}): {message}")]
    Backend {
        /// The API operation, e.g. `UpdateStack`.
        operation: &'static str,
        /// The stack, change set or subnet concerned.
        resource: String,
        /// Whether retrying may help.
        class: ErrorClass,
        /// The service's error code and message.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// The retry class of this error: backend errors carry their own;
    /// [`StackBusy`](Error::StackBusy) and
    /// [`TemplateFetch`](Error::TemplateFetch) are
    /// [`ErrorClass::Transient`]; every other error is
    /// [`ErrorClass::Permanent`] (retrying the same input will not help),
    /// including [`WaitTimedOut`](Error::WaitTimedOut): the update is still
    /// running, so applying it again is not safe; resume the wait instead.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Backend { class, .. } => *class,
            Error::StackBusy { .. } => ErrorClass::Transient,
            Error::TemplateFetch { .. } => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// A backend error without an underlying source (used by in-memory
    /// backends and tests).
    pub fn backend(
        operation: &'static str,
        resource: impl Into<String>,
        class: ErrorClass,
        message: impl Into<String>,
    ) -> Self {
        Error::Backend {
            operation,
            resource: resource.into(),
            class,
            message: message.into(),
            source: None,
        }
    }
}
