//! `TufReleaseSource` against repositories made by an independent TUF
//! implementation: python-tuf (`tests/support/make_tuf_repo.py`, pinned
//! `tuf==7.0.1`, installed by `scripts/test.sh`), served on 127.0.0.1.
//!
//! `tough` judges TUF metadata expiry on the system clock (it takes no
//! injected clock), so the repositories are dated relative to the real
//! time (a year ahead) and the expired case uses a real past date
//! (2020-01-01).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use runner_version::{
    Channel, Error, HttpConfig, MemoryHighWaterMark, ReleaseCheck, ReleaseSource, TrustPolicy,
    TufDocumentTrust, TufReleaseSource,
};

const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

fn gitpod_doc(version: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "version": version,
        "image": format!("registry.example.com/runner@{DIGEST}"),
        "cloudformation_template_url": "https://example.com/runner.json",
    }))
    .unwrap()
}

/// The repositories, built once per test by python-tuf.
struct Repositories {
    dir: tempfile::TempDir,
}

impl Repositories {
    fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current.json");
        let older = dir.path().join("older.json");
        std::fs::write(&current, gitpod_doc("20250102.1")).unwrap();
        std::fs::write(&older, gitpod_doc("20250101.1")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/make_tuf_repo.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg(dir.path().join("repos"))
            .arg(&current)
            .arg(&older)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "make_tuf_repo.py failed (is tuf==7.0.1 installed? scripts/test.sh installs it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn root(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("repos/1.root.json")).unwrap()
    }

    fn scenario(&self, name: &str) -> PathBuf {
        self.dir.path().join("repos").join(name)
    }
}

/// Serves one scenario directory at a time on 127.0.0.1 (`/metadata/...`,
/// `/targets/...`); [`serve`](Self::serve) swaps it.
#[derive(Clone)]
struct RepoServer {
    addr: SocketAddr,
    dir: Arc<Mutex<PathBuf>>,
}

