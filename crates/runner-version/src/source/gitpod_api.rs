//! The Gitpod API (Connect-style JSON over HTTP POST).

use std::fmt;

use async_trait::async_trait;
use reqwest::header;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_config::status_class;
use crate::{
    Channel, Error, ErrorClass, HttpConfig, ReleaseCheck, ReleaseSource, ReleaseVerifier, Version,
};

/// The Connect method that reads a runner.
pub const GET_RUNNER_METHOD: &str = "gitpod.v1.RunnerService/GetRunner";

/// A bearer token; its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// A runner's update settings and running version, as the Gitpod API
/// reports them (`GetRunner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSettings {
    /// The runner id asked for.
    pub runner_id: String,
    /// `runner.spec.configuration.autoUpdate` (absent = `false`, as proto3
    /// JSON omits defaults).
    pub auto_update: bool,
    /// `runner.spec.configuration.releaseChannel`; `None` when absent or
    /// `RUNNER_RELEASE_CHANNEL_UNSPECIFIED`.
    pub release_channel: Option<Channel>,
    /// `runner.status.version`; `None` when absent or empty.
    pub running_version: Option<Version>,
}

impl RunnerSettings {
    /// The channel to follow: the configured one, else stable.
    pub fn effective_channel(&self) -> Channel {
        self.release_channel.clone().unwrap_or_default()
    }
}

/// Releases and runner settings from the Gitpod API: Connect-style JSON over
/// HTTP POST with a bearer token.
///
/// - [`runner_settings`](Self::runner_settings):
///   `POST {base}/gitpod.v1.RunnerService/GetRunner` with
///   `{"runnerId": "<id>"}`; reads `runner.spec.configuration.autoUpdate`,
///   `runner.spec.configuration.releaseChannel`
///   (`RUNNER_RELEASE_CHANNEL_STABLE` / `_LATEST`, or a plain channel name)
///   and `runner.status.version`.
/// - [`check`](ReleaseSource::check): `POST {base}/{release_method}` with
///   `{"runnerId": "<id>", "releaseChannel": "RUNNER_RELEASE_CHANNEL_STABLE"}`
///   (custom channels are sent by name). The expected answer is
///   `{"manifest": <manifest>}`, where `<manifest>` is either format the
///   [`ReleaseVerifier`] accepts (a signed envelope or the Gitpod manifest
///   object); an absent or `null` `manifest` means
///   [`Error::ChannelNotPublished`].
/// - Connect errors (`{"code": "...", "message": "..."}` with a non-200
///   status) map to [`Error::Unauthenticated`] (check the token),
///   [`Error::PermissionDenied`], [`Error::RunnerNotFound`], or
///   [`Error::Api`] with a class (`unavailable`, `deadline_exceeded`,
///   `aborted`, `internal`, `unknown`: transient; `resource_exhausted`:
///   throttled; others permanent).
#[derive(Debug)]
pub struct GitpodApiSource {
    base_url: String,
    token: BearerToken,
    runner_id: String,
    release_method: String,
    config: HttpConfig,
    verifier: ReleaseVerifier,
    client: reqwest::Client,
}

/// Builds a [`GitpodApiSource`]. Required: base URL, token, runner id,
/// release method, verifier. [`HttpConfig::default`] applies otherwise.
#[derive(Debug, Default)]
pub struct GitpodApiSourceBuilder {
    base_url: Option<String>,
    token: Option<BearerToken>,
    runner_id: Option<String>,
    release_method: Option<String>,
    config: HttpConfig,
    verifier: Option<ReleaseVerifier>,
}

impl GitpodApiSourceBuilder {
    /// The API base URL, e.g. `https://app.gitpod.io/api`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The bearer token.
    pub fn token(mut self, token: BearerToken) -> Self {
        self.token = Some(token);
        self
    }

    /// The runner's id.
    pub fn runner_id(mut self, id: impl Into<String>) -> Self {
        self.runner_id = Some(id.into());
        self
    }

