//! Fetches a release manifest (a file or an https URL), verifies it and
//! prints the release, or a clear error.
//!
//! ```text
//! release-check <manifest-file-or-https-url>
//!     [--trusted-key id=base64pubkey ...] [--threshold N] [--allow-unsigned]
//!     [--channel stable] [--output text|json] [--state-file marks.json]
//!     [--timeout-ms 30000] [--allow-loopback-http]
//! ```
//!
//! Exit status: 0 the release is acceptable, 1 it is not (or could not be
//! fetched), 2 bad arguments. Logs go to stderr as JSON (`RUST_LOG` filters).

use std::{process::ExitCode, sync::Arc, time::Duration};

use runner_version::{
    Channel, Error, FileHighWaterMark, HttpConfig, HttpManifestSource, Release, ReleaseCheck,
    ReleaseSource, ReleaseVerifier, StaticSource, TrustPolicy,
};

const USAGE: &str = "usage: release-check <manifest-file-or-https-url> \
[--trusted-key id=base64pubkey ...] [--threshold N] [--allow-unsigned] [--channel stable] \
[--output text|json] [--state-file path] [--timeout-ms N] [--allow-loopback-http]";

#[derive(Debug)]
struct Args {
    location: String,
    trusted_keys: Vec<(String, String)>,
    threshold: Option<usize>,
    allow_unsigned: bool,
    channel: Channel,
    json: bool,
    state_file: Option<String>,
    timeout: Duration,
    allow_loopback_http: bool,
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut location = None;
    let mut args = Args {
        location: String::new(),
        trusted_keys: Vec::new(),
        threshold: None,
        allow_unsigned: false,
        channel: Channel::Stable,
        json: false,
        state_file: None,
        timeout: Duration::from_secs(30),
        allow_loopback_http: false,
    };
    while let Some(arg) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--trusted-key" => {
                let pair = value("--trusted-key")?;
                let (id, key) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--trusted-key {pair:?}: expected id=base64pubkey"))?;
                args.trusted_keys.push((id.to_string(), key.to_string()));
            }
            "--threshold" => {
                let n = value("--threshold")?;
                args.threshold = Some(
                    n.parse()
                        .map_err(|_| format!("--threshold {n:?}: not a number"))?,
                );
            }
            "--allow-unsigned" => args.allow_unsigned = true,
            "--allow-loopback-http" => args.allow_loopback_http = true,
            "--channel" => {
                args.channel = Channel::parse(&value("--channel")?).map_err(|e| e.to_string())?;
            }
            "--output" => match value("--output")?.as_str() {
                "json" => args.json = true,
                "text" => args.json = false,
                other => return Err(format!("--output {other:?}: use text or json")),
            },
            "--state-file" => args.state_file = Some(value("--state-file")?),
            "--timeout-ms" => {
                let ms = value("--timeout-ms")?;
                args.timeout = Duration::from_millis(
                    ms.parse()
                        .map_err(|_| format!("--timeout-ms {ms:?}: not a number"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if location.is_none() => location = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    args.location = location.ok_or("missing the manifest file or URL")?;
    Ok(args)
}

fn build_source(args: &Args) -> Result<Box<dyn ReleaseSource>, Error> {
    let mut verifier = ReleaseVerifier::builder();
    if !args.trusted_keys.is_empty() {
        let mut policy = TrustPolicy::new(args.threshold.unwrap_or(1));
        for (id, key) in &args.trusted_keys {
            policy = policy.with_key_base64(id.clone(), key)?;
        }
        verifier = verifier.trust_policy(policy);
    }
    if args.allow_unsigned {
        verifier = verifier.allow_unsigned();
    }
    if let Some(path) = &args.state_file {
        verifier = verifier.high_water_mark(Arc::new(FileHighWaterMark::new(path)));
    }
    let verifier = verifier.build()?;
    if args.location.contains("://") {
        let source = HttpManifestSource::builder()
            .channel_url(args.channel.clone(), args.location.clone())
            .config(HttpConfig {
                timeout: args.timeout,
                connect_timeout: args.timeout.min(Duration::from_secs(5)),
                allow_loopback_http: args.allow_loopback_http,
                ..HttpConfig::default()
            })
            .verifier(verifier)
            .build()?;
        Ok(Box::new(source))
    } else {
        Ok(Box::new(
            StaticSource::new(verifier).with_manifest_file(args.channel.clone(), &args.location),
        ))
    }
}

fn print_release(release: &Release, fresh: bool, json: bool) {
    if json {
        let out = serde_json::json!({ "ok": true, "not_modified": !fresh, "release": release });
        println!("{out}");
        return;
    }
    println!("release {} on channel {}", release.version, release.channel);
    println!("  image:     {}", release.image);
    if let Some(proxy) = &release.proxy_image {
        println!("  proxy:     {proxy}");
    }
    match &release.infra_version {
        Some(infra) => println!("  infra:     {infra}"),
        None => println!("  infra:     (not stated by the manifest)"),
    }
    println!("  template:  {}", release.template_url);
    if let Some(expires) = release.expires {
        println!("  expires:   {expires}");
    }
}

fn print_error(error: &Error, json: bool) {
    if json {
        let kind = format!("{error:?}");
        let kind = kind.split([' ', '{', '(']).next().unwrap_or("Error");
        let out = serde_json::json!({
            "ok": false,
            "error": error.to_string(),
            "kind": kind,
            "retryable": error.is_retryable(),
        });
        println!("{out}");
    } else {
        eprintln!("release-check: {error}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("release-check: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match build_source(&args) {
        Ok(source) => source.check(&args.channel).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(check) => {
            let fresh = matches!(check, ReleaseCheck::Fetched(_));
            tracing::info!(version = %check.release().version, "release accepted");
            print_release(check.release(), fresh, args.json);
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::warn!(%error, "release refused");
            print_error(&error, args.json);
            ExitCode::from(1)
        }
    }
}
