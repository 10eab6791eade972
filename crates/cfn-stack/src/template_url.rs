//! Which template URLs an update may use.

use url::{Host, Url};

use crate::Error;

/// The rule for template URLs: `https` only, and an Amazon S3 host unless
/// the host is on [`allowed_hosts`](TemplateUrlPolicy::allowed_hosts).
///
/// Accepted S3 forms (`<region>` like `eu-west-1`, domain `amazonaws.com` or
/// `amazonaws.com.cn`):
/// - path style: `https://s3.amazonaws.com/<bucket>/<key>`,
///   `https://s3.<region>.amazonaws.com/<bucket>/<key>`,
///   `https://s3-<region>.amazonaws.com/<bucket>/<key>` (legacy);
/// - virtual-hosted: `https://<bucket>.s3.amazonaws.com/<key>`,
///   `https://<bucket>.s3.<region>.amazonaws.com/<key>`,
///   `https://<bucket>.s3-<region>.amazonaws.com/<key>` (legacy).
///
/// With [`allowed_buckets`](TemplateUrlPolicy::allowed_buckets) set, an S3
/// URL must also name one of those buckets (so a template can only come
/// from where releases are published).
///
/// Default: no extra hosts, any bucket.
///
/// ```
/// use cfn_stack::TemplateUrlPolicy;
///
/// let seed = "https://gitpod-flex-releases.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json";
/// assert!(TemplateUrlPolicy::default().check(seed).is_ok());
/// let releases_only = TemplateUrlPolicy::default().only_buckets(["gitpod-flex-releases"]);
/// assert!(releases_only.check(seed).is_ok());
/// assert!(releases_only.check("https://attacker.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateUrlPolicy {
    /// Hosts accepted besides S3 (exact, case-insensitive match), e.g. an
    /// S3-compatible store or `localhost` for an emulator. `https` is still
    /// required. The bucket allow-list does not apply to these hosts.
    pub allowed_hosts: Vec<String>,
    /// When set, the only S3 buckets templates may come from (exact match;
    /// bucket names are lower case). `None`: any bucket.
    pub allowed_buckets: Option<Vec<String>>,
}

/// Where a validated template URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateLocation {
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key (percent-decoding not applied).
        key: String,
        /// The region named in the host, if any.
        region: Option<String>,
    },
    /// A URL on an allow-listed host.
    AllowedHost {
        /// The host.
        host: String,
    },
}

