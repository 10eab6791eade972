//! OCI image references.

use std::{fmt, str::FromStr};

use oci_spec::distribution::Reference;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A container image reference, parsed by a real OCI reference parser
/// (`oci-spec`): registry (with port), repository path, tag and
/// `@sha256:` digest.
///
/// ```
/// use runner_version::ImageRef;
///
/// let image: ImageRef = "registry.example.com:5000/team/runner:20250101.1@sha256:\
/// 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".parse().unwrap();
/// assert_eq!(image.registry(), "registry.example.com:5000");
/// assert_eq!(image.repository(), "team/runner");
/// assert_eq!(image.tag(), Some("20250101.1"));
/// assert!(image.digest().unwrap().starts_with("sha256:"));
/// assert!(image.pinned().is_ok());
///
/// let tagged: ImageRef = "registry.example.com:5000/team/runner:latest".parse().unwrap();
/// assert!(tagged.pinned().is_err()); // deploy by digest, never by mutable tag
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    reference: Reference,
}

impl ImageRef {
    /// Parses an image reference.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidImageRef {
            input: input.into(),
            reason,
        };
        let reference = Reference::try_from(input.trim()).map_err(|e| invalid(e.to_string()))?;
        // oci-spec 0.10 reads `Ct/u` as `docker.io/Ct/u`, a name it refuses
        // itself: a reference whose normal form (what a task definition
        // gets, what is stored) does not parse back to it is refused.
        if Reference::try_from(reference.whole()).ok().as_ref() != Some(&reference) {
            return Err(invalid(format!(
                "its normal form {reference} is not the same valid reference (a registry host \
                 needs a dot or a port, repository names are lower case)"
            )));
        }
        Ok(Self { reference })
    }

    /// The registry host (and port), e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The repository path, e.g. `gitpod/runner`.
    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.reference.tag()
    }

    /// The digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// This reference if it carries a digest, else [`Error::ImageNotPinned`]:
    /// images are deployed by digest, never by a mutable tag.
    pub fn pinned(&self) -> Result<&Self, Error> {
        match self.digest() {
            Some(_) => Ok(self),
            None => Err(Error::ImageNotPinned {
                image: self.to_string(),
            }),
        }
    }

    /// The same repository and tag with `digest` attached (`sha256:<hex>`).
    pub fn with_digest(&self, digest: &str) -> Result<Self, Error> {
        let base = match self.tag() {
            Some(tag) => format!("{}/{}:{tag}", self.registry(), self.repository()),
            None => format!("{}/{}", self.registry(), self.repository()),
        };
        Self::parse(&format!("{base}@{digest}"))
    }

    /// Whether two references name the same image: by digest when both carry
    /// one, otherwise by the whole normalised reference.
    pub fn same_image(&self, other: &ImageRef) -> bool {
        match (self.digest(), other.digest()) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reference.fmt(f)
    }
}

impl FromStr for ImageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ImageRef::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_forms_string_splitting_gets_wrong() {
        let cases = [
            (
                "registry:5000/repo",
                "registry:5000",
                "repo",
                Some("latest"),
                false,
            ),
            (
                "registry:5000/repo:1.2",
                "registry:5000",
                "repo",
                Some("1.2"),
                false,
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/gitpod/runner:20250101.1",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "gitpod/runner",
                Some("20250101.1"),
                false,
            ),
            ("ghcr.io/a/b/c@DIGEST", "ghcr.io", "a/b/c", None, true),
            (
                "localhost:5000/x:tag@DIGEST",
                "localhost:5000",
                "x",
                Some("tag"),
                true,
            ),
        ];
        for (input, registry, repo, tag, pinned) in cases {
            let input = input.replace("DIGEST", DIGEST);
            let image = ImageRef::parse(&input).unwrap();
            assert_eq!(image.registry(), registry, "{input}");
            assert_eq!(image.repository(), repo, "{input}");
            assert_eq!(image.tag(), tag, "{input}");
            assert_eq!(image.pinned().is_ok(), pinned, "{input}");
        }
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            "-leading/x",
            "repo@sha256:short",
            "a b",
            "registry:5000/",
            // Found by fuzz/fuzz_targets/image_ref.rs: accepted by oci-spec
            // as docker.io/Ct/u, which it then refuses.
            "Ct/u",
        ] {
            assert!(
                matches!(ImageRef::parse(bad), Err(Error::InvalidImageRef { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn same_image_compares_digests_when_both_have_one() {
        let a = ImageRef::parse(&format!("r.io/x:1@{DIGEST}")).unwrap();
        let b = ImageRef::parse(&format!("r.io/x:2@{DIGEST}")).unwrap();
        let c = ImageRef::parse("r.io/x:1").unwrap();
        assert!(a.same_image(&b), "same digest, different tag");
        assert!(!a.same_image(&c), "digest vs tag only");
        assert!(c.same_image(&ImageRef::parse("r.io/x:1").unwrap()));
        assert_eq!(c.with_digest(DIGEST).unwrap().digest(), Some(DIGEST));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = ImageRef::parse(&s);
        }

        #[test]
        fn display_round_trips(
            host in "[a-z]{1,8}(\\.[a-z]{2,3})?",
            port in proptest::option::of(1u16..),
            repo in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}",
            tag in "[a-z0-9][a-z0-9.]{0,6}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let image = ImageRef::parse(&format!("{host}.io{port}/{repo}:{tag}")).unwrap();
            prop_assert_eq!(ImageRef::parse(&image.to_string()).unwrap(), image);
        }
    }
}
