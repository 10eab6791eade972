//! Which stopped-task reasons are deterministic (retrying the task cannot
//! help: fail the deployment at once) and which are transient (count the
//! task as failed and let ECS start another).

use serde::Serialize;

/// How a stopped task's reason bears on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedReasonClass {
    /// Retrying cannot help: the image or tag does not exist (`not found`,
    /// `manifest unknown`), access is denied (`AccessDenied`, `pull access
    /// denied`, `401`/`403`), the secret or parameter does not exist.
    Deterministic,
    /// May pass on the next task: throttling, 5xx, timeouts, connection
    /// errors while pulling the image or fetching secrets.
    Transient,
    /// Anything else (crashes, health checks, scaling, unknown texts).
    Other,
}

/// Markers of a failure that may pass on its own. Checked first: a
/// timeout while resolving a tag is not a missing tag.
const TRANSIENT: &[&str] = &[
    "i/o timeout",
    "context deadline exceeded",
    "timed out",
    "timeout exceeded",
    "tls handshake timeout",
    "connection reset",
    "connection refused",
    "send request failed",
    "requesterror",
    "throttl",
    "rate exceeded",
    "toomanyrequests",
    "too many requests",
    "429",
    "500 internal server error",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway",
    "internal server error",
    "service unavailable",
    "serviceunavailable",
    "internalfailure",
    "temporary failure",
    "unexpected eof",
    "no space left on device",
];

/// Markers of a failure that retrying cannot fix.
const DETERMINISTIC: &[&str] = &[
    "manifest unknown",
    "not found",
    "notfound",
    "does not exist",
    "repository does not exist",
    "name unknown",
    "invalid reference format",
    "accessdenied",
    "access denied",
    "pull access denied",
    "not authorized",
    "unauthorized",
    "403 forbidden",
    "forbidden",
    "parameternotfound",
    "resourcenotfoundexception",
    "invalidparameter",
    "invalid parameters",
    "kms.disabled",
    "kms.invalidstate",
    "image platform",
    "exec format",
];

/// Classifies a stopped task's (or container's) reason. Case-insensitive;
/// transient markers win over deterministic ones.
///
/// ```
/// use ecs_rollout::{StoppedReasonClass, classify_stopped_reason};
/// assert_eq!(
///     classify_stopped_reason("CannotPullContainerError: ... manifest unknown"),
///     StoppedReasonClass::Deterministic
/// );
/// assert_eq!(
///     classify_stopped_reason("CannotPullContainerError: ... dial tcp 1.2.3.4:443: i/o timeout"),
///     StoppedReasonClass::Transient
/// );
/// ```
pub fn classify_stopped_reason(reason: &str) -> StoppedReasonClass {
    let lower = reason.to_ascii_lowercase();
    if TRANSIENT.iter().any(|m| lower.contains(m)) {
        StoppedReasonClass::Transient
    } else if DETERMINISTIC.iter().any(|m| lower.contains(m)) {
        StoppedReasonClass::Deterministic
    } else {
        StoppedReasonClass::Other
    }
}

/// Stopped reasons of the service scheduler that are routine, not a
/// failure of the task's version: scale-in and deployment replacement,
/// Fargate task retirement (platform maintenance), Availability Zone
/// rebalancing, Spot capacity reclaimed.
const ROUTINE_STOPS: &[&str] = &[
    "scaling activity initiated by",
    "performing maintenance on the underlying infrastructure",
    "rebalanc",
    "spot task was interrupted",
    "spot instance was interrupted",
    "task stopped by user",
];