impl TemplateUrlPolicy {
    /// A policy that also accepts `hosts`.
    pub fn allowing(hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            allowed_hosts: hosts.into_iter().map(Into::into).collect(),
            allowed_buckets: None,
        }
    }

    /// This policy, accepting S3 URLs only in `buckets`.
    pub fn only_buckets(mut self, buckets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_buckets = Some(buckets.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the policy itself: allow-listed hosts must be bare host names.
    pub fn validate(&self) -> Result<(), Error> {
        for host in &self.allowed_hosts {
            if host.is_empty() || host.contains(['/', ':', '@', ' ']) {
                return Err(Error::InvalidConfig(format!(
                    "allowed template host {host:?} must be a bare host name"
                )));
            }
        }
        if let Some(buckets) = &self.allowed_buckets {
            if buckets.is_empty() {
                return Err(Error::InvalidConfig(
                    "allowed template buckets is an empty list (no template would be accepted); \
                     use None to accept any bucket"
                        .into(),
                ));
            }
            if let Some(bucket) = buckets
                .iter()
                .find(|b| b.is_empty() || b.contains(['/', ':', '@', ' ']))
            {
                return Err(Error::InvalidConfig(format!(
                    "allowed template bucket {bucket:?} must be a bare bucket name"
                )));
            }
        }
        Ok(())
    }

    /// Checks `url` against the policy and says where it points.
    pub fn check(&self, url: &str) -> Result<TemplateLocation, Error> {
        let reject = |reason: &str| Error::InvalidTemplateUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        // The URL parser drops leading and trailing spaces and control
        // characters and tabs and newlines anywhere, and reads `\\` as `/`
        // and `https:host` as `https://host`; CloudFormation receives the
        // string as written, so only a string both read alike is checked.
        if !url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(reject("not https: it does not start with https://"));
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(reject(
                "URL contains whitespace, control characters or backslashes",
            ));
        }
        let parsed = Url::parse(url).map_err(|e| reject(&format!("not a URL ({e})")))?;
        if parsed.scheme() != "https" {
            return Err(reject(&format!(
                "scheme {:?} is not https",
                parsed.scheme()
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(reject("URL carries credentials"));
        }
        if parsed.port().is_some() {
            return Err(reject("URL names a port"));
        }
        if parsed.fragment().is_some() {
            return Err(reject("URL has a fragment"));
        }
        if has_dot_segment(url) {
            return Err(reject(
                "path has '.' or '..' segments (normalising them could point at another bucket or key)",
            ));
        }
        let host = match parsed.host() {
            Some(Host::Domain(host)) => host.to_ascii_lowercase(),
            Some(_) => return Err(reject("host is an IP address, not an S3 host")),
            None => return Err(reject("URL has no host")),
        };
        if self
            .allowed_hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&host))
        {
            return Ok(TemplateLocation::AllowedHost { host });
        }
        let location = s3_location(&host, parsed.path())
            .ok_or_else(|| reject(&format!("host {host:?} is not an Amazon S3 host")))?;
        match &location {
            TemplateLocation::S3 { bucket, key, .. } if bucket.is_empty() || key.is_empty() => {
                Err(reject("URL does not name both a bucket and an object key"))
            }
            TemplateLocation::S3 { bucket, .. }
                if self
                    .allowed_buckets
                    .as_ref()
                    .is_some_and(|allowed| !allowed.iter().any(|b| b == bucket)) =>
            {
                Err(reject(&format!(
                    "bucket {bucket:?} is not one of the allowed template buckets {:?}",
                    self.allowed_buckets.as_deref().unwrap_or_default()
                )))
            }
            _ => Ok(location),
        }
    }
}

/// Splits `host` into `(bucket prefix, region)` if it is an S3 endpoint.
fn s3_location(host: &str, path: &str) -> Option<TemplateLocation> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    // rest: "s3", "s3.<region>", "s3-<region>", "<bucket>.s3", "<bucket>.s3.<region>", ...
    let labels: Vec<&str> = rest.split('.').collect();
    let s3_at = labels
        .iter()
        .rposition(|l| *l == "s3" || l.strip_prefix("s3-").is_some_and(is_region))?;
    let region = match (&labels[s3_at..], labels[s3_at].strip_prefix("s3-")) {
        ([_], Some(region)) => Some(region.to_string()),
        ([_], None) => None,
        ([_, region], None) if is_region(region) => Some(region.to_string()),
        ([_, "dualstack", region], None) if is_region(region) => Some(region.to_string()),
        _ => return None,
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    if s3_at == 0 {
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        Some(TemplateLocation::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
            region,
        })
    } else {
        Some(TemplateLocation::S3 {
            bucket: labels[..s3_at].join("."),
            key: path.to_string(),
            region,
        })
    }
}

