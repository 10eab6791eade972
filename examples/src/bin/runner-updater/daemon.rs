//! `run`: the daemon. A cycle at every check time of the schedule, JSON
//! logs on stdout, `/metrics` (Prometheus, from the `metrics` facade through
//! metrics-exporter-prometheus) and `/healthz` on the configured address,
//! and a graceful stop on SIGTERM or SIGINT: the cycle in flight is dropped
//! at its next await point, the lock is released, the journal is kept for
//! the next updater to resume.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use update_policy::CheckSchedule;

use crate::{
    cli::RunArgs,
    config::parse_listen,
    context::Ctx,
    exit::{AppError, Exit},
    progress::{LiveProgress, Mode},
};

/// What `/healthz` reports.
#[derive(Debug, Clone, Serialize)]
struct Health {
    status: &'static str,
    runner: String,
    started_at: DateTime<Utc>,
    cycles: u64,
    failed_cycles: u64,
    last_cycle_at: Option<DateTime<Utc>>,
    last_outcome: Option<String>,
    last_summary: Option<String>,
    last_error: Option<String>,
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    health: Arc<Mutex<Health>>,
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let health = state
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&health).unwrap_or_default(),
    )
}

fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_writer(std::io::stdout)
        .with_env_filter(filter)
        .try_init();
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        () = terminate => tracing::info!("SIGTERM: stopping"),
    }
}

/// `run`.
pub async fn run(ctx: Ctx, args: RunArgs) -> Result<Exit, AppError> {
    init_json_logs();
    let listen: Option<SocketAddr> = match &args.listen {
        Some(l) => Some(parse_listen("metrics.listen", l)?),
        None => ctx.settings.metrics_listen,
    };
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| AppError::failed(format!("cannot install the metrics recorder: {e}")))?;
    let upkeep = {
        let handle = handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        })
    };
    let health = Arc::new(Mutex::new(Health {
        status: "ok",
        runner: ctx.settings.runner().to_string(),
        started_at: Utc::now(),
        cycles: 0,
        failed_cycles: 0,
        last_cycle_at: None,
        last_outcome: None,
        last_summary: None,
        last_error: None,
    }));
    let (stop_server, server_stopped) = tokio::sync::watch::channel(false);
    let server = match listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                AppError::failed(format!("cannot listen on {addr} (metrics.listen): {e}"))
            })?;
            tracing::info!(%addr, "serving /metrics and /healthz");
            let app = Router::new()
                .route("/metrics", get(metrics))
                .route("/healthz", get(healthz))
                .with_state(AppState {
                    metrics: handle.clone(),
                    health: health.clone(),
                });
            let mut stopped = server_stopped.clone();
            Some(tokio::spawn(async move {
                let result = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "metrics server stopped");
                }
            }))
        }
        None => None,
    };

    let progress = Arc::new(LiveProgress::new(Mode::Log, ""));
    let (updater, _) = crate::aws::updater(&ctx, Some(progress)).await?;
    let record = {
        let health = health.clone();
        move |result: Result<&runner_updater::CycleReport, &runner_updater::Error>| {
            let mut h = health.lock().unwrap_or_else(|e| e.into_inner());
            h.cycles += 1;
            h.last_cycle_at = Some(Utc::now());
            match result {
                Ok(report) => {
                    h.last_outcome = Some(report.outcome.code().to_string());
                    h.last_summary = Some(report.summary());
                    h.last_error = None;
                    let json = serde_json::to_string(report).unwrap_or_default();
                    tracing::info!(outcome = report.outcome.code(), report = %json, "{}", report.summary());
                }
                Err(e) => {
                    h.failed_cycles += 1;
                    h.last_error = Some(e.to_string());
                    tracing::warn!(error = %e, "cycle failed");
                }
            }
        }
    };
    let exit = if args.once {
        let result = updater.run_once().await;
        record(result.as_ref());
        match result {
            Ok(report) => Exit::of_outcome(&report.outcome),
            Err(e) => {
                tracing::warn!(error = %e, "cycle failed");
                Exit::Failed
            }
        }
    } else {
        let schedule = CheckSchedule::new(
            ctx.settings.schedule,
            CheckSchedule::seed_for(ctx.settings.runner()),
        )
        .map_err(|e| crate::exit::policy_error(&e))?;
        tracing::info!(
            runner = ctx.settings.runner(),
            owner = %ctx.settings.updater.owner,
            interval_secs = ctx.settings.schedule.interval.as_secs(),
            jitter_secs = ctx.settings.schedule.jitter.as_secs(),
            backend = ctx.settings.backend.name(),
            "updater started"
        );
        updater.run(schedule, shutdown_signal(), record).await;
        tracing::info!("updater stopped: lock released, journal kept");
        Exit::Success
    };
    let _ = stop_server.send(true);
    if let Some(server) = server {
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
    upkeep.abort();
    Ok(exit)
}
