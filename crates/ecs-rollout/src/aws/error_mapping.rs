//! SDK errors as [`Error`]s: a missing cluster, service or task definition
//! becomes [`Error::NotFound`]; everything else [`Error::Api`] with a class
//! (`Throttled`, `Transient`, `Permanent`) and the SDK error kept as the
//! source.

use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::{Error, ErrorClass, ResourceKind};

/// Error codes AWS services use for request-rate refusals.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
];

/// ECS's `ClientException` message when a family gets too many
/// `RegisterTaskDefinition` calls at once ("Too many concurrent attempts to
/// create a new revision of the specified family."), lower case.
const CONCURRENT_REVISIONS: &str = "too many concurrent attempts to create a new revision";

/// Error codes for server-side failures that may pass on their own.
const TRANSIENT_CODES: &[&str] = &[
    "ServerException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// What an SDK failure means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classification {
    /// The named resource does not exist.
    NotFound(ResourceKind),
    /// A backend failure of this class.
    Failed(ErrorClass),
}

/// Classifies an SDK error. `missing` says which resource kind a
/// `ClientException` means is missing for this operation (ECS reports an
/// unknown task definition as a plain `ClientException`), if any.
pub(crate) fn classify<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
    missing: Option<(ResourceKind, &[&str])>,
) -> Classification {
    match error {
        SdkError::ConstructionFailure(_) => Classification::Failed(ErrorClass::Permanent),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Classification::Failed(ErrorClass::Transient)
        }
        SdkError::ServiceError(service) => {
            let code = error.code().unwrap_or_default();
            let message = error.message().unwrap_or_default().to_ascii_lowercase();
            let status = service.raw().status().as_u16();
            classify_code(code, &message, status, missing)
        }
        _ => Classification::Failed(ErrorClass::Transient),
    }
}

fn classify_code(
    code: &str,
    message_lowercase: &str,
    status: u16,
    missing: Option<(ResourceKind, &[&str])>,
) -> Classification {
    if THROTTLING_CODES.contains(&code) || status == 429 {
        return Classification::Failed(ErrorClass::Throttled);
    }
    // RegisterTaskDefinition while other registrations of the family are
    // under way: a rate refusal in a ClientException's clothing; retry it.
    if code == "ClientException" && message_lowercase.contains(CONCURRENT_REVISIONS) {
        return Classification::Failed(ErrorClass::Throttled);
    }
    match code {
        "ClusterNotFoundException" => return Classification::NotFound(ResourceKind::Cluster),
        "ServiceNotFoundException" | "ServiceNotActiveException" => {
            return Classification::NotFound(ResourceKind::Service);
        }
        _ => {}
    }
    if let Some((kind, needles)) = missing
        && code == "ClientException"
        && needles.iter().any(|n| message_lowercase.contains(n))
    {
        return Classification::NotFound(kind);
    }
    if TRANSIENT_CODES.contains(&code) || status >= 500 {
        return Classification::Failed(ErrorClass::Transient);
    }
    Classification::Failed(ErrorClass::Permanent)
}