/// Whether the path of `url` (as written) has a `.` or `..` segment, plain
/// or percent-encoded, which URL normalisation would remove.
fn has_dot_segment(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let Some((_, path)) = after_scheme.split_once('/') else {
        return false;
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split(['/', '\\']).any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, ...
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s3(bucket: &str, key: &str, region: Option<&str>) -> TemplateLocation {
        TemplateLocation::S3 {
            bucket: bucket.into(),
            key: key.into(),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn accepted_s3_forms() {
        let table = [
            ("https://s3.amazonaws.com/b/k.yaml", s3("b", "k.yaml", None)),
            (
                "https://s3.eu-west-1.amazonaws.com/my-bucket/a/b/t.json",
                s3("my-bucket", "a/b/t.json", Some("eu-west-1")),
            ),
            (
                "https://s3-us-west-2.amazonaws.com/b/t.yaml",
                s3("b", "t.yaml", Some("us-west-2")),
            ),
            (
                "https://b.s3.amazonaws.com/dir/t.yaml",
                s3("b", "dir/t.yaml", None),
            ),
            (
                "https://gitpod-runner.s3.us-east-1.amazonaws.com/v2/runner.yaml",
                s3("gitpod-runner", "v2/runner.yaml", Some("us-east-1")),
            ),
            (
                "https://my.dotted.bucket.s3-eu-central-1.amazonaws.com/t",
                s3("my.dotted.bucket", "t", Some("eu-central-1")),
            ),
            (
                "https://b.s3.dualstack.us-gov-west-1.amazonaws.com/t",
                s3("b", "t", Some("us-gov-west-1")),
            ),
            (
                "https://s3.cn-north-1.amazonaws.com.cn/b/t",
                s3("b", "t", Some("cn-north-1")),
            ),
            (
                "https://S3.AMAZONAWS.COM/b/k?versionId=3",
                s3("b", "k", None),
            ),
        ];
        let policy = TemplateUrlPolicy::default();
        for (url, want) in table {
            assert_eq!(policy.check(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn rejected_urls_say_why() {
        let table = [
            ("http://s3.amazonaws.com/b/k", "not https"),
            ("s3://b/k", "not https"),
            ("ftp://s3.amazonaws.com/b/k", "not https"),
            ("https://example.com/t.yaml", "not an Amazon S3 host"),
            (
                "https://s3.amazonaws.com.evil.com/b/k",
                "not an Amazon S3 host",
            ),
            ("https://evil-s3.amazonaws.com/b/k", "not an Amazon S3 host"),
            (
                "https://ec2.us-east-1.amazonaws.com/b/k",
                "not an Amazon S3 host",
            ),
            (
                "https://s3.notaregion.amazonaws.com/b/k",
                "not an Amazon S3 host",
            ),
            ("https://127.0.0.1/b/k", "IP address"),
            ("https://s3.amazonaws.com/b", "bucket and an object key"),
            ("https://s3.amazonaws.com/", "bucket and an object key"),
            ("https://b.s3.amazonaws.com/", "bucket and an object key"),
            ("https://user:pw@s3.amazonaws.com/b/k", "credentials"),
            ("https://s3.amazonaws.com:8443/b/k", "port"),
            ("https://s3.amazonaws.com/b/k#x", "fragment"),
            (
                "https://s3.amazonaws.com/good/../evil/t.yaml",
                "'..' segments",
            ),
            ("https://s3.amazonaws.com/b/./t.yaml", "'..' segments"),
            ("https://b.s3.amazonaws.com/%2E%2e/t.yaml", "'..' segments"),
            ("https://", "not a URL"),
            ("not a url", "start with https://"),
            ("", "start with https://"),
            // Found by fuzz/fuzz_targets/cfn_inputs.rs: the URL parser drops
            // what CloudFormation would receive.
            (
                "\0\0\0https://templates.s3.amazonaws.com/run",
                "start with https://",
            ),
            ("https://s3.amazon\taws.com/b/k", "whitespace"),
            ("https:\\\\s3.amazonaws.com\\b\\k", "start with https://"),
            ("https://s3.amazonaws.com\\b\\k", "backslashes"),
            ("https:s3.amazonaws.com/b/k", "start with https://"),
            ("https://s3.amazonaws.com/b/k ", "whitespace"),
        ];
        let policy = TemplateUrlPolicy::default();
        for (url, why) in table {
            let err = policy.check(url).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidTemplateUrl { .. }),
                "{url}: {err}"
            );
            assert!(err.to_string().contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn allow_list_admits_a_host_but_never_plain_http() {
        let policy = TemplateUrlPolicy::allowing(["templates.example.com", "localhost"]);
        policy.validate().unwrap();
        assert_eq!(
            policy
                .check("https://Templates.example.com/x.yaml")
                .unwrap(),
            TemplateLocation::AllowedHost {
                host: "templates.example.com".into()
            }
        );
        assert!(policy.check("https://localhost/b/k").is_ok());
        assert!(policy.check("http://templates.example.com/x.yaml").is_err());
        assert!(policy.check("https://other.example.com/x.yaml").is_err());
        assert!(
            TemplateUrlPolicy::allowing(["https://x.com"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn the_seed_template_url_and_the_bucket_allow_list() {
        let seed =
            "https://gitpod-flex-releases.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json";
        assert_eq!(
            TemplateUrlPolicy::default().check(seed).unwrap(),
            s3(
                "gitpod-flex-releases",
                "ec2/stable/gitpod-ec2-runner.json",
                None
            )
        );
        let policy = TemplateUrlPolicy::default().only_buckets(["gitpod-flex-releases"]);
        policy.validate().unwrap();
        assert!(policy.check(seed).is_ok());
        assert!(
            policy
                .check("https://s3.us-east-1.amazonaws.com/gitpod-flex-releases/ec2/stable/t.json")
                .is_ok()
        );
        for (url, why) in [
            // Look-alike hosts: not S3 at all.
            (
                "https://gitpod-flex-releases.s3.amazonaws.com.evil.com/ec2/stable/gitpod-ec2-runner.json",
                "not an Amazon S3 host",
            ),
            (
                "https://gitpod-flex-releases.s3.amazonaws.co/ec2/stable/gitpod-ec2-runner.json",
                "not an Amazon S3 host",
            ),
            (
                "https://gitpod-flex-releases.s3-amazonaws.com/ec2/stable/gitpod-ec2-runner.json",
                "not an Amazon S3 host",
            ),
            // Real S3, foreign bucket (also one that merely starts alike).
            (
                "https://gitpod-flex-releases-evil.s3.amazonaws.com/ec2/stable/gitpod-ec2-runner.json",
                "not one of the allowed template buckets",
            ),
            (
                "https://s3.amazonaws.com/attacker/gitpod-flex-releases/ec2/stable/gitpod-ec2-runner.json",
                "not one of the allowed template buckets",
            ),
        ] {
            let err = policy.check(url).unwrap_err();
            assert!(err.to_string().contains(why), "{url}: {err}");
        }
        // The default policy refuses the look-alike hosts as well.
        assert!(
            TemplateUrlPolicy::default()
                .check("https://gitpod-flex-releases.s3.amazonaws.com.evil.com/ec2/t.json")
                .is_err()
        );
        assert!(
            TemplateUrlPolicy::default()
                .only_buckets(Vec::<String>::new())
                .validate()
                .is_err()
        );
        assert!(
            TemplateUrlPolicy::default()
                .only_buckets(["a/b"])
                .validate()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn every_s3_form_round_trips_bucket_and_key(
            bucket in "[a-z0-9][a-z0-9-]{2,20}",
            key in "[A-Za-z0-9_-]{1,10}(/[A-Za-z0-9_.-]{1,10}){0,3}",
            region in prop::sample::select(vec!["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-east-1"]),
            form in 0usize..6,
        ) {
            let url = match form {
                0 => format!("https://s3.amazonaws.com/{bucket}/{key}"),
                1 => format!("https://s3.{region}.amazonaws.com/{bucket}/{key}"),
                2 => format!("https://s3-{region}.amazonaws.com/{bucket}/{key}"),
                3 => format!("https://{bucket}.s3.amazonaws.com/{key}"),
                4 => format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"),
                _ => format!("https://{bucket}.s3-{region}.amazonaws.com/{key}"),
            };
            let policy = TemplateUrlPolicy::default();
            if key.split('/').any(|segment| segment == "." || segment == "..") {
                // Normalisation would change the key: always refused.
                prop_assert!(policy.check(&url).is_err());
                return Ok(());
            }
            match policy.check(&url).unwrap() {
                TemplateLocation::S3 { bucket: b, key: k, region: r } => {
                    prop_assert_eq!(b, bucket);
                    prop_assert_eq!(k, key);
                    prop_assert_eq!(r.is_some(), !matches!(form, 0 | 3));
                }
                other => prop_assert!(false, "{other:?}"),
            }
            // The same URL over http is always rejected.
            let http = url.replacen("https://", "http://", 1);
            prop_assert!(policy.check(&http).is_err());
        }
    }
}
