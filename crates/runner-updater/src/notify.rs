//! Telling people about outcomes: the [`Notifier`] trait with a webhook
//! backend, and the [`Reporter`] that records a new version after a
//! success.

use std::{fmt::Debug, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use update_clock::Clock;

use crate::{CycleReport, Error, Result};

/// What a notifier is told after an update finished (never for a skip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The runner (the lock key).
    pub runner: String,
    /// The outcome code (`succeeded`, `rolled_back`, `rollback_failed`,
    /// `failed`, `blocked`).
    pub outcome: String,
    /// The version running before.
    pub from_version: Option<String>,
    /// The release version.
    pub to_version: String,
    /// One sentence for a person.
    pub summary: String,
    /// Per target: name, outcome kind.
    pub targets: Vec<(String, String)>,
}

/// Somewhere outcomes are sent. Failures are logged and counted, never
/// fatal to a cycle.
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers `notification`.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}

/// Sends nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn notify(&self, _: &Notification) -> Result<()> {
        Ok(())
    }
}

/// A JSON `POST` of the [`Notification`] to a URL, with a per-attempt
/// timeout and a bounded number of attempts (back-off doubling from 1 s on
/// the injected clock). 2xx is delivered; 4xx other than 408/429 is not
/// retried.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use runner_updater::WebhookNotifier;
/// use update_clock::SystemClock;
///
/// let hook = WebhookNotifier::new("https://hooks.example.com/updates", Arc::new(SystemClock::new()))
///     .unwrap()
///     .with_timeout(Duration::from_secs(5))
///     .with_attempts(3);
/// assert_eq!(hook.display_url(), "https://hooks.example.com/updates");
/// ```
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    url: url::Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    attempts: u32,
}

impl WebhookNotifier {
    /// A notifier posting to `url` (http or https; any credentials in the
    /// URL are never printed).
    pub fn new(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| Error::InvalidConfig {
            field: "notify.webhook_url".into(),
            reason: format!("is not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidConfig {
                field: "notify.webhook_url".into(),
                reason: "must be an http or https URL".into(),
            });
        }
        let client =
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| Error::InvalidConfig {
                    field: "notify.webhook_url".into(),
                    reason: format!("HTTP client: {e}"),
                })?;
        Ok(Self {
            url: parsed,
            client,
            clock,
            timeout: Duration::from_secs(10),
            attempts: 3,
        })
    }

    /// Per-attempt timeout (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Attempts (default 3, at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The URL without user, password, query or fragment.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        url.to_string().trim_end_matches('/').to_string()
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notification: &Notification) -> Result<()> {
        let mut backoff = Duration::from_secs(1);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let sent = self
                .client
                .post(self.url.clone())
                .timeout(self.timeout)
                .json(notification)
                .send()
                .await;
            let retry = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    last = format!("HTTP {status}");
                    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
                }
                Err(e) => {
                    last = if e.is_timeout() {
                        format!("no answer within {} ms", self.timeout.as_millis())
                    } else {
                        "connection failed".into()
                    };
                    true
                }
            };
            if !retry {
                return Err(Error::Notify {
                    target: self.display_url(),
                    attempts: attempt,
                    reason: last,
                });
            }
            if attempt < self.attempts {
                self.clock.sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(Error::Notify {
            target: self.display_url(),
            attempts: self.attempts,
            reason: last,
        })
    }
}

/// Records a successfully deployed version somewhere people look (a stack
/// or service tag, a runner card). Called once after every success.
#[async_trait]
pub trait Reporter: Send + Sync + Debug + 'static {
    /// Records `report`'s new version.
    async fn record_success(&self, report: &CycleReport) -> Result<()>;
}

/// Tags every updated ECS service with the new version
/// (`ecs-self-updater:version`), so the ECS console shows it.
#[derive(Debug, Clone)]
pub struct ServiceTagReporter {
    ecs: Arc<dyn ecs_rollout::EcsApi>,
}

impl ServiceTagReporter {
    /// A reporter tagging through `ecs`.
    pub fn new(ecs: Arc<dyn ecs_rollout::EcsApi>) -> Self {
        Self { ecs }
    }
}

/// The tag key [`ServiceTagReporter`] writes.
pub const VERSION_TAG: &str = "ecs-self-updater:version";

#[async_trait]
impl Reporter for ServiceTagReporter {
    async fn record_success(&self, report: &CycleReport) -> Result<()> {
        let Some(version) = report.release_version.as_ref() else {
            return Ok(());
        };
        for target in &report.targets {
            let service = self
                .ecs
                .describe_service(&target.cluster, &target.service)
                .await?;
            let tags =
                std::collections::BTreeMap::from([(VERSION_TAG.to_string(), version.clone())]);
            self.ecs.tag_resource(&service.service_arn, &tags).await?;
        }
        Ok(())
    }
}
