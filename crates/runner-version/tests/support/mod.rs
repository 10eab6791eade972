//! Test servers on 127.0.0.1 and fixtures shared by the integration tests.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use runner_version::{
    Channel, HttpConfig, HttpManifestSource, Release, ReleaseVerifier, SignedManifest, TrustPolicy,
    conformance::{CONFORMANCE_NOW, Publisher},
    ed25519_dalek::SigningKey,
};
use serde_json::{Value, json};
use update_clock::ManualClock;

/// A deterministic signing key.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Signs `release` with `(id, seed)` keys and returns the envelope bytes.
pub fn signed_bytes(release: &Release, signers: &[(&str, u8)]) -> Vec<u8> {
    let keys: Vec<_> = signers.iter().map(|(id, s)| (*id, key(*s))).collect();
    let refs: Vec<_> = keys.iter().map(|(id, k)| (*id, k)).collect();
    SignedManifest::sign(release, &refs).unwrap().to_json()
}

/// A trust policy over `(id, seed)` keys.
pub fn policy(threshold: usize, trusted: &[(&str, u8)]) -> TrustPolicy {
    trusted
        .iter()
        .fold(TrustPolicy::new(threshold), |p, (id, seed)| {
            p.with_key(*id, key(*seed).verifying_key())
        })
}

/// A clock at the conformance instant.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(CONFORMANCE_NOW))
}

/// A verifier trusting key "k1" (seed 1), on a manual clock.
pub fn signed_verifier(clock: Arc<ManualClock>) -> ReleaseVerifier {
    ReleaseVerifier::builder()
        .trust_policy(policy(1, &[("k1", 1)]))
        .clock(clock)
        .build()
        .unwrap()
}

/// HTTP settings for tests: loopback http allowed, short timeouts.
pub fn loopback_config() -> HttpConfig {
    HttpConfig {
        allow_loopback_http: true,
        connect_timeout: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
        max_body_bytes: 64 * 1024,
        ..HttpConfig::default()
    }
}

/// What the manifest server answers on one path.
#[derive(Debug, Clone)]
pub struct Served {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: Option<String>,
    /// Never answer.
    pub hang: bool,
    /// Send the body in 1 KiB chunks without a Content-Length.
    pub chunked: bool,
}

impl Served {
    pub fn json(body: Vec<u8>, etag: Option<&str>) -> Self {
        Self {
            status: 200,
            body,
            content_type: "application/json".into(),
            etag: etag.map(str::to_string),
            hang: false,
            chunked: false,
        }
    }
}

#[derive(Debug, Default)]
struct ServerState {
    paths: Mutex<HashMap<String, Served>>,
    requests: AtomicUsize,
    if_none_match: Mutex<Vec<Option<String>>>,
    authorizations: Mutex<Vec<Option<String>>>,
}

/// An axum server on 127.0.0.1 (port chosen by the OS), serving whatever
/// was [`set`](Self::set) per path; answers 304 when `If-None-Match`
/// matches the path's ETag.
#[derive(Debug, Clone)]
pub struct ManifestServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
}

async fn serve_manifest(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let inm = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state.if_none_match.lock().unwrap().push(inm.clone());
    let served = state.paths.lock().unwrap().get(uri.path()).cloned();
    let Some(served) = served else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if served.hang {
        std::future::pending::<()>().await;
    }
    if let Some(etag) = served.etag.as_ref().filter(|e| inm.as_ref() == Some(*e)) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.clone())]).into_response();
    }
    let body = if served.chunked {
        let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> =
            served.body.chunks(1024).map(|c| Ok(c.to_vec())).collect();
        axum::body::Body::from_stream(futures::stream::iter(chunks))
    } else {
        axum::body::Body::from(served.body)
    };
    let mut response = (
        StatusCode::from_u16(served.status).unwrap(),
        [(header::CONTENT_TYPE, served.content_type)],
        body,
    )
        .into_response();
    if let Some(etag) = served.etag {
        response
            .headers_mut()
            .insert(header::ETAG, etag.parse().unwrap());
    }
    response
}

