//! `runner-updater`: the operator binary of the ECS self-updater (first
//! user: the Gitpod AWS runner).
//!
//! ```text
//! runner-updater demo                       # whole cycles on a simulated ECS, no setup
//! runner-updater --config runner.toml check # the decision, with every reason
//! runner-updater --config runner.toml update [--dry-run]
//! runner-updater --config runner.toml run --listen 127.0.0.1:9100
//! runner-updater --config runner.toml status | rollback | quarantine list|clear V
//!                | hold set --reason R [--until T] | hold clear | stack show|plan|apply|validate-azs
//!                | iam-policy [--with-stack-updates]
//! ```
//!
//! `--output json` prints one machine-readable document on every command.
//! Configuration comes from a TOML file (`--config`, see the `config`
//! module for every key), `RUNNER_UPDATER_*` environment variables and
//! flags; flags override the environment, which overrides the file. Invalid
//! values are refused before anything is done, naming the key.
//!
//! AWS is reached through aws-config's standard chain (credentials,
//! profiles, region, `AWS_ENDPOINT_URL`). The AWS commands need the `aws`
//! feature (`validate-azs` also `ec2`); `demo`, `iam-policy` and the
//! memory/file-backed `quarantine` and `hold` commands work without.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | succeeded, or nothing to do (skipped; another updater holds the lock; someone else deployed meanwhile) |
//! | 1    | rolled back: the release failed and every target is back on its previous task definition (quarantined) |
//! | 2    | failed: a rollback did not complete, the cycle was interrupted (the journal resumes it), or an error stopped the command; `demo`: a step did not give the expected outcome |
//! | 3    | blocked on infrastructure: apply the stack template named in the output first |
//! | 64   | usage or configuration error: nothing was done |

// Without the `aws` feature the AWS commands are not built, so parts of the
// shared modules (status rendering, the daemon's settings) go unused.
#![cfg_attr(not(feature = "aws"), allow(dead_code))]

mod cli;
mod config;
mod context;
mod demo;
mod exit;
mod iam;
mod output;
mod progress;
mod stores;

#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "aws")]
mod daemon;
#[cfg(feature = "aws")]
mod stack;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    cli::{Cli, Command},
    config::Settings,
    context::Ctx,
    exit::{AppError, Exit},
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Success.into()
                }
                _ => Exit::Usage.into(),
            };
        }
    };
    let format = cli.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runner-updater: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => {
            output::error(format, &error);
            error.exit().into()
        }
    }
}

/// Logs for every command but `run`: text on stderr, `RUST_LOG` filters.
fn init_stderr_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

async fn dispatch(cli: Cli) -> Result<Exit, AppError> {
    if let Command::Demo(args) = &cli.command {
        init_stderr_logs("error");
        return demo::run(args, cli.output).await;
    }
    if !matches!(cli.command, Command::Run(_)) {
        init_stderr_logs("warn");
    }
    let settings = Settings::load(cli.config.as_deref(), &cli.overrides)?;
    let ctx = Ctx::new(settings, cli.output);
    match cli.command {
        Command::Demo(_) => Ok(Exit::Success),
        Command::IamPolicy(args) => iam::run(&ctx.settings, &args, cli.output),
        Command::Quarantine { action } => stores::quarantine(&ctx, action).await,
        Command::Hold { action } => stores::hold(&ctx, action).await,
        #[cfg(feature = "aws")]
        Command::Run(args) => daemon::run(ctx, args).await,
        #[cfg(feature = "aws")]
        Command::Check => aws::check(&ctx).await,
        #[cfg(feature = "aws")]
        Command::Update(args) => aws::update(&ctx, &args).await,
        #[cfg(feature = "aws")]
        Command::Rollback(args) => aws::rollback(&ctx, &args).await,
        #[cfg(feature = "aws")]
        Command::Status => aws::status(&ctx).await,
        #[cfg(feature = "aws")]
        Command::Stack { action } => stack::run(&ctx, action).await,
        #[cfg(not(feature = "aws"))]
        other => Err(AppError::aws_not_built(command_name(&other))),
    }
}

#[cfg(not(feature = "aws"))]
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Run(_) => "run",
        Command::Check => "check",
        Command::Update(_) => "update",
        Command::Rollback(_) => "rollback",
        Command::Status => "status",
        Command::Stack { .. } => "stack",
        _ => "this command",
    }
}