async fn serve_file(State(dir): State<Arc<Mutex<PathBuf>>>, uri: Uri) -> Response {
    let base = dir.lock().unwrap().clone();
    let relative = uri.path().trim_start_matches('/');
    if relative
        .split('/')
        .any(|part| part == ".." || part.is_empty())
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match std::fs::read(base.join(relative)) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

impl RepoServer {
    async fn start(dir: PathBuf) -> Self {
        let dir = Arc::new(Mutex::new(dir));
        let app = Router::new().fallback(serve_file).with_state(dir.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, dir }
    }

    fn serve(&self, dir: PathBuf) {
        *self.dir.lock().unwrap() = dir;
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }
}

fn source(
    server: &RepoServer,
    root: Vec<u8>,
    datastore: &Path,
    trust: TufDocumentTrust,
) -> TufReleaseSource {
    TufReleaseSource::builder()
        .trusted_root(root)
        .metadata_base_url(server.url("metadata"))
        .targets_base_url(server.url("targets"))
        .datastore(datastore)
        .document_trust(trust)
        .high_water_mark(Arc::new(MemoryHighWaterMark::new()))
        .http_config(HttpConfig {
            allow_loopback_http: true,
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            ..HttpConfig::default()
        })
        .build()
        .unwrap()
}

struct Case {
    repos: Repositories,
    server: RepoServer,
    datastore: tempfile::TempDir,
}

impl Case {
    async fn new(scenario: &str) -> Self {
        let repos = Repositories::make();
        let server = RepoServer::start(repos.scenario(scenario)).await;
        Self {
            repos,
            server,
            datastore: tempfile::tempdir().unwrap(),
        }
    }

    fn source(&self) -> TufReleaseSource {
        source(
            &self.server,
            self.repos.root(),
            self.datastore.path(),
            TufDocumentTrust::TufOnly,
        )
    }
}

#[tokio::test]
async fn a_python_tuf_repository_is_accepted() {
    let case = Case::new("current").await;
    let check = case.source().check(&Channel::Stable).await.unwrap();
    let ReleaseCheck::Fetched(release) = check else {
        panic!("{check:?}");
    };
    assert_eq!(release.version.to_string(), "20250102.1");
    assert_eq!(release.channel, Channel::Stable);
    assert_eq!(
        release.image.to_string(),
        format!("registry.example.com/runner@{DIGEST}")
    );
    assert_eq!(release.template_url, "https://example.com/runner.json");

    // A channel whose target the repository does not list.
    let err = case.source().check(&Channel::Latest).await.unwrap_err();
    assert!(
        matches!(&err, Error::ChannelNotPublished { source_name, .. }
            if source_name.contains("releases/latest.json")),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_timestamp_is_refused() {
    let case = Case::new("expired").await;
    let err = case.source().check(&Channel::Stable).await.unwrap_err();
    let Error::TufExpired {
        repository,
        role,
        expired_at,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(role, "timestamp", "{err}");
    assert_eq!(repository, &case.server.url("metadata/"));
    assert_eq!(
        expired_at.map(|t| t.to_rfc3339()),
        Some("2020-01-01T00:00:00+00:00".into()),
        "{err}"
    );
    assert!(err.to_string().contains("2020-01-01"), "{err}");
}

#[tokio::test]
async fn a_rolled_back_snapshot_is_refused() {
    let case = Case::new("current").await;
    let source = case.source();
    let first = source.latest(&Channel::Stable).await.unwrap();
    assert_eq!(first.version.to_string(), "20250102.1");

    // A validly signed timestamp (v3) that points to an older snapshot.
    case.server.serve(case.repos.scenario("rolled-back"));
    let err = source.check(&Channel::Stable).await.unwrap_err();
    assert!(
        matches!(&err, Error::TufRollback { role, trusted_version: 2, offered_version: 1, .. }
            if role == "snapshot"),
        "{err:?}"
    );

    // After a restart too: the datastore persisted what was trusted, and
    // the high-water mark (fresh here, in memory) is not what refuses it.
    let restarted = case.source();
    let err = restarted.check(&Channel::Stable).await.unwrap_err();
    assert!(matches!(err, Error::TufRollback { .. }), "{err:?}");

    // A fresh datastore has nothing to compare with: it is the datastore
    // that protects (documented on TufReleaseSource).
    let fresh = tempfile::tempdir().unwrap();
    let amnesiac = source_with(&case, fresh.path());
    assert_eq!(
        amnesiac
            .latest(&Channel::Stable)
            .await
            .unwrap()
            .version
            .to_string(),
        "20250101.1"
    );
}

fn source_with(case: &Case, datastore: &Path) -> TufReleaseSource {
    source(
        &case.server,
        case.repos.root(),
        datastore,
        TufDocumentTrust::TufOnly,
    )
}

#[tokio::test]
async fn a_target_that_differs_from_its_hash_is_refused() {
    let case = Case::new("bad-hash").await;
    let err = case.source().check(&Channel::Stable).await.unwrap_err();
    assert!(
        matches!(&err, Error::TufTargetMismatch { target, .. } if target.contains("stable.json")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_root_rotation_is_followed_and_persisted() {
    let case = Case::new("rotated").await;
    // Trusting root v1 only, the client follows 2.root.json (signed by the
    // old and the new root keys) and accepts a timestamp signed by the new
    // timestamp key only.
    let release = case.source().latest(&Channel::Stable).await.unwrap();
    assert_eq!(release.version.to_string(), "20250102.1");
    let persisted = std::fs::read(case.datastore.path().join("root.json")).unwrap();
    let persisted: serde_json::Value = serde_json::from_slice(&persisted).unwrap();
    assert_eq!(persisted["signed"]["version"], 2);

    // The old timestamp key was rotated out: a repository still signed by
    // it is refused, even though the configured root (v1) trusts it,
    // because the datastore's root v2 is the one trusted now.
    case.server.serve(case.repos.scenario("current"));
    let err = case.source().check(&Channel::Stable).await.unwrap_err();
    assert!(
        matches!(&err, Error::TufRepository { reason, .. } if reason.contains("timestamp")),
        "{err:?}"
    );
}

#[tokio::test]
async fn also_signed_requires_the_document_signatures_too() {
    let case = Case::new("current").await;
    let key = runner_version::ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let source = source(
        &case.server,
        case.repos.root(),
        case.datastore.path(),
        TufDocumentTrust::AlsoSigned(TrustPolicy::new(1).with_key("k9", key.verifying_key())),
    );
    // The served document is an unsigned Gitpod manifest: TUF alone is not
    // enough for this source.
    let err = source.check(&Channel::Stable).await.unwrap_err();
    assert!(matches!(err, Error::MissingSignature { .. }), "{err:?}");
}

#[test]
fn the_builder_names_what_is_missing() {
    let err = TufReleaseSource::builder()
        .trusted_root(b"{}".to_vec())
        .metadata_base_url("https://tuf.example.com/metadata")
        .targets_base_url("https://tuf.example.com/targets")
        .datastore("/tmp/unused")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("document_trust"), "{err}");
    let err = TufReleaseSource::builder()
        .trusted_root(b"{}".to_vec())
        .metadata_base_url("http://tuf.example.com/metadata")
        .targets_base_url("https://tuf.example.com/targets")
        .datastore("/tmp/unused")
        .document_trust(TufDocumentTrust::TufOnly)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InsecureUrl { .. }), "{err}");
}
