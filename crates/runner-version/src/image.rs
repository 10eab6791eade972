//! OCI image references.
//!
//! The parser is the distribution project's reference grammar
//! (`distribution/reference`, the one `docker pull` and ECS's registry
//! clients follow), written out by hand: `name[:tag][@digest]`, where a name
//! is an optional registry host (`host(.host)*(:port)?/`) and `/`-separated
//! lower-case path components, a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
//! and a digest is `algorithm:hex` (sha256, sha384 or sha512 of the right
//! length). It is checked against `oci-spec`'s regex parser by a
//! differential property test (`tests/image_ref_grammar.rs`). It replaces
//! that parser in the product because the regex, compiled with Unicode
//! classes, holds about 6 MB of heap for the life of a daemon whose whole
//! budget is 20 MiB, and it accepts non-ASCII tags, which the grammar, a
//! registry and ECS's image field do not.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The longest repository path (after Docker Hub's `library/` is added).
const REPOSITORY_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;
/// Docker Hub, the registry of a name without a host.
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's legacy host, normalised to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The tag of a reference with neither tag nor digest.
const DEFAULT_TAG: &str = "latest";

/// A container image reference, parsed by the OCI distribution grammar:
/// registry (with port), repository path, tag and `@sha256:` digest, in
/// their normal form (`docker.io/library/` for a bare Docker Hub name, the
/// tag `latest` when neither tag nor digest is given).
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
///
/// let hub: ImageRef = "busybox".parse().unwrap();
/// assert_eq!(hub.to_string(), "docker.io/library/busybox:latest");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses an image reference, or says which part of it is not valid.
    ///
    /// Leading and trailing ASCII whitespace (a config file's newline) is
    /// ignored; any other character, Unicode spaces included, is part of the
    /// reference and refused. A reference whose normal
    /// form (what a task definition gets, what is stored) would not parse
    /// back to the same reference is refused: `Ct/u` reads as Docker Hub's
    /// `docker.io/Ct/u`, whose repository is not lower case.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidImageRef {
            input: input.into(),
            reason,
        };
        let image = Self::parse_form(input.trim_matches(|c: char| c.is_ascii_whitespace()))
            .map_err(invalid)?;
        if Self::parse_form(&image.to_string()).as_ref() != Ok(&image) {
            return Err(invalid(format!(
                "its normal form {image} is not the same valid reference (a registry host \
                 needs a dot or a port, repository names are lower case)"
            )));
        }
        Ok(image)
    }

    /// One pass of the grammar over `text` and the normalisation of its
    /// name; the reason names the part that is wrong.
    fn parse_form(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("it is empty".into());
        }
        // Neither name nor tag has an `@`, and a digest has one `@` before it.
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        // A tag has neither `:` nor `/`; a name's only `:` is a registry
        // port, which a `/` follows. So a `:` after the last `/` starts the tag.
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if rest[colon..].find('/').is_none() => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        if !grammar::name(name) {
            return Err(format!(
                "the name {name:?} is not [registry-host[:port]/]path, with lower-case path \
                 components of letters and digits joined by '.', '_', '__' or dashes"
            ));
        }
        if let Some(tag) = tag
            && !grammar::tag(tag)
        {
            return Err(format!(
                "the tag {tag:?} is not 1 to {TAG_MAX} ASCII letters, digits, '_', '.' or '-', \
                 starting with a letter, digit or '_'"
            ));
        }
        if let Some(digest) = digest {
            grammar::digest(digest)?;
        }
        let (registry, repository) = split_registry(name);
        if repository.len() > REPOSITORY_MAX {
            return Err(format!(
                "the repository path {repository} is longer than {REPOSITORY_MAX} characters"
            ));
        }
        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// The registry host (and port), e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `gitpod/runner`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
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
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits a valid name into registry and repository the way Docker does: the
/// first path segment is a registry only if it has a `.` or a `:` or is
/// `localhost`; otherwise the registry is Docker Hub, where a one-segment
/// repository is an official image under `library/`.
fn split_registry(name: &str) -> (String, String) {
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let registry = match registry {
        DOCKER_HUB_LEGACY => DOCKER_HUB,
        other => other,
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository.to_owned()
    };
    (registry.to_owned(), repository)
}

/// The distribution reference grammar, one function per production.
mod grammar {
    use super::TAG_MAX;

    /// `name := [domain '/'] path-component ('/' path-component)*`
    ///
    /// A first segment that is both a valid domain and a valid path
    /// component is fine either way: the split into registry and repository
    /// is [`super::split_registry`]'s, not the grammar's.
    pub(super) fn name(text: &str) -> bool {
        path(text)
            || text
                .split_once('/')
                .is_some_and(|(first, rest)| domain(first) && path(rest))
    }