    /// The Connect method path (`package.Service/Method`) that answers the
    /// available release (see [`GitpodApiSource`] for the JSON shape).
    pub fn release_method(mut self, method: impl Into<String>) -> Self {
        self.release_method = Some(method.into());
        self
    }

    /// Transport settings and limits.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// The verifier the release goes through.
    pub fn verifier(mut self, verifier: ReleaseVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Checks that every required setting is present and the base URL is
    /// allowed.
    pub fn validate(&self) -> Result<(), Error> {
        let missing = |what: &str| Error::InvalidConfig {
            what: "Gitpod API source",
            reason: format!("{what} is required"),
        };
        self.config.validate()?;
        let base = self
            .base_url
            .as_deref()
            .ok_or_else(|| missing("base_url"))?;
        self.config.check_url(base)?;
        match &self.token {
            Some(BearerToken(t)) if !t.trim().is_empty() => {}
            _ => return Err(missing("a non-empty token")),
        }
        if self
            .runner_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
        {
            return Err(missing("runner_id"));
        }
        match self.release_method.as_deref() {
            Some(m) if m.contains('/') && !m.starts_with('/') => {}
            _ => {
                return Err(missing("release_method of the form package.Service/Method"));
            }
        }
        if self.verifier.is_none() {
            return Err(missing("a release verifier"));
        }
        Ok(())
    }

    /// The source, if [`validate`](Self::validate) passes.
    pub fn build(self) -> Result<GitpodApiSource, Error> {
        self.validate()?;
        Ok(GitpodApiSource {
            client: self.config.client()?,
            base_url: self
                .base_url
                .expect("validated")
                .trim_end_matches('/')
                .to_string(),
            token: self.token.expect("validated"),
            runner_id: self.runner_id.expect("validated"),
            release_method: self.release_method.expect("validated"),
            config: self.config,
            verifier: self.verifier.expect("validated"),
        })
    }
}

#[derive(Deserialize)]
struct ConnectError {
    code: String,
    #[serde(default)]
    message: String,
}

impl GitpodApiSource {
    /// A builder.
    pub fn builder() -> GitpodApiSourceBuilder {
        GitpodApiSourceBuilder::default()
    }

    /// The runner's update settings and running version.
    pub async fn runner_settings(&self) -> Result<RunnerSettings, Error> {
        let endpoint = self.endpoint(GET_RUNNER_METHOD);
        let body = self
            .call(&endpoint, json!({ "runnerId": self.runner_id }))
            .await?;
        let malformed = |reason: &str| Error::MalformedResponse {
            endpoint: endpoint.clone(),
            reason: reason.into(),
        };
        let runner = body
            .get("runner")
            .filter(|r| r.is_object())
            .ok_or_else(|| malformed("GetRunner answer has no `runner` object"))?;
        let configuration = runner.pointer("/spec/configuration");
        let auto_update = match configuration.and_then(|c| c.get("autoUpdate")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(malformed("`autoUpdate` is not a boolean")),
        };
        let release_channel = match configuration.and_then(|c| c.get("releaseChannel")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => parse_channel(s)?,
            Some(_) => return Err(malformed("`releaseChannel` is not a string")),
        };
        let running_version = match runner.pointer("/status/version") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(Version::parse(s)?),
            Some(_) => return Err(malformed("`status.version` is not a string")),
        };
        Ok(RunnerSettings {
            runner_id: self.runner_id.clone(),
            auto_update,
            release_channel,
            running_version,
        })
    }

    fn endpoint(&self, method: &str) -> String {
        format!("{}/{}", self.base_url, method)
    }

