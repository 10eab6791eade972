//! Mapping AWS SDK errors to this crate's error classes.

use aws_smithy_runtime_api::client::{orchestrator::HttpResponse, result::SdkError};
use aws_smithy_types::error::{display::DisplayErrorContext, metadata::ProvideErrorMetadata};

use crate::{Error, ErrorClass};

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "TooManyRequestsException",
];

/// The service error code and message of an SDK error, if it has them.
pub(crate) fn code_and_message<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> (Option<String>, Option<String>) {
    (
        error.code().map(str::to_string),
        error.message().map(str::to_string),
    )
}

/// Classifies an SDK error: throttling codes are `Throttled`; timeouts,
/// connection failures, unparseable responses and 5xx are `Transient`;
/// everything else `Permanent`.
pub(crate) fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> ErrorClass {
    if error.code().is_some_and(|c| THROTTLING_CODES.contains(&c)) {
        return ErrorClass::Throttled;
    }
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorClass::Transient
        }
        SdkError::ServiceError(service) if service.raw().status().is_server_error() => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Permanent,
    }
}

/// Wraps an SDK error as [`Error::Backend`].
pub(crate) fn backend_error<E>(
    operation: &'static str,
    resource: &str,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let class = classify(&error);
    let message = match code_and_message(&error) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => DisplayErrorContext(&error).to_string(),
    };
    Error::Backend {
        operation,
        resource: resource.to_string(),
        class,
        message,
        source: Some(Box::new(error)),
    }
}