/// Turns an SDK error of `operation` on `resource` into an [`Error`].
pub(crate) fn to_error<E>(
    operation: &'static str,
    resource: &str,
    error: SdkError<E, HttpResponse>,
    missing: Option<(ResourceKind, &[&str])>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(&error, missing) {
        Classification::NotFound(kind) => Error::NotFound {
            kind,
            name: resource.to_owned(),
        },
        Classification::Failed(class) => {
            let message = match (error.code(), error.message()) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code.to_owned(),
                _ => DisplayErrorContext(&error).to_string(),
            };
            Error::Api {
                operation,
                resource: resource.to_owned(),
                class,
                message,
                source: Some(Box::new(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::error::ErrorMetadata;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<DescribeServicesError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(
            DescribeServicesError::generic(meta),
            Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty()),
        )
    }

    type Missing = Option<(ResourceKind, &'static [&'static str])>;

    const TD_MISSING: Option<(ResourceKind, &[&str])> = Some((
        ResourceKind::TaskDefinition,
        &["unable to describe task definition"],
    ));

    #[test]
    fn service_errors_are_classified_by_code_and_status() {
        use Classification::*;
        use ErrorClass::*;
        let cases: &[(&str, &str, u16, Missing, Classification)] = &[
            (
                "ThrottlingException",
                "Rate exceeded",
                400,
                None,
                Failed(Throttled),
            ),
            (
                "TooManyRequestsException",
                "slow down",
                400,
                None,
                Failed(Throttled),
            ),
            ("RequestLimitExceeded", "", 400, None, Failed(Throttled)),
            ("SomethingNew", "", 429, None, Failed(Throttled)),
            ("ServerException", "boom", 500, None, Failed(Transient)),
            ("InternalFailure", "", 500, None, Failed(Transient)),
            ("Unknown", "bad gateway", 502, None, Failed(Transient)),
            ("ServiceUnavailable", "", 503, None, Failed(Transient)),
            ("ClientException", "bad input", 400, None, Failed(Permanent)),
            (
                "ClientException",
                "Too many concurrent attempts to create a new revision of the specified family.",
                400,
                None,
                Failed(Throttled),
            ),
            (
                "ClientException",
                "Too many concurrent attempts to create a new revision of the specified family.",
                400,
                TD_MISSING,
                Failed(Throttled),
            ),
            (
                "InvalidParameterException",
                "bad",
                400,
                None,
                Failed(Permanent),
            ),
            ("AccessDeniedException", "no", 400, None, Failed(Permanent)),
            (
                "ClusterNotFoundException",
                "",
                400,
                None,
                NotFound(ResourceKind::Cluster),
            ),
            (
                "ServiceNotFoundException",
                "",
                400,
                None,
                NotFound(ResourceKind::Service),
            ),
            (
                "ServiceNotActiveException",
                "",
                400,
                None,
                NotFound(ResourceKind::Service),
            ),
            (
                "ClientException",
                "Unable to describe task definition.",
                400,
                TD_MISSING,
                NotFound(ResourceKind::TaskDefinition),
            ),
            (
                "ClientException",
                "Invalid revision number.",
                400,
                TD_MISSING,
                Failed(Permanent),
            ),
        ];
        for (code, message, status, missing, expected) in cases {
            let error = service_error(code, message, *status);
            assert_eq!(
                &classify(&error, *missing),
                expected,
                "{code} {status} {message}"
            );
        }
    }

    #[test]
    fn transport_failures_are_transient_and_construction_failures_permanent() {
        let timeout: SdkError<DescribeServicesError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert_eq!(
            classify(&timeout, None),
            Classification::Failed(ErrorClass::Transient)
        );
        let dispatch: SdkError<DescribeServicesError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::io(Box::new(std::io::Error::other("connection reset"))),
        );
        assert_eq!(
            classify(&dispatch, None),
            Classification::Failed(ErrorClass::Transient)
        );
        let construction: SdkError<DescribeServicesError, HttpResponse> =
            SdkError::construction_failure("missing field");
        assert_eq!(
            classify(&construction, None),
            Classification::Failed(ErrorClass::Permanent)
        );
    }

    #[test]
    fn api_errors_name_operation_resource_and_keep_the_source() {
        let error = to_error(
            "DescribeServices",
            "cluster/runner",
            service_error("ThrottlingException", "Rate exceeded", 400),
            None,
        );
        let text = error.to_string();
        assert!(text.contains("DescribeServices"), "{text}");
        assert!(text.contains("cluster/runner"), "{text}");
        assert!(
            text.contains("ThrottlingException: Rate exceeded"),
            "{text}"
        );
        assert_eq!(error.class(), Some(ErrorClass::Throttled));
        assert!(std::error::Error::source(&error).is_some());
    }
}