    async fn call(&self, endpoint: &str, request: Value) -> Result<Value, Error> {
        let response = self
            .client
            .post(endpoint)
            .bearer_auth(&self.token.0)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header("Connect-Protocol-Version", "1")
            .json(&request)
            .send()
            .await
            .map_err(|e| self.config.transport_error(endpoint, e))?;
        let status = response.status();
        if !status.is_success() {
            let body = self.config.read_capped(endpoint, response).await?;
            return Err(match serde_json::from_slice::<ConnectError>(&body) {
                Ok(error) => self.connect_error(endpoint, error),
                Err(_) => Error::HttpStatus {
                    method: "POST",
                    url: endpoint.into(),
                    status: status.as_u16(),
                    class: status_class(status),
                },
            });
        }
        self.config.check_json(endpoint, &response)?;
        let body = self.config.read_capped(endpoint, response).await?;
        serde_json::from_slice(&body).map_err(|e| Error::MalformedResponse {
            endpoint: endpoint.into(),
            reason: format!("answer is not JSON: {e}"),
        })
    }

    fn connect_error(&self, endpoint: &str, error: ConnectError) -> Error {
        let endpoint = endpoint.to_string();
        let message = error.message;
        match error.code.as_str() {
            "unauthenticated" => Error::Unauthenticated { endpoint, message },
            "permission_denied" => Error::PermissionDenied { endpoint, message },
            "not_found" => Error::RunnerNotFound {
                endpoint,
                runner_id: self.runner_id.clone(),
                message,
            },
            code => {
                let class = match code {
                    "unavailable" | "deadline_exceeded" | "aborted" | "internal" | "unknown" => {
                        ErrorClass::Transient
                    }
                    "resource_exhausted" => ErrorClass::Throttled,
                    _ => ErrorClass::Permanent,
                };
                Error::Api {
                    endpoint,
                    code: code.to_string(),
                    message,
                    class,
                }
            }
        }
    }
}

fn parse_channel(text: &str) -> Result<Option<Channel>, Error> {
    match text {
        "" | "RUNNER_RELEASE_CHANNEL_UNSPECIFIED" => Ok(None),
        "RUNNER_RELEASE_CHANNEL_STABLE" => Ok(Some(Channel::Stable)),
        "RUNNER_RELEASE_CHANNEL_LATEST" => Ok(Some(Channel::Latest)),
        other => Channel::parse(other).map(Some),
    }
}

fn channel_name(channel: &Channel) -> String {
    match channel {
        Channel::Stable => "RUNNER_RELEASE_CHANNEL_STABLE".into(),
        Channel::Latest => "RUNNER_RELEASE_CHANNEL_LATEST".into(),
        Channel::Custom(name) => name.clone(),
    }
}

#[async_trait]
impl ReleaseSource for GitpodApiSource {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        let endpoint = self.endpoint(&self.release_method);
        let body = self
            .call(
                &endpoint,
                json!({ "runnerId": self.runner_id, "releaseChannel": channel_name(channel) }),
            )
            .await?;
        let manifest = match body.get("manifest") {
            None | Some(Value::Null) => {
                return Err(Error::ChannelNotPublished {
                    channel: channel.to_string(),
                    source_name: endpoint,
                });
            }
            Some(manifest) => manifest,
        };
        let bytes = serde_json::to_vec(manifest).expect("a JSON value always serialises");
        let release = self.verifier.verify(&bytes, channel, &endpoint).await?;
        Ok(ReleaseCheck::Fetched(release))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip() {
        for channel in [
            Channel::Stable,
            Channel::Latest,
            Channel::Custom("canary".into()),
        ] {
            assert_eq!(
                parse_channel(&channel_name(&channel)).unwrap(),
                Some(channel)
            );
        }
        assert_eq!(
            parse_channel("RUNNER_RELEASE_CHANNEL_UNSPECIFIED").unwrap(),
            None
        );
        assert!(parse_channel("RUNNER RELEASE").is_err());
    }

    #[test]
    fn token_is_redacted() {
        assert!(!format!("{:?}", BearerToken::new("s3cret")).contains("s3cret"));
    }
}
