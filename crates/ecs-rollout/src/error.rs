//! The one error type of this crate.

use std::fmt;

/// How a backend failure should be treated by a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The API refused because of request rate (`ThrottlingException`,
    /// `TooManyRequestsException`, `RequestLimitExceeded`): retry with backoff.
    Throttled,
    /// A failure that may pass on its own (HTTP 5xx, `ServerException`,
    /// timeouts, connection resets): retry with backoff.
    Transient,
    /// Retrying the same request cannot help (validation, access denied,
    /// `ClientException`).
    Permanent,
}

impl ErrorClass {
    /// Whether a retry of the same request may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Throttled => "throttled",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        })
    }
}

/// The kind of ECS resource an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An ECS cluster.
    Cluster,
    /// An ECS service.
    Service,
    /// A task-definition revision or family.
    TaskDefinition,
    /// A task.
    Task,
    /// A container inside a task definition.
    Container,
    /// A service deployment.
    Deployment,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cluster => "cluster",
            Self::Service => "service",
            Self::TaskDefinition => "task definition",
            Self::Task => "task",
            Self::Container => "container",
            Self::Deployment => "deployment",
        })
    }
}

/// A boxed source error (the backend's own error, kept for diagnostics).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `ecs-rollout`.
///
/// Domain results of a rollout (rolled back, timed out, superseded) are not
/// errors: they are [`RolloutOutcome`](crate::RolloutOutcome) variants. Errors
/// are what stopped the crate from reaching an outcome at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An ECS API call failed. `class` says whether retrying can help.
    #[error(
        "ECS {operation} on {resource} failed ({class}): {message}{}",
        hint(*class)
    )]
    Api {
        /// The API operation, e.g. `UpdateService`.
        operation: &'static str,
        /// The resource the call was about (ARN or name).
        resource: String,
        /// Whether to retry.
        class: ErrorClass,
        /// The backend's message (error code and text).
        message: String,
        /// The backend's own error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A resource does not exist (or is not ACTIVE).
    #[error("{kind} {name} not found; check the name, the cluster and the region")]
    NotFound {
        /// What kind of resource.
        kind: ResourceKind,
        /// Its name or ARN.
        name: String,
    },
    /// The backend does not implement an optional operation.
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// Which backend.
        backend: &'static str,
    },
    /// Another deployment of the service is still in progress and the
    /// configuration says not to wait.
    #[error(
        "service {service} has deployments in progress ({}); wait for them or set \
         RolloutConfig::wait_for_idle",
        in_progress.join(", ")
    )]
    Busy {
        /// The service.
        service: String,
        /// Ids of the deployments that are not finished.
        in_progress: Vec<String>,
    },
    /// Waiting for another deployment to finish took longer than allowed.
    #[error("service {service} stayed busy for {waited_secs} s; giving up before deploying")]
    BusyTimeout {
        /// The service.
        service: String,
        /// How long we waited.
        waited_secs: u64,
    },
    /// The task definition cannot be updated as asked (no runner container,
    /// an invalid image, …).
    #[error("task definition {task_definition}: {reason}")]
    InvalidTaskDefinition {
        /// The ARN or family of the task definition.
        task_definition: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A configuration value cannot work.
    #[error("invalid configuration {field}: {reason}")]
    InvalidConfig {
        /// The field, e.g. `MonitorConfig::timeout`.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The service's deployment configuration is not safe and the
    /// configuration says to refuse rather than fix it.
    #[error(
        "service {service} has an unsafe deployment configuration: {}; set \
         RolloutConfig::deployment_configuration_policy to Fix, or change the service",
        problems.join("; ")
    )]
    UnsafeDeploymentConfiguration {
        /// The service.
        service: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The service answered in a way this crate does not understand (e.g.
    /// `UpdateService` returned no PRIMARY deployment).
    #[error("unexpected ECS response for {resource}: {reason}")]
    UnexpectedResponse {
        /// The resource.
        resource: String,
        /// What was unexpected.
        reason: String,
    },
    /// Retrying a throttled or transient call gave up.
    #[error("ECS {operation} kept failing after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// The operation.
        operation: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        #[source]
        last: Box<Error>,
    },
    /// The [`StepGate`](crate::StepGate) refused a step (e.g. the
    /// orchestrator could not journal it because it lost its lock). The
    /// engine stopped right before that step: it made no further ECS call.
    #[error(
        "the step gate refused {step}: {source}; the engine stopped before this step and \
         made no further ECS call"
    )]
    StepRefused {
        /// What was refused, e.g. `UpdateService to arn:…`.
        step: String,
        /// Why the gate refused.
        #[source]
        source: BoxError,
    },
    /// The service is driven by a deployment controller other than ECS
    /// (`CODE_DEPLOY`, `EXTERNAL`): its deployments are not made with
    /// `UpdateService(taskDefinition)` nor judged by rolling-update
    /// deployments, so the engine refuses before registering anything.
    #[error(
        "service {service} uses the {controller} deployment controller; only the ECS \
         (rolling update) controller is supported: deploy it through {controller}, or \
         recreate the service with deploymentController ECS"
    )]
    UnsupportedDeploymentController {
        /// The service.
        service: String,
        /// `deploymentController.type` as ECS reported it.
        controller: String,
    },
    /// Only the service's service deployments can tell how a deployment of
    /// it ends (its deployments report no `rolloutState`, which ECS sends
    /// only for rolling updates not behind a Classic Load Balancer; or it
    /// deploys blue/green, linear or canary, with lifecycle stages and
    /// ECS's own bake time), and the ServiceDeployment API is not
    /// available: a deployment could only end in a false verdict.
    #[error(
        "service {service} {because}, so only its service deployments can tell how a \
         deployment ends, and they cannot be read ({reason}); nothing was deployed: grant \
         ecs:ListServiceDeployments and ecs:DescribeServiceDeployments"
    )]
    NeedsServiceDeployments {
        /// The service.
        service: String,
        /// What about the service needs them.
        because: String,
        /// Why the service deployments cannot be read.
        reason: String,
    },
    /// A version or image could not be parsed.
    #[error(transparent)]
    Version(#[from] runner_version::Error),
}

fn hint(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Throttled => "; retry later with backoff",
        ErrorClass::Transient => "; retrying may help",
        ErrorClass::Permanent => "",
    }
}

impl Error {
    /// The class of a backend failure; `None` for domain errors.
    /// [`Error::RetriesExhausted`] reports the class of its last error;
    /// [`Error::StepRefused`] is [`ErrorClass::Permanent`] (retrying the
    /// same rollout cannot get past the gate by itself).
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Api { class, .. } => Some(*class),
            Self::RetriesExhausted { last, .. } => last.class(),
            Self::StepRefused { .. } => Some(ErrorClass::Permanent),
            _ => None,
        }
    }

    /// Whether retrying the same call may succeed (throttled or transient).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Api { class, .. } if class.is_retryable())
    }

    /// Shorthand for an [`Error::Api`] without a source.
    pub fn api(
        operation: &'static str,
        resource: impl Into<String>,
        class: ErrorClass,
        message: impl Into<String>,
    ) -> Self {
        Self::Api {
            operation,
            resource: resource.into(),
            class,
            message: message.into(),
            source: None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
