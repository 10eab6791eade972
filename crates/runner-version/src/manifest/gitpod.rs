//! The public Gitpod runner manifest (unsigned JSON).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{Channel, Error, ImageRef, Release, Version, WaveSchedule};

/// The public Gitpod stable manifest:
/// `{version, image, proxy_image, cloudformation_template_url}` and, in
/// newer manifests, `image_digest` and `proxy_image_digest`.
///
/// The manifest is unsigned and names neither a channel nor an
/// infrastructure version: [`GitpodManifest::into_release`] takes the channel
/// from the caller and leaves [`Release::infra_version`] `None`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GitpodManifest {
    /// The runner version (`YYYYMMDD.N`).
    pub version: Version,
    /// The runner image, possibly tag-only.
    pub image: ImageRef,
    /// The proxy image, possibly tag-only.
    #[serde(default)]
    pub proxy_image: Option<ImageRef>,
    /// The CloudFormation template of the release.
    pub cloudformation_template_url: String,
    /// The runner image digest (`sha256:<hex>`), when published separately.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// The proxy image digest, when published separately.
    #[serde(default)]
    pub proxy_image_digest: Option<String>,
    /// When the release was published (RFC 3339), if the manifest says;
    /// [`waves`](Self::waves) are measured from it.
    #[serde(default)]
    pub released_at: Option<DateTime<Utc>>,
    /// Staged rollout waves, when the publisher adds them (absent from the
    /// public manifest today: everyone at once). Unsigned here, so only as
    /// trustworthy as the transport; see [`WaveSchedule`].
    #[serde(default)]
    pub waves: WaveSchedule,
}

impl GitpodManifest {
    /// Parses the manifest JSON. `origin` names where it came from, for
    /// error messages.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedManifest {
            origin: origin.into(),
            reason: format!("not a Gitpod runner manifest: {e}"),
        })
    }

    /// The release this manifest describes, on `channel`.
    ///
    /// A separately published digest is attached to an image that has none;
    /// an image whose own digest disagrees with it is an error. The release
    /// is [validated](Release::validate): an image that ends up without a
    /// digest is refused ([`Error::ImageNotPinned`]).
    pub fn into_release(self, channel: Channel) -> Result<Release, Error> {
        let image = attach_digest(&self.version, self.image, self.image_digest.as_deref())?;
        let proxy_image = match self.proxy_image {
            Some(proxy) => Some(attach_digest(
                &self.version,
                proxy,
                self.proxy_image_digest.as_deref(),
            )?),
            None => None,
        };
        let release = Release {
            version: self.version,
            channel,
            image,
            proxy_image,
            infra_version: None,
            template_url: self.cloudformation_template_url,
            template_sha256: None,
            released_at: self.released_at,
            expires: None,
            waves: self.waves,
        };
        release.validate()?;
        Ok(release)
    }
}

fn attach_digest(
    version: &Version,
    image: ImageRef,
    digest: Option<&str>,
) -> Result<ImageRef, Error> {
    let Some(digest) = digest.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(image);
    };
    match image.digest() {
        None => image.with_digest(digest),
        Some(own) if own.eq_ignore_ascii_case(digest) => Ok(image),
        Some(own) => Err(Error::InvalidRelease {
            version: version.to_string(),
            reason: format!("image {image} carries digest {own} but the manifest says {digest}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn manifest(extra: &str) -> String {
        format!(
            r#"{{"version":"20250101.3","image":"public.ecr.aws/gitpod/runner:20250101.3",
            "proxy_image":"public.ecr.aws/gitpod/proxy:20250101.3",
            "cloudformation_template_url":"https://example.com/runner.json"{extra}}}"#
        )
    }

    #[test]
    fn table_of_manifests() {
        // (extra fields, Ok((image digest, proxy digest)) or error text)
        type Want = Result<(&'static str, Option<&'static str>), &'static str>;
        let cases: [(String, Want); 5] = [
            (
                format!(r#","image_digest":"{D1}","proxy_image_digest":"{D2}""#),
                Ok((D1, Some(D2))),
            ),
            (format!(r#","image_digest":"{D1}""#), Err("not pinned")),
            (String::new(), Err("not pinned")),
            (
                format!(r#","image_digest":"{D1}","proxy_image_digest":"{D2}","new_field":1"#),
                Ok((D1, Some(D2))),
            ),
            (
                r#","image_digest":"sha256:zz","proxy_image_digest":"x""#.into(),
                Err("invalid image reference"),
            ),
        ];
        for (extra, want) in cases {
            let got = GitpodManifest::parse(manifest(&extra).as_bytes(), "test")
                .and_then(|m| m.into_release(Channel::Stable));
            match (got, want) {
                (Ok(release), Ok((image, proxy))) => {
                    assert_eq!(release.image.digest(), Some(image));
                    assert_eq!(release.proxy_image.as_ref().and_then(|p| p.digest()), proxy);
                    assert_eq!(release.infra_version, None);
                    assert_eq!(release.channel, Channel::Stable);
                    assert_eq!(release.version.to_string(), "20250101.3");
                }
                (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{extra}: {e}"),
                (got, want) => panic!("{extra}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn conflicting_digest_is_an_error() {
        let json = format!(
            r#"{{"version":"20250101.3","image":"r.io/runner@{D1}",
            "cloudformation_template_url":"https://example.com/t.json","image_digest":"{D2}"}}"#
        );
        let err = GitpodManifest::parse(json.as_bytes(), "test")
            .unwrap()
            .into_release(Channel::Stable)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRelease { .. }), "{err}");
    }

    #[test]
    fn waves_are_parsed_and_need_a_release_date() {
        let waves = r#","waves":[{"start_after":"1h","fleet_percentage":10},
            {"start_after":"1d","fleet_percentage":100}]"#;
        let digests = format!(r#","image_digest":"{D1}","proxy_image_digest":"{D2}""#);
        let dated = format!(r#"{digests},"released_at":"2025-01-01T09:00:00Z"{waves}"#);
        let release = GitpodManifest::parse(manifest(&dated).as_bytes(), "test")
            .unwrap()
            .into_release(Channel::Stable)
            .unwrap();
        assert_eq!(release.waves.waves().len(), 2);
        assert_eq!(release.waves.waves()[0].start_after.as_secs(), 3600);
        assert!(release.released_at.is_some());

        let undated = format!("{digests}{waves}");
        let err = GitpodManifest::parse(manifest(&undated).as_bytes(), "test")
            .unwrap()
            .into_release(Channel::Stable)
            .unwrap_err();
        assert!(err.to_string().contains("no released_at"), "{err}");

        let bad = format!(r#"{digests},"waves":[{{"start_after":0,"fleet_percentage":50}}]"#);
        let err = GitpodManifest::parse(manifest(&bad).as_bytes(), "test").unwrap_err();
        assert!(matches!(err, Error::MalformedManifest { .. }), "{err}");
    }

    #[test]
    fn bad_json_is_malformed() {
        for bad in ["", "{", "[]", r#"{"version":"20250101.3"}"#, "null"] {
            assert!(matches!(
                GitpodManifest::parse(bad.as_bytes(), "t"),
                Err(Error::MalformedManifest { .. })
            ));
        }
    }
}
