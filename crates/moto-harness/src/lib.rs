//! Starts and stops moto, the AWS API emulator, on 127.0.0.1 for wiring tests.
//!
//! The server runs in a Python child process (`python/moto_launcher.py`) that
//! exits when its standard input closes, so it never outlives the test
//! process. Nothing listens anywhere but 127.0.0.1 and the SDK configuration
//! returned by [`MotoServer::sdk_config`] reads no environment variables or
//! profiles.
//!
//! moto answers the real AWS wire protocols but never progresses an ECS
//! deployment or rolls back a CloudFormation stack by itself. A test that
//! needs that passes a plugin file to [`MotoServer::start_with_plugin`]; the
//! plugin edits moto's in-process backends when the test calls
//! [`MotoServer::control`]. Tests must say what such a plugin simulates.
//!
//! moto must be installed (`pip install 'moto[server]'`); the project's test
//! command installs it when missing.
#![warn(missing_docs)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};
use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::interceptors::{Intercept, context::BeforeTransmitInterceptorContextMut},
};
use aws_smithy_types::config_bag::ConfigBag;

/// The region every harness client uses.
pub const REGION: &str = "us-east-1";

/// The account moto uses when a request names none.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/moto_launcher.py");

/// A moto server on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    port: u16,
    control_port: u16,
}

impl MotoServer {
    /// Starts a plain moto server. Panics with a clear message when moto is
    /// not installed or does not come up within 60 seconds.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// Starts moto with a control plugin (see the crate docs).
    pub fn start_with_plugin(plugin: impl AsRef<Path>) -> Self {
        Self::spawn(Some(plugin.as_ref()))
    }

    /// One plain server shared by every test of this test binary, for tests
    /// that isolate themselves with their own account
    /// ([`unique_account_id`]). It is stopped when the test process exits.
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(MotoServer::start)
    }

    fn spawn(plugin: Option<&Path>) -> Self {
        let mut command = Command::new("python3");
        command.arg(LAUNCHER);
        if let Some(plugin) = plugin {
            command.arg(plugin);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 for moto: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading moto launcher output: {e}"));
        let mut words = line.split_whitespace();
        let (Some("READY"), Some(port), Some(control)) = (words.next(), words.next(), words.next())
        else {
            let _ = child.kill();
            panic!(
                "moto did not start (launcher said {line:?}); is moto installed? \
                 run: python3 -m pip install 'moto[server]'"
            );
        };
        let server = Self {
            port: port.parse().expect("moto port"),
            control_port: control.parse().expect("control port"),
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        for _ in 0..600 {
            if let Ok((200, _)) = self.http("GET", self.port, "/moto-api/data.json", &[], b"") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto on 127.0.0.1:{} did not answer within 60 s", self.port);
    }

    /// The moto port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL for SDK clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration for this server: region `us-east-1`, static test
    /// credentials, one attempt per request (moto's HTML 500s must fail fast,
    /// not be retried), and no environment or profile lookups.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "moto-harness",
            )))
            .endpoint_url(self.endpoint())
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build()
    }

    /// Forgets every resource in every account (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let (status, body) = self
            .http("POST", self.port, "/moto-api/reset", &[], b"")
            .expect("moto reset");
        assert_eq!(status, 200, "moto reset failed: {body}");
    }

    /// Starts moto's request recorder, writing to `path` (a file of the
    /// test's temporary directory): every request from now on is recorded,
    /// for [`recorded_actions`](Self::recorded_actions).
    pub fn start_recording(&self, path: &Path) {
        self.control(
            "harness/start_recording",
            &serde_json::json!({"path": path.display().to_string()}),
        );
    }

    /// The IAM-style `service:Action` names (`ecs:UpdateService`,
    /// `dynamodb:PutItem`, `cloudformation:DescribeStacks`) of every request
    /// recorded since [`start_recording`](Self::start_recording) whose user
    /// agent contains `user_agent` (e.g. `app/runner-updater`, the SDK's
    /// app name; `None` for every request), sorted and unique.
    pub fn recorded_actions(&self, user_agent: Option<&str>) -> Vec<String> {
        let answer = self.control(
            "harness/recorded_actions",
            &serde_json::json!({"user_agent": user_agent}),
        );
        answer["actions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls the plugin's `handle(operation, body)` and returns its result.
    /// Panics (failing the test) when the plugin raised.
    pub fn control(&self, operation: &str, body: &serde_json::Value) -> serde_json::Value {
        let payload = serde_json::to_vec(body).expect("json");
        let (status, text) = self
            .http(
                "POST",
                self.control_port,
                &format!("/{operation}"),
                &[("Content-Type", "application/json")],
                &payload,
            )
            .unwrap_or_else(|e| panic!("moto control {operation}: {e}"));
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("moto control {operation} answered non-JSON {text:?}: {e}"));
        assert_eq!(status, 200, "moto control {operation} failed: {value}");
        value
    }

    /// Creates `bucket` (if needed) in moto S3 and stores `body` at `key`.
    /// Returns the object's URL in the `https://s3.amazonaws.com/<bucket>/<key>`
    /// form, which moto's CloudFormation resolves against its own S3.
    pub fn put_s3_object(&self, bucket: &str, key: &str, body: &[u8]) -> String {
        let auth = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let headers = [("Authorization", auth)];
        let (status, text) = self
            .http("PUT", self.port, &format!("/{bucket}"), &headers, b"")
            .expect("create bucket");
        assert!(
            status == 200 || status == 409,
            "create bucket {bucket}: {status} {text}"
        );
        let (status, text) = self
            .http(
                "PUT",
                self.port,
                &format!("/{bucket}/{key}"),
                &headers,
                body,
            )
            .expect("put object");
        assert_eq!(status, 200, "put s3://{bucket}/{key}: {text}");
        format!("https://s3.amazonaws.com/{bucket}/{key}")
    }

    /// A minimal HTTP/1.0 client (moto closes every connection anyway).
    fn http(
        &self,
        method: &str,
        port: u16,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad HTTP response {text:?}")))?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok((status, body.to_string()))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin makes the launcher shut down; kill as a backstop.
        if let Ok(mut stdin) = self.stdin.lock() {
            stdin.take();
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh 12-digit moto account id, unique within this process, so tests
/// sharing one server never see each other's resources.
pub fn unique_account_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:012}",
        100_000_000_000 + u64::from(std::process::id()) * 1000 + n
    )
}

/// An SDK interceptor that sends every request as moto account `0`
/// (the `x-moto-account-id` header). Add it to a service config builder with
/// `.interceptor(MotoAccount(id))`.
#[derive(Debug, Clone)]
pub struct MotoAccount(pub String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .insert("x-moto-account-id", self.0.clone());
        Ok(())
    }
}