impl ManifestServer {
    pub async fn start() -> Self {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .fallback(serve_manifest)
            .with_state(state.clone());
        let addr = spawn(app).await;
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, served: Served) {
        self.state
            .paths
            .lock()
            .unwrap()
            .insert(path.to_string(), served);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn if_none_match_seen(&self) -> Vec<Option<String>> {
        self.state.if_none_match.lock().unwrap().clone()
    }
}

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// An HTTP source over `server` with `/stable.json` and `/latest.json`.
pub fn http_source(server: &ManifestServer, verifier: ReleaseVerifier) -> HttpManifestSource {
    HttpManifestSource::builder()
        .channel_url(Channel::Stable, server.url("/stable.json"))
        .channel_url(Channel::Latest, server.url("/latest.json"))
        .config(loopback_config())
        .verifier(verifier)
        .build()
        .unwrap()
}

/// Publishes signed manifests (key k1) on a [`ManifestServer`], the ETag
/// being the version.
#[derive(Debug)]
pub struct HttpPublisher(pub ManifestServer);

#[async_trait]
impl Publisher for HttpPublisher {
    async fn publish(&self, release: &Release) {
        self.0.set(
            &format!("/{}.json", release.channel),
            Served::json(
                signed_bytes(release, &[("k1", 1)]),
                Some(&format!("\"{}\"", release.version)),
            ),
        );
    }
}

pub const GOOD_TOKEN: &str = "good-token";
pub const RELEASE_METHOD: &str = "test.v1.ReleaseService/GetAvailableRelease";

#[derive(Debug, Default)]
struct ApiState {
    runner: Mutex<Value>,
    manifests: Mutex<HashMap<String, Value>>,
    requests: Mutex<Vec<(String, Value)>>,
    forced_error: Mutex<Option<(u16, Value)>>,
}

/// A fake Connect server: `GetRunner` and [`RELEASE_METHOD`], bearer token
/// [`GOOD_TOKEN`] required.
#[derive(Debug, Clone)]
pub struct FakeGitpodApi {
    pub addr: SocketAddr,
    state: Arc<ApiState>,
}

async fn serve_api(
    State(state): State<Arc<ApiState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .requests
        .lock()
        .unwrap()
        .push((uri.path().to_string(), request.clone()));
    let connect_error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"code": code, "message": message}).to_string(),
        )
            .into_response()
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {GOOD_TOKEN}")) {
        return connect_error(StatusCode::UNAUTHORIZED, "unauthenticated", "invalid token");
    }
    if headers.get("connect-protocol-version").is_none() {
        return connect_error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "no protocol version",
        );
    }
    if let Some((status, body)) = state.forced_error.lock().unwrap().clone() {
        return (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    if request["runnerId"] != "runner-1" {
        return connect_error(StatusCode::NOT_FOUND, "not_found", "no such runner");
    }
    let answer = match uri.path() {
        "/gitpod.v1.RunnerService/GetRunner" => state.runner.lock().unwrap().clone(),
        path if path == format!("/{RELEASE_METHOD}") => {
            let channel = request["releaseChannel"].as_str().unwrap_or_default();
            match state.manifests.lock().unwrap().get(channel) {
                Some(manifest) => json!({ "manifest": manifest }),
                None => json!({}),
            }
        }
        _ => return connect_error(StatusCode::NOT_FOUND, "unimplemented", "no such method"),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

impl FakeGitpodApi {
    pub async fn start() -> Self {
        let state = Arc::new(ApiState::default());
        let app = Router::new().fallback(serve_api).with_state(state.clone());
        let addr = spawn(app).await;
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_runner(&self, runner: Value) {
        *self.state.runner.lock().unwrap() = runner;
    }

    /// Publishes `manifest` under the wire name of a channel
    /// (`RUNNER_RELEASE_CHANNEL_STABLE`, ...).
    pub fn set_manifest(&self, wire_channel: &str, manifest: Value) {
        self.state
            .manifests
            .lock()
            .unwrap()
            .insert(wire_channel.to_string(), manifest);
    }

    pub fn force_error(&self, status: u16, body: Value) {
        *self.state.forced_error.lock().unwrap() = Some((status, body));
    }

    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.requests.lock().unwrap().clone()
    }
}

pub fn wire_channel(channel: &Channel) -> String {
    match channel {
        Channel::Stable => "RUNNER_RELEASE_CHANNEL_STABLE".into(),
        Channel::Latest => "RUNNER_RELEASE_CHANNEL_LATEST".into(),
        Channel::Custom(name) => name.clone(),
    }
}

/// Publishes signed manifests (key k1) on a [`FakeGitpodApi`].
#[derive(Debug)]
pub struct ApiPublisher(pub FakeGitpodApi);

#[async_trait]
impl Publisher for ApiPublisher {
    async fn publish(&self, release: &Release) {
        let bytes = signed_bytes(release, &[("k1", 1)]);
        self.0.set_manifest(
            &wire_channel(&release.channel),
            serde_json::from_slice(&bytes).unwrap(),
        );
    }
}
