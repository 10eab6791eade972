//! The webhook notifier against an HTTP server on 127.0.0.1: delivery,
//! bounded retries of 5xx, no retry of 4xx, a server that never answers.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, http::StatusCode, routing::post};
use runner_updater::{Notification, Notifier, WebhookNotifier};
use update_clock::ManualClock;

fn notification() -> Notification {
    Notification {
        runner: "runners/runner".into(),
        outcome: "rolled_back".into(),
        from_version: Some("20250101.1".into()),
        to_version: "20250103.1".into(),
        summary: "Release 20250103.1 failed and was rolled back".into(),
        targets: vec![("runner".into(), "rolled_back_by_ecs".into())],
    }
}

/// A server answering `statuses` in turn (then 200), counting requests.
async fn server(
    statuses: Vec<u16>,
) -> (
    String,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, b) = (hits.clone(), bodies.clone());
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let (h, b, statuses) = (h.clone(), b.clone(), statuses.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                b.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or_default());
                StatusCode::from_u16(statuses.get(n).copied().unwrap_or(200)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), hits, bodies)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025))
}

#[tokio::test]
async fn delivers_the_notification_as_json() {
    let (url, hits, bodies) = server(vec![]).await;
    let hook = WebhookNotifier::new(&url, clock()).unwrap();
    hook.notify(&notification()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let body = bodies.lock().unwrap()[0].clone();
    assert_eq!(body["outcome"], "rolled_back");
    assert_eq!(body["to_version"], "20250103.1");
}

#[tokio::test]
async fn retries_server_errors_a_bounded_number_of_times() {
    let (url, hits, _) = server(vec![503, 500]).await;
    let hook = WebhookNotifier::new(&url, clock())
        .unwrap()
        .with_attempts(3);
    hook.notify(&notification()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    let (url, hits, _) = server(vec![503, 503, 503, 503]).await;
    let hook = WebhookNotifier::new(&url, clock())
        .unwrap()
        .with_attempts(2);
    let err = hook.notify(&notification()).await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn does_not_retry_a_client_error() {
    let (url, hits, _) = server(vec![404]).await;
    let hook = WebhookNotifier::new(&url, clock())
        .unwrap()
        .with_attempts(5);
    let err = hook.notify(&notification()).await.unwrap_err();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(err.to_string().contains("1 attempt"), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_credentials_are_not_printed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let hook = WebhookNotifier::new(
        &format!("http://user:s3cret@{addr}/hook?token=abc"),
        clock(),
    )
    .unwrap()
    .with_timeout(Duration::from_millis(200))
    .with_attempts(2);
    let err = hook.notify(&notification()).await.unwrap_err().to_string();
    assert!(err.contains("no answer within 200 ms"), "{err}");
    assert!(
        !err.contains("s3cret") && !err.contains("token=abc"),
        "{err}"
    );
}

#[test]
fn rejects_a_url_that_is_not_http() {
    let err = WebhookNotifier::new("ftp://example.com/x", clock()).unwrap_err();
    assert!(err.to_string().contains("notify.webhook_url"), "{err}");
}