/// Whether a stopped task counts as a failure of the version it ran.
///
/// Failures are the version's doing: `TaskFailedToStart` (image pull,
/// secrets, resources), `EssentialContainerExited` (a crash) and a failed
/// container, ELB or VPC Lattice health check (ECS stops the task with
/// `ServiceSchedulerInitiated` and a reason naming the health check).
/// Not failures: Spot interruption (`SpotInterruption`, `TerminationNotice`),
/// an operator's `StopTask` (`UserInitiated`), and the scheduler's routine
/// stops (scale-in, deployment replacement, Fargate task retirement,
/// Availability Zone rebalancing). A scheduler stop with a reason this
/// crate does not know, or a stop without a code, counts as a failure
/// unless its reason is one of the routine ones: a version is rolled back
/// sooner than a failing one is kept.
///
/// ```
/// use ecs_rollout::is_task_failure;
/// assert!(is_task_failure(Some("EssentialContainerExited"), "Essential container in task exited"));
/// assert!(is_task_failure(Some("ServiceSchedulerInitiated"), "Task failed container health checks"));
/// assert!(!is_task_failure(Some("SpotInterruption"), "Your Spot Task was interrupted."));
/// assert!(!is_task_failure(Some("UserInitiated"), "Task stopped by user"));
/// assert!(!is_task_failure(
///     Some("ServiceSchedulerInitiated"),
///     "ECS is performing maintenance on the underlying infrastructure hosting the task",
/// ));
/// ```
pub fn is_task_failure(stop_code: Option<&str>, stopped_reason: &str) -> bool {
    let lower = stopped_reason.to_ascii_lowercase();
    match stop_code {
        Some("TaskFailedToStart" | "EssentialContainerExited") => true,
        Some("SpotInterruption" | "TerminationNotice" | "UserInitiated") => false,
        _ if lower.contains("health check") => true,
        _ => !ROUTINE_STOPS.iter().any(|m| lower.contains(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real stopped reasons (ECS stopped-task error docs, AWS knowledge
    /// center, user reports).
    #[test]
    fn real_ecs_stopped_reasons() {
        use StoppedReasonClass::*;
        let cases = [
            (
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                 failed to resolve ref docker.io/library/runner:20250102.1: \
                 docker.io/library/runner:20250102.1: not found",
                Deterministic,
            ),
            (
                "CannotPullContainerError: Error response from daemon: manifest for \
                 123456789012.dkr.ecr.us-east-1.amazonaws.com/runner:latest not found: \
                 manifest unknown: Requested image not found",
                Deterministic,
            ),
            (
                "CannotPullContainerError: Error response from daemon: pull access denied for \
                 runner, repository does not exist or may require 'docker login'",
                Deterministic,
            ),
            (
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                 failed to resolve ref ghcr.io/acme/runner:1: failed to authorize: failed to \
                 fetch anonymous token: unexpected status: 401 Unauthorized",
                Deterministic,
            ),
            (
                "CannotPullContainerError: The task can't pull the image. Check that the role \
                 has the permissions to pull images from the registry. AccessDeniedException: \
                 User is not authorized to perform: ecr:BatchGetImage",
                Deterministic,
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve secret from asm: \
                 service call has been retried 1 time(s): failed to fetch secret \
                 arn:aws:secretsmanager:us-east-1:123456789012:secret:runner from secrets \
                 manager: AccessDeniedException: User is not authorized to perform: \
                 secretsmanager:GetSecretValue",
                Deterministic,
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve secrets from ssm: \
                 service call has been retried 1 time(s): invalid parameters: \
                 /runner/token",
                Deterministic,
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve secret from asm: \
                 service call has been retried 1 time(s): failed to fetch secret: \
                 ResourceNotFoundException: Secrets Manager can't find the specified secret.",
                Deterministic,
            ),
            (
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): \
                 failed to resolve ref docker.io/tryretool/backend:2.110.5: failed to do \
                 request: Head \"https://registry-1.docker.io/v2/tryretool/backend/manifests/\
                 2.110.5\": dial tcp 34.205.13.154:443: i/o timeout",
                Transient,
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve secret from asm: \
                 service call has been retried 5 time(s): failed to fetch secret: \
                 RequestCanceled: request context canceled caused by: context deadline exceeded",
                Transient,
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth: \
                 execution resource retrieval failed: unable to retrieve ecr registry auth: \
                 service call has been retried 3 time(s): RequestError: send request failed",
                Transient,
            ),
            (
                "CannotPullContainerError: failed to copy: httpReadSeeker: failed open: \
                 unexpected status code https://registry-1.docker.io/v2/library/runner/\
                 manifests/sha256:abc: 429 Too Many Requests - Server message: \
                 toomanyrequests: You have reached your pull rate limit.",
                Transient,
            ),
            (
                "CannotPullContainerError: Error response from daemon: received unexpected \
                 HTTP status: 503 Service Unavailable",
                Transient,
            ),
            (
                "CannotPullContainerError: ThrottlingException: Rate exceeded",
                Transient,
            ),
            (
                "CannotPullContainerError: write /var/lib/docker/tmp/GetImageBlob: no space \
                 left on device",
                Transient,
            ),
            ("Essential container in task exited", Other),
            ("Task failed container health checks", Other),
            (
                "Scaling activity initiated by (deployment ecs-svc/123)",
                Other,
            ),
            (
                "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:\
                 us-east-1:123456789012:targetgroup/runner/abc)",
                Other,
            ),
        ];
        for (reason, expected) in cases {
            assert_eq!(classify_stopped_reason(reason), expected, "{reason}");
        }
    }

    /// Real stop codes and stopped reasons (ECS `Task` reference, stopped
    /// task errors, Fargate task maintenance, AZ rebalancing): which count
    /// as a failure of the version.
    #[test]
    fn which_stopped_tasks_are_failures_of_the_version() {
        let cases = [
            (
                Some("TaskFailedToStart"),
                "CannotPullContainerError: ... manifest unknown",
                true,
            ),
            (
                Some("TaskFailedToStart"),
                "ResourceInitializationError: unable to pull secrets or registry auth",
                true,
            ),
            (
                Some("EssentialContainerExited"),
                "Essential container in task exited",
                true,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "Task failed container health checks",
                true,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:\
                 us-east-1:123456789012:targetgroup/runner/abc)",
                true,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "Task failed VPC Lattice health checks",
                true,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "Scaling activity initiated by (deployment ecs-svc/123)",
                false,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "ECS is performing maintenance on the underlying infrastructure hosting the task",
                false,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "AZ Rebalancing: the service is not AZ balanced; task stopped to rebalance",
                false,
            ),
            (
                Some("ServiceSchedulerInitiated"),
                "a scheduler reason this crate has never seen",
                true,
            ),
            (
                Some("SpotInterruption"),
                "Your Spot Task was interrupted.",
                false,
            ),
            (
                Some("TerminationNotice"),
                "Your Spot Instance was interrupted: the container instance is being terminated.",
                false,
            ),
            (Some("UserInitiated"), "Task stopped by user", false),
            // The stop code decides before the reason's words do.
            (
                Some("TaskFailedToStart"),
                "ResourceInitializationError while starting a task to rebalance",
                true,
            ),
            (
                Some("UserInitiated"),
                "stopped by the on-call engineer",
                false,
            ),
            (Some("SpotInterruption"), "", false),
            (None, "Essential container in task exited", true),
            (None, "Task stopped by user", false),
            (None, "", true),
        ];
        for (code, reason, failure) in cases {
            assert_eq!(is_task_failure(code, reason), failure, "{code:?}: {reason}");
        }
    }
}
