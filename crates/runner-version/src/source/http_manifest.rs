//! A manifest fetched over HTTPS, with conditional GET.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use reqwest::{StatusCode, header};

use super::http_config::status_class;
use crate::{
    AdmittedRelease, Channel, Error, ErrorClass, HttpConfig, ReleaseCheck, ReleaseSource,
    ReleaseVerifier,
};

/// Counters of an [`HttpManifestSource`], for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpSourceStats {
    /// Requests sent.
    pub requests: u64,
    /// Response bodies parsed (and verified).
    pub parses: u64,
    /// `304 Not Modified` answers served from the cache.
    pub not_modified: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    parses: AtomicU64,
    not_modified: AtomicU64,
}

#[derive(Debug, Clone)]
struct Cached {
    etag: String,
    release: AdmittedRelease,
}

/// A release manifest (either format) fetched with `GET` from one URL per
/// channel.
///
/// - Conditional GET: the `ETag` of the last accepted response is sent as
///   `If-None-Match`; a `304` returns the cached release without parsing
///   (see [`ReleaseCheck::NotModified`] and [`HttpManifestSource::stats`]),
///   after re-checking its expiry and the high-water mark.
/// - Connect and total timeouts, a streamed body size cap, JSON content
///   type required, https only unless loopback http is explicitly allowed
///   (also for redirects); see [`HttpConfig`].
/// - The body goes through the [`ReleaseVerifier`].
#[derive(Debug)]
pub struct HttpManifestSource {
    urls: BTreeMap<Channel, String>,
    config: HttpConfig,
    verifier: ReleaseVerifier,
    client: reqwest::Client,
    cache: Mutex<HashMap<Channel, Cached>>,
    counters: Counters,
}

/// Builds an [`HttpManifestSource`]: at least one channel URL and a
/// verifier are required; [`HttpConfig::default`] applies otherwise.
#[derive(Debug, Default)]
pub struct HttpManifestSourceBuilder {
    urls: BTreeMap<Channel, String>,
    config: HttpConfig,
    verifier: Option<ReleaseVerifier>,
}

impl HttpManifestSourceBuilder {
    /// The manifest URL of `channel`.
    pub fn channel_url(mut self, channel: Channel, url: impl Into<String>) -> Self {
        self.urls.insert(channel, url.into());
        self
    }

    /// Transport settings and limits.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// The verifier every response goes through.
    pub fn verifier(mut self, verifier: ReleaseVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Checks the configuration: a verifier, at least one URL, every URL
    /// allowed by the [`HttpConfig`], a valid `HttpConfig`.
    pub fn validate(&self) -> Result<(), Error> {
        self.config.validate()?;
        if self.verifier.is_none() {
            return Err(Error::InvalidConfig {
                what: "HTTP manifest source",
                reason: "no release verifier: set one with .verifier(..)".into(),
            });
        }
        if self.urls.is_empty() {
            return Err(Error::InvalidConfig {
                what: "HTTP manifest source",
                reason: "no channel URL: add one with .channel_url(channel, url)".into(),
            });
        }
        for url in self.urls.values() {
            self.config.check_url(url)?;
        }
        Ok(())
    }

    /// The source, if [`validate`](Self::validate) passes.
    pub fn build(self) -> Result<HttpManifestSource, Error> {
        self.validate()?;
        Ok(HttpManifestSource {
            client: self.config.client()?,
            urls: self.urls,
            config: self.config,
            verifier: self.verifier.expect("validated"),
            cache: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }
}

impl HttpManifestSource {
    /// A builder.
    pub fn builder() -> HttpManifestSourceBuilder {
        HttpManifestSourceBuilder::default()
    }

    /// Requests sent, bodies parsed and 304s served so far.
    pub fn stats(&self) -> HttpSourceStats {
        HttpSourceStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            parses: self.counters.parses.load(Ordering::Relaxed),
            not_modified: self.counters.not_modified.load(Ordering::Relaxed),
        }
    }

    fn cached(&self, channel: &Channel) -> Option<Cached> {
        self.cache.lock().expect("poisoned").get(channel).cloned()
    }
}

#[async_trait]
impl ReleaseSource for HttpManifestSource {
    async fn check(&self, channel: &Channel) -> Result<ReleaseCheck, Error> {
        let url = self
            .urls
            .get(channel)
            .ok_or_else(|| Error::ChannelNotPublished {
                channel: channel.to_string(),
                source_name: format!("HTTP manifest source ({} channel URLs)", self.urls.len()),
            })?;
        let cached = self.cached(channel);
        let mut request = self
            .client
            .get(url)
            .header(header::ACCEPT, "application/json");
        if let Some(cached) = &cached {
            request = request.header(header::IF_NONE_MATCH, &cached.etag);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|e| self.config.transport_error(url, e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            let Some(cached) = cached else {
                return Err(Error::HttpStatus {
                    method: "GET",
                    url: url.clone(),
                    status: status.as_u16(),
                    class: ErrorClass::Permanent,
                });
            };
            self.counters.not_modified.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%url, %channel, "manifest not modified");
            let release = self.verifier.readmit(&cached.release, channel).await?;
            return Ok(ReleaseCheck::NotModified(release));
        }
        if !status.is_success() {
            return Err(Error::HttpStatus {
                method: "GET",
                url: url.clone(),
                status: status.as_u16(),
                class: status_class(status),
            });
        }
        self.config.check_json(url, &response)?;
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = self.config.read_capped(url, response).await?;
        self.counters.parses.fetch_add(1, Ordering::Relaxed);
        let release = self.verifier.verify(&body, channel, url).await?;
        let mut cache = self.cache.lock().expect("poisoned");
        match etag {
            Some(etag) => {
                cache.insert(
                    channel.clone(),
                    Cached {
                        etag,
                        release: release.clone(),
                    },
                );
            }
            None => {
                cache.remove(channel);
            }
        }
        Ok(ReleaseCheck::Fetched(release))
    }
}
