//! A hanging ECS call ends as a timeout, a `Transient` error the retry layer
//! retries, so a monitor's timeout holds even when a call never answers
//! (issue 10, "Calls and errors").
//!
//! Simulated: an endpoint on 127.0.0.1 that accepts the connection, reads
//! the request and never answers (a stalled connection or a black-holed
//! endpoint). No moto is needed; nothing leaves the machine.

use std::{net::TcpListener, time::Duration};

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use aws_smithy_types::timeout::TimeoutConfig;
use ecs_rollout::{
    EcsApi, Error, ErrorClass,
    aws::{AwsEcs, DEFAULT_ATTEMPT_TIMEOUT},
};

fn config(endpoint: &str) -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
}

/// Accepts connections and holds them open without a byte of answer.
fn black_hole() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        // Two connections are enough for the test; then stop accepting.
        for stream in listener.incoming().take(2) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    (endpoint, handle)
}

/// The attempt timeout `AwsEcs::new` leaves on a client built with `timeouts`.
fn attempt_timeout_kept(timeouts: TimeoutConfig) -> (Option<Duration>, Option<Duration>) {
    let client = aws_sdk_ecs::Client::from_conf(
        config("http://127.0.0.1:9")
            .timeout_config(timeouts)
            .build(),
    );
    let ecs = AwsEcs::new(client);
    let kept = ecs.client().config().timeout_config().unwrap();
    (kept.operation_attempt_timeout(), kept.connect_timeout())
}

#[test]
fn a_client_without_an_attempt_timeout_gets_the_default_and_keeps_its_other_timeouts() {
    let connect = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .build();
    assert_eq!(
        attempt_timeout_kept(connect),
        (Some(DEFAULT_ATTEMPT_TIMEOUT), Some(Duration::from_secs(3)))
    );
    // The embedder's own attempt timeout is kept.
    let own = TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(7))
        .build();
    assert_eq!(attempt_timeout_kept(own).0, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_call_that_never_answers_fails_as_transient() {
    let (endpoint, _server) = black_hole();
    let client = aws_sdk_ecs::Client::from_conf(
        config(&endpoint)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(300))
                    .build(),
            )
            .build(),
    );
    let ecs = AwsEcs::new(client);
    let error = ecs
        .describe_service("runners", "runner")
        .await
        .expect_err("nothing answers");
    assert!(
        matches!(
            &error,
            Error::Api {
                class: ErrorClass::Transient,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable(), "{error}");
}