    /// `path := path-component ('/' path-component)*`
    fn path(text: &str) -> bool {
        text.split('/').all(path_component)
    }

    /// `path-component := alnum+ (separator alnum+)*` with lower-case
    /// `alnum` and `separator := '.' | '_' | '__' | '-'+`.
    fn path_component(text: &str) -> bool {
        let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        // Starting and ending in alnum, the pieces between alnum characters
        // are exactly the separators; any other character (upper case,
        // non-ASCII) lands in a piece and fails it. No index arithmetic, so
        // no loop that a wrong step could make endless.
        text.starts_with(lower_alnum)
            && text.ends_with(lower_alnum)
            && text
                .split(lower_alnum)
                .filter(|piece| !piece.is_empty())
                .all(|separator| {
                    matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
                })
    }

    /// `domain := host-component ('.' host-component)* [':' digit+]`
    fn domain(text: &str) -> bool {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        host.split('.').all(host_component)
            && port.is_none_or(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
    }

    /// `host-component := alnum | alnum (alnum | '-')* alnum`, either case.
    fn host_component(text: &str) -> bool {
        let bytes = text.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            }
            _ => false,
        }
    }

    /// `tag := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}`
    pub(super) fn tag(text: &str) -> bool {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let bytes = text.as_bytes();
        bytes.len() <= TAG_MAX
            && bytes.first().is_some_and(|&b| word(b))
            && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
    }

    /// `digest := algorithm ':' hex+` with
    /// `algorithm := component ([-_+.] component)*`,
    /// `component := [A-Za-z][A-Za-z0-9]*`, and then only the algorithms a
    /// registry serves, each with its own length: sha256 (64 hex digits),
    /// sha384 (96) or sha512 (128).
    pub(super) fn digest(text: &str) -> Result<(), String> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err(format!("the digest {text:?} is not algorithm:hex"));
        };
        let component = |c: &str| {
            c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && c.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if !algorithm.split(['-', '_', '+', '.']).all(component)
            || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format!("the digest {text:?} is not algorithm:hex"));
        }
        let expected = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            other => {
                return Err(format!(
                    "the digest algorithm {other:?} is not sha256, sha384 or sha512"
                ));
            }
        };
        if hex.len() != expected {
            return Err(format!(
                "the {algorithm} digest has {} hex digits, not {expected}",
                hex.len()
            ));
        }
        Ok(())
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

    /// A config file's newline or indentation is not part of the reference;
    /// a Unicode space is (CI's proptest drew `"0\u{a0}"`, which `str::trim`
    /// turned into the valid `0`).
    #[test]
    fn ignores_surrounding_ascii_whitespace_and_refuses_unicode_spaces() {
        for padded in ["  r.io/app:1\n", "\tr.io/app:1", "\r\nr.io/app:1\x0c"] {
            assert_eq!(
                ImageRef::parse(padded).map(|image| image.to_string()).ok(),
                Some("r.io/app:1".to_owned()),
                "{padded:?}"
            );
        }
        for spaced in [
            "0\u{a0}",
            "\u{a0}r.io/app:1",
            "r.io/app:1\u{2003}",
            "\u{feff}r.io/app",
            "r.io/app:1\u{85}",
            "\u{b}r.io/app",
        ] {
            assert!(
                matches!(ImageRef::parse(spaced), Err(Error::InvalidImageRef { .. })),
                "{spaced:?}"
            );
        }
    }

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
    fn normalises_docker_hub_names() {
        for (input, whole) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("team/app:1", "docker.io/team/app:1"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("index.docker.io/team/app", "docker.io/team/app:latest"),
            ("docker.io/app", "docker.io/library/app:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            // No dot, no port, not localhost: a Docker Hub path, not a host.
            ("registry/app", "docker.io/registry/app:latest"),
            // A tag, not a port: a host needs the `/` after it.
            ("test.com:5000", "docker.io/library/test.com:5000"),
            ("UPPER.io/app", "UPPER.io/app:latest"),
            // `_` is not in the host grammar, but `r_r.io` is a valid path
            // component, and Docker's split takes a first segment with a dot
            // for the registry (as docker and oci-spec do).
            ("r_r.io/app", "r_r.io/app:latest"),
            ("  r.io/app:1  ", "r.io/app:1"),
        ] {
            assert_eq!(
                ImageRef::parse(input).unwrap().to_string(),
                whole,
                "{input:?}"
            );
        }
        let pinned = ImageRef::parse(&format!("r.io/app@{DIGEST}")).unwrap();
        assert_eq!(
            pinned.tag(),
            None,
            "a digest without a tag gets no default tag"
        );
        assert_eq!(pinned.to_string(), format!("r.io/app@{DIGEST}"));
    }

    #[test]
    fn path_components_take_the_grammar_separators_only() {
        for good in [
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a1.b2_c3__d4-e5",
            "0",
            "a/b/c",
        ] {
            assert!(ImageRef::parse(&format!("r.io/{good}")).is_ok(), "{good}");
        }
        for bad in [
            "a..b", "a___b", "a._b", "a.-b", "a-.b", ".a", "a.", "_a", "a_", "-a", "a-", "A", "aB",
            "a/", "/a", "a//b", "a+b", "a~b", "é",
        ] {
            assert!(
                matches!(
                    ImageRef::parse(&format!("r.io/{bad}")),
                    Err(Error::InvalidImageRef { reason, .. }) if reason.contains("name")
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_hosts_take_dns_labels_and_a_numeric_port() {
        for good in [
            "r.io",
            "a-b.io",
            "a--b.c-d.io",
            "1.2.3.4:5000",
            "R.IO",
            "host:1",
            "x.y.z.w",
        ] {
            assert!(ImageRef::parse(&format!("{good}/app")).is_ok(), "{good}");
        }
        for bad in [
            "-r.io", "r-.io", "r..io", ".r.io", "r.io.", "r.io:", "r.io:5x", "r.io:1:2",
        ] {
            assert!(ImageRef::parse(&format!("{bad}/app")).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_up_to_128_ascii_word_characters_dots_and_dashes() {
        let longest = format!("_{}", "a".repeat(TAG_MAX - 1));
        for good in ["1", "_x", "A.b-C_9", longest.as_str()] {
            assert_eq!(
                ImageRef::parse(&format!("r.io/app:{good}")).unwrap().tag(),
                Some(good)
            );
        }
        for bad in [
            String::new(),
            "-x".into(),
            ".x".into(),
            "x+y".into(),
            "é".into(),
            "tag\u{e9}".into(),
            format!("{longest}a"),
        ] {
            assert!(
                matches!(
                    ImageRef::parse(&format!("r.io/app:{bad}")),
                    Err(Error::InvalidImageRef { reason, .. }) if reason.contains("tag")
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn digests_need_a_served_algorithm_and_its_length() {
        let hex = |n: usize| "a1".repeat(n / 2);
        for good in [
            format!("sha256:{}", hex(64)),
            format!("sha384:{}", hex(96)),
            format!("sha512:{}", hex(128)),
            format!("sha256:{}", hex(64).to_uppercase()),
        ] {
            assert_eq!(
                ImageRef::parse(&format!("r.io/app@{good}"))
                    .unwrap()
                    .digest(),
                Some(good.as_str())
            );
        }
        for (bad, says) in [
            (format!("sha256:{}", hex(62)), "hex digits"),
            (format!("sha256:{}", hex(66)), "hex digits"),
            (format!("sha384:{}", hex(64)), "hex digits"),
            (format!("sha512:{}", hex(96)), "hex digits"),
            (format!("md5:{}", hex(32)), "algorithm"),
            (format!("sha256+x:{}", hex(64)), "algorithm"),
            (format!("sha256:{}g", hex(62)), "algorithm:hex"),
            (format!("sha256:{}:", hex(64)), "algorithm:hex"),
            (format!("1sha:{}", hex(64)), "algorithm:hex"),
            (format!("sha256-:{}", hex(64)), "algorithm:hex"),
            (format!(":{}", hex(64)), "algorithm:hex"),
            ("sha256".into(), "algorithm:hex"),
            (format!("sha256:{}@x", hex(64)), "algorithm:hex"),
        ] {
            match ImageRef::parse(&format!("r.io/app@{bad}")) {
                Err(Error::InvalidImageRef { reason, .. }) => {
                    assert!(reason.contains(says), "{bad}: {reason}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn repository_paths_are_at_most_255_characters_after_library_is_added() {
        let at_most = "a".repeat(REPOSITORY_MAX - "library/".len());
        assert_eq!(
            ImageRef::parse(&at_most).unwrap().repository().len(),
            REPOSITORY_MAX
        );
        let too_long = format!("{at_most}b");
        assert!(
            matches!(
                ImageRef::parse(&too_long),
                Err(Error::InvalidImageRef { reason, .. }) if reason.contains("longer than 255")
            ),
            "the library/ prefix counts"
        );
        let own_host = format!("r.io/{}", "a".repeat(REPOSITORY_MAX));
        assert!(ImageRef::parse(&own_host).is_ok());
        assert!(ImageRef::parse(&format!("{own_host}a")).is_err());
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
