//! Fetching template bodies to check their sha256 before use.

use std::{collections::BTreeMap, fmt::Debug, sync::Arc, sync::Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::Error;

/// Fetches the body of a template URL (only used to check an expected
/// sha256; CloudFormation itself reads the template from the URL).
///
/// Contract: returns the exact bytes at `url`, or
/// [`Error::TemplateFetch`].
#[async_trait]
pub trait TemplateFetcher: Send + Sync + Debug + 'static {
    /// The body at `url`.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Error>;
}

#[async_trait]
impl<T: TemplateFetcher + ?Sized> TemplateFetcher for Arc<T> {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Error> {
        (**self).fetch(url).await
    }
}

#[async_trait]
impl<T: TemplateFetcher + ?Sized> TemplateFetcher for Box<T> {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Error> {
        (**self).fetch(url).await
    }
}

/// The lower-case hex sha256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Fetches `url` and checks that its sha256 is `expected` (hex, any case).
pub async fn verify_template_sha256(
    fetcher: &dyn TemplateFetcher,
    url: &str,
    expected: &str,
) -> Result<(), Error> {
    fetch_verified_template(fetcher, url, expected)
        .await
        .map(drop)
}

/// `expected` as 64 lower-case hex digits, or [`Error::InvalidConfig`].
pub(crate) fn normalize_sha256(expected: &str) -> Result<String, Error> {
    let expected = expected.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::InvalidConfig(format!(
            "expected template sha256 {expected:?} is not 64 hex digits"
        )));
    }
    Ok(expected)
}

/// Fetches `url`, checks that its sha256 is `expected` (hex, any case) and
/// returns the verified bytes, so that exactly these bytes can be sent to
/// CloudFormation (`TemplateBody`).
///
/// ```
/// use cfn_stack::{StaticTemplates, fetch_verified_template, sha256_hex};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let templates = StaticTemplates::new();
/// let url = "https://runner.s3.amazonaws.com/v2/runner.json";
/// templates.insert(url, b"{}".to_vec());
/// let body = fetch_verified_template(&templates, url, &sha256_hex(b"{}")).await.unwrap();
/// assert_eq!(body, b"{}");
/// assert!(fetch_verified_template(&templates, url, &sha256_hex(b"[]")).await.is_err());
/// # });
/// ```
pub async fn fetch_verified_template(
    fetcher: &dyn TemplateFetcher,
    url: &str,
    expected: &str,
) -> Result<Vec<u8>, Error> {
    let expected = normalize_sha256(expected)?;
    let body = fetcher.fetch(url).await?;
    let actual = sha256_hex(&body);
    if actual != expected {
        return Err(Error::TemplateHashMismatch {
            url: url.to_string(),
            expected,
            actual,
        });
    }
    Ok(body)
}

/// An in-memory [`TemplateFetcher`]: serves the bodies it was given and
/// counts fetches. For tests and for callers that already hold the body.
#[derive(Debug, Clone, Default)]
pub struct StaticTemplates {
    bodies: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    fetches: Arc<Mutex<Vec<String>>>,
}

impl StaticTemplates {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `body` at `url`.
    pub fn insert(&self, url: impl Into<String>, body: impl Into<Vec<u8>>) {
        lock(&self.bodies).insert(url.into(), body.into());
    }

    /// Every URL fetched so far, in order.
    pub fn fetched(&self) -> Vec<String> {
        lock(&self.fetches).clone()
    }
}

#[async_trait]
impl TemplateFetcher for StaticTemplates {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Error> {
        lock(&self.fetches).push(url.to_string());
        lock(&self.bodies)
            .get(url)
            .cloned()
            .ok_or_else(|| Error::TemplateFetch {
                url: url.to_string(),
                reason: "no such template in StaticTemplates".into(),
                source: None,
            })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fetches templates over https with a ready-built `reqwest::Client`
/// (feature `https-fetch`). Refuses bodies above
/// [`max_bytes`](HttpsTemplateFetcher::max_bytes) (default 1 MiB, the
/// CloudFormation limit for S3 templates) and non-success statuses.
#[cfg(feature = "https-fetch")]
#[derive(Debug, Clone)]
pub struct HttpsTemplateFetcher {
    client: reqwest::Client,
    /// The largest body accepted, in bytes.
    pub max_bytes: usize,
}

#[cfg(feature = "https-fetch")]
impl HttpsTemplateFetcher {
    /// A fetcher over `client` (configure its timeouts there).
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            max_bytes: 1024 * 1024,
        }
    }
}

#[cfg(feature = "https-fetch")]
#[async_trait]
impl TemplateFetcher for HttpsTemplateFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Error> {
        let fail = |reason: String, source: Option<crate::BoxError>| Error::TemplateFetch {
            url: url.to_string(),
            reason,
            source,
        };
        if !url.starts_with("https://") {
            return Err(fail("only https URLs are fetched".into(), None));
        }
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fail("request failed".into(), Some(Box::new(e))))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP status {}", response.status()), None));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail("reading the body failed".into(), Some(Box::new(e))))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(fail(
                    format!("body larger than {} bytes", self.max_bytes),
                    None,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_check_table() {
        let templates = StaticTemplates::new();
        templates.insert("https://s3.amazonaws.com/b/t", b"abc".to_vec());
        // sha256("abc")
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let url = "https://s3.amazonaws.com/b/t";
        assert!(verify_template_sha256(&templates, url, good).await.is_ok());
        assert!(
            verify_template_sha256(&templates, url, &good.to_uppercase())
                .await
                .is_ok()
        );
        let bad = good.replace('b', "c");
        assert!(matches!(
            verify_template_sha256(&templates, url, &bad).await,
            Err(Error::TemplateHashMismatch { actual, .. }) if actual == good
        ));
        assert!(matches!(
            verify_template_sha256(&templates, url, "abc").await,
            Err(Error::InvalidConfig(_))
        ));
        assert!(matches!(
            verify_template_sha256(&templates, "https://s3.amazonaws.com/b/other", good).await,
            Err(Error::TemplateFetch { .. })
        ));
    }

    #[cfg(feature = "https-fetch")]
    #[tokio::test]
    async fn https_fetcher_refuses_plain_http_and_reports_connection_failures() {
        let fetcher = HttpsTemplateFetcher::new(reqwest::Client::new());
        let err = fetcher
            .fetch("http://s3.amazonaws.com/b/k")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::TemplateFetch { reason, .. } if reason.contains("only https")),
            "{err}"
        );
        // Nothing listens on the discard port of loopback.
        let err = fetcher.fetch("https://127.0.0.1:9/b/k").await.unwrap_err();
        assert!(
            matches!(&err, Error::TemplateFetch { reason, .. } if reason == "request failed"),
            "{err}"
        );
    }
}
