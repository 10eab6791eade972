//! HTTP client settings shared by the HTTP sources, and their plumbing.

use std::{net::IpAddr, time::Duration};

use url::Url;

use crate::{Error, ErrorClass};

/// Limits and transport settings of the HTTP sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Time to establish a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time for the whole request, body included. Default 30 s.
    pub timeout: Duration,
    /// Largest response body read; a larger body is aborted while
    /// streaming. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Allow plain `http://` to loopback addresses (`127.0.0.0/8`, `::1`,
    /// `localhost`), for tests. Default `false`: https only.
    pub allow_loopback_http: bool,
    /// An explicit proxy URL for all requests. Default `None`: direct
    /// connections (the library never reads proxy environment variables).
    pub proxy: Option<String>,
    /// The `User-Agent` header. Default `runner-version/<crate version>`.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            allow_loopback_http: false,
            proxy: None,
            user_agent: concat!("runner-version/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

impl HttpConfig {
    /// Checks the settings: non-zero timeouts, connect timeout no longer
    /// than the total, a body cap of at least 1 byte, a valid proxy URL.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Error::InvalidConfig {
            what: "HTTP source",
            reason,
        };
        if self.connect_timeout.is_zero() || self.timeout.is_zero() {
            return Err(bad("timeouts must be greater than zero".into()));
        }
        if self.connect_timeout > self.timeout {
            return Err(bad(format!(
                "connect timeout {:?} exceeds the total timeout {:?}",
                self.connect_timeout, self.timeout
            )));
        }
        if self.max_body_bytes == 0 {
            return Err(bad("max_body_bytes must be at least 1".into()));
        }
        if let Some(proxy) = &self.proxy {
            reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| bad(format!("proxy URL {proxy:?}: {e}")))?;
        }
        Ok(())
    }

    /// Checks that `url` may be fetched under these settings.
    pub(crate) fn check_url(&self, url: &str) -> Result<Url, Error> {
        let parsed = Url::parse(url).map_err(|e| Error::InsecureUrl {
            url: url.into(),
            reason: format!("not a URL: {e}"),
        })?;
        if url_allowed(&parsed, self.allow_loopback_http) {
            Ok(parsed)
        } else {
            Err(Error::InsecureUrl {
                url: url.into(),
                reason: if self.allow_loopback_http {
                    "only https, or http to a loopback address, is allowed".into()
                } else {
                    "only https is allowed".into()
                },
            })
        }
    }

    /// A client with these timeouts, proxy and redirect rules.
    pub(crate) fn client(&self) -> Result<reqwest::Client, Error> {
        self.validate()?;
        let allow_loopback = self.allow_loopback_http;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if url_allowed(attempt.url(), allow_loopback) {
                attempt.follow()
            } else {
                attempt.error("redirect to a URL that is not https")
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(redirects)
            .user_agent(self.user_agent.clone())
            .no_proxy();
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|e| {
                Error::InvalidConfig {
                    what: "HTTP source",
                    reason: format!("proxy URL {proxy:?}: {e}"),
                }
            })?);
        }
        builder.build().map_err(|e| Error::InvalidConfig {
            what: "HTTP source",
            reason: format!("cannot build the HTTP client: {e}"),
        })
    }

    /// Maps a client error on `url`.
    pub(crate) fn transport_error(&self, url: &str, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::Timeout {
                url: url.into(),
                after: self.timeout,
            };
        }
        let class = if e.is_builder() || e.is_redirect() {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        };
        Error::Transport {
            url: url.into(),
            class,
            source: Box::new(e),
        }
    }

    /// Checks the content type is JSON (`application/json` or `*/*+json`).
    pub(crate) fn check_json(&self, url: &str, response: &reqwest::Response) -> Result<(), Error> {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Ok(())
        } else {
            Err(Error::WrongContentType {
                url: url.into(),
                content_type: content_type.into(),
            })
        }
    }

    /// Reads the body, aborting as soon as it exceeds the cap.
    pub(crate) async fn read_capped(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, Error> {
        let too_large = || Error::ResponseTooLarge {
            url: url.into(),
            limit: self.max_body_bytes,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The class of an unexpected HTTP status.
pub(crate) fn status_class(status: reqwest::StatusCode) -> ErrorClass {
    match status.as_u16() {
        429 => ErrorClass::Throttled,
        408 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

fn url_allowed(url: &Url, allow_loopback_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" if allow_loopback_http => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules() {
        let cases = [
            ("https://example.com/m.json", false, true),
            ("http://example.com/m.json", false, false),
            ("http://example.com/m.json", true, false),
            ("http://127.0.0.1:8080/m.json", false, false),
            ("http://127.0.0.1:8080/m.json", true, true),
            ("http://[::1]/m.json", true, true),
            ("http://localhost/m.json", true, true),
            ("ftp://127.0.0.1/m.json", true, false),
            ("not a url", true, false),
        ];
        for (url, allow, ok) in cases {
            let config = HttpConfig {
                allow_loopback_http: allow,
                ..HttpConfig::default()
            };
            assert_eq!(config.check_url(url).is_ok(), ok, "{url} allow={allow}");
        }
    }

    #[test]
    fn validate_table() {
        let d = HttpConfig::default();
        assert!(d.validate().is_ok());
        let cases = [
            HttpConfig {
                timeout: Duration::ZERO,
                ..d.clone()
            },
            HttpConfig {
                connect_timeout: Duration::from_secs(60),
                ..d.clone()
            },
            HttpConfig {
                max_body_bytes: 0,
                ..d.clone()
            },
            HttpConfig {
                proxy: Some("::not a url".into()),
                ..d.clone()
            },
        ];
        for config in cases {
            assert!(
                matches!(config.validate(), Err(Error::InvalidConfig { .. })),
                "{config:?}"
            );
        }
    }
}
