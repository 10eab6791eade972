//! The commands that talk to AWS (feature `aws`): `check`, `update`,
//! `rollback`, `status`, and the builders of the updater and its backends.

use std::sync::Arc;

use cfn_stack::{AwsCfn, HttpsTemplateFetcher, InfraVersionKey, StackUpdater, StackUpdaterConfig};
use ecs_rollout::{EcsApi, ProgressSink, Rollout, RolloutConfig, aws::AwsEcs, diff};
use runner_updater::{
    InfraVersionSource, JournalStep, LastOutcome, ServiceTagReporter, Target, Updater,
    WebhookNotifier, modify,
};
use runner_version::InfraVersion;
use serde_json::json;
use update_lock::LockError;

use crate::{
    cli::{RollbackArgs, UpdateArgs},
    config::InfraSettings,
    context::Ctx,
    exit::{AppError, Exit},
    output::{self, print_decision, print_report},
    progress::{LiveProgress, Mode},
    stores::{self, Stores, lock_json, lock_text, quarantine_table},
};

/// ECS through the SDK.
pub async fn ecs(ctx: &Ctx) -> Arc<dyn EcsApi> {
    Arc::new(AwsEcs::new(aws_sdk_ecs::Client::new(ctx.sdk().await)))
}

/// The stack updater over CloudFormation, with an https template fetcher
/// (for expected hashes) and, with feature `ec2`, the EC2 subnet directory.
pub async fn stack_updater(ctx: &Ctx) -> Result<Arc<StackUpdater>, AppError> {
    let mut config = StackUpdaterConfig::default();
    if let Some(InfraSettings::Stack {
        output_key,
        tag_key,
        ..
    }) = &ctx.settings.infra
        && (output_key.is_some() || tag_key.is_some())
    {
        config.infra_version_keys = output_key
            .iter()
            .map(|k| InfraVersionKey::Output(k.clone()))
            .chain(tag_key.iter().map(|k| InfraVersionKey::Tag(k.clone())))
            .collect();
    }
    let cfn = AwsCfn::new(aws_sdk_cloudformation::Client::new(ctx.sdk().await));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| AppError::failed(format!("HTTP client: {e}")))?;
    let updater = StackUpdater::new(Arc::new(cfn), ctx.clock.clone(), config)
        .map_err(|e| AppError::config("infra", e.to_string()))?
        .with_template_fetcher(Arc::new(HttpsTemplateFetcher::new(http)));
    #[cfg(feature = "ec2")]
    let updater = updater.with_subnet_directory(Arc::new(cfn_stack::Ec2Subnets::new(
        aws_sdk_ec2::Client::new(ctx.sdk().await),
    )));
    Ok(Arc::new(updater))
}

/// The updater of the configured runner, and its stores.
pub async fn updater(
    ctx: &Ctx,
    progress: Option<Arc<dyn ProgressSink>>,
) -> Result<(Updater, Stores), AppError> {
    let settings = &ctx.settings;
    let source = stores::release_source(ctx)?;
    let infra = match settings.infra()? {
        InfraSettings::Fixed(v) => InfraVersionSource::Fixed(InfraVersion::new(v.clone())),
        InfraSettings::Stack { name, .. } => InfraVersionSource::Stack {
            updater: stack_updater(ctx).await?,
            stack: name.clone(),
        },
    };
    let stores = Stores::open(ctx).await?;
    let ecs = ecs(ctx).await;
    let mut builder = Updater::builder()
        .source(source)
        .lock(stores.lock.clone())
        .journal(stores.journal.clone())
        .quarantine(stores.quarantine.clone())
        .ecs(ecs.clone())
        .infra(infra)
        .clock(ctx.clock.clone())
        .policy(settings.policy.clone())
        .config(settings.updater.clone());
    if let Some(url) = &settings.webhook_url {
        builder = builder.notifier(Arc::new(WebhookNotifier::new(url, ctx.clock.clone())?));
    }
    if settings.tag_services {
        builder = builder.reporter(Arc::new(ServiceTagReporter::new(ecs)));
    }
    if let Some(progress) = progress {
        builder = builder.progress(progress);
    }
    Ok((builder.build()?, stores))
}

/// `check`'s exit code: blocked (3) when the release needs another
/// infrastructure version and no unfinished update is to be resumed.
fn exit_of_check(decision: &update_policy::Decision, unfinished: bool) -> Exit {
    if !unfinished && decision.infrastructure_update_required().is_some() {
        Exit::Blocked
    } else {
        Exit::Success
    }
}

/// `check`.
pub async fn check(ctx: &Ctx) -> Result<Exit, AppError> {
    let (updater, _) = updater(ctx, None).await?;
    let report = updater.check().await?;
    if !ctx.text() {
        output::json(&report);
        return Ok(exit_of_check(&report.decision, report.unfinished.is_some()));
    }
    let s = &report.state;
    let r = &report.release;
    println!(
        "Runner {} on channel {}",
        ctx.settings.runner(),
        ctx.settings.policy.channel
    );
    println!(
        "  running:  {} (image {}, infrastructure {})",
        s.version, s.image, s.infra_version
    );
    println!(
        "  offered:  {} (image {}, needs infrastructure {}{})",
        r.version,
        r.image,
        r.infra_version
            .as_ref()
            .map_or("(not stated)", InfraVersion::as_str),
        r.released_at
            .map(|t| format!(", released {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
            .unwrap_or_default()
    );
    if let Some(h) = &s.highest_successful_version {
        println!("  highest version run successfully: {h}");
    }
    print_decision(&report.decision, "  ");
    if let Some((required, url)) = report.decision.infrastructure_update_required() {
        println!(
            "  blocked: apply {url} to the runner stack (infrastructure {required}) first; \
             `runner-updater stack plan --release-template` previews it"
        );
    }
    if let Some(entry) = &report.unfinished {
        println!(
            "  unfinished update {} of {} at step {}: the next cycle resumes it",
            entry.update_id,
            entry.release.version,
            entry.step.name()
        );
    }
    Ok(exit_of_check(&report.decision, report.unfinished.is_some()))
}

fn rollout_config(base: &RolloutConfig, target: &Target) -> RolloutConfig {
    let mut config = base.clone();
    config.runner_container = target.container.clone();
    config.version_label = target.version_label.clone();
    config
}

/// `update [--dry-run]`.
pub async fn update(ctx: &Ctx, args: &UpdateArgs) -> Result<Exit, AppError> {
    if args.dry_run {
        return dry_run(ctx).await;
    }
    let progress = Arc::new(LiveProgress::new(
        if ctx.text() {
            Mode::for_stdout()
        } else {
            Mode::Off
        },
        "  ",
    ));
    let (updater, _) = updater(ctx, Some(progress.clone())).await?;
    let result = updater.run_once().await;
    progress.close();
    let report = result?;
    if ctx.text() {
        print_report(&report);
    } else {
        output::json(&report);
    }
    Ok(Exit::of_outcome(&report.outcome))
}

async fn dry_run(ctx: &Ctx) -> Result<Exit, AppError> {
    let (updater, _) = updater(ctx, None).await?;
    let check = updater.check().await?;
    let ecs = ecs(ctx).await;
    let release = check
        .unfinished
        .as_ref()
        .map_or(&*check.release, |e| &e.release);
    let mut targets = Vec::new();
    for target in &ctx.settings.updater.targets {
        let service = ecs
            .describe_service(&target.cluster, &target.service)
            .await
            .map_err(AppError::failed)?;
        let running = ecs
            .describe_task_definition(&service.task_definition_arn)
            .await
            .map_err(AppError::failed)?;
        let image = target.image_of(release)?;
        let next = running
            .spec
            .with_runner_image(
                &target.container,
                image,
                target
                    .version_label
                    .as_deref()
                    .map(|l| (l, &release.version)),
            )
            .map_err(AppError::failed)?;
        targets.push(json!({
            "name": target.name,
            "cluster": target.cluster,
            "service": target.service,
            "task_definition_arn": running.arn,
            "image": image.to_string(),
            "changes": diff(&running.spec, &next),
        }));
    }
    let would_update = check.unfinished.is_some() || check.decision.is_update();
    if ctx.text() {
        println!(
            "Dry run for runner {} (nothing is changed)",
            ctx.settings.runner()
        );
        println!(
            "  running {} · offered {}",
            check.state.version, check.release.version
        );
        print_decision(&check.decision, "  ");
        if let Some(entry) = &check.unfinished {
            println!(
                "  plan: resume the unfinished update {} of {} from step {}",
                entry.update_id,
                entry.release.version,
                entry.step.name()
            );
        } else if would_update {
            println!(
                "  plan: lock {} → register a clone of each task definition with the new image → \
                 UpdateService → monitor (circuit breaker, health, bake) → roll every target back \
                 if one fails",
                ctx.settings.runner()
            );
        } else {
            println!(
                "  plan: nothing (the decision is to skip); the diffs below show what an update would change"
            );
        }
        for t in &targets {
            println!(
                "  target {} ({}/{}), from {}:",
                t["name"].as_str().unwrap_or(""),
                t["cluster"].as_str().unwrap_or(""),
                t["service"].as_str().unwrap_or(""),
                t["task_definition_arn"].as_str().unwrap_or("")
            );
            match t["changes"].as_array() {
                Some(changes) if !changes.is_empty() => {
                    for c in changes {
                        println!(
                            "    {}: {} → {}",
                            c["path"].as_str().unwrap_or(""),
                            c["old"],
                            c["new"]
                        );
                    }
                }
                _ => println!("    no change: the service already runs this image"),
            }
        }
    } else {
        output::json(&json!({
            "dry_run": true,
            "runner": ctx.settings.runner(),
            "would_update": would_update,
            "check": check,
            "targets": targets,
        }));
    }
    Ok(exit_of_check(&check.decision, check.unfinished.is_some()))
}

/// `rollback`: every target back to the task definition the last journalled
/// update recorded as previous, under the lock.
pub async fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<Exit, AppError> {
    let settings = &ctx.settings;
    let key = settings.runner();
    let stores = Stores::open(ctx).await?;
    let Some(entry) = stores.journal.load(key).await? else {
        return Err(AppError::failed(format!(
            "refusing to roll back: the journal of runner {key} holds no update, so there is no \
             recorded previous task definition to go back to"
        )));
    };
    if !entry.is_finished() {
        return Err(AppError::failed(format!(
            "refusing to roll back: update {} of {} is unfinished (step {}); the next cycle \
             (`runner-updater update` or the daemon) resumes it and rolls back itself if it fails",
            entry.update_id,
            entry.release.version,
            entry.step.name()
        )));
    }
    let ecs = ecs(ctx).await;
    let guard = match stores
        .lock
        .acquire(
            key,
            &settings.updater.owner,
            settings.updater.lease,
            settings.updater.lock_wait,
        )
        .await
    {
        Ok(g) => g,
        Err(LockError::Held { holder, .. }) => {
            return Err(AppError::failed(format!(
                "refusing to roll back: updater {holder} holds the lock of {key}; retry when it is done"
            )));
        }
        Err(e) => return Err(AppError::failed(e)),
    };
    let progress: Arc<dyn ProgressSink> = Arc::new(LiveProgress::new(
        if ctx.text() {
            Mode::for_stdout()
        } else {
            Mode::Off
        },
        "  ",
    ));
    let mut results = Vec::new();
    let mut all_ok = true;
    let mut failure: Option<AppError> = None;
    for progress_entry in entry.targets.iter().rev() {
        let Some(target) = settings
            .updater
            .targets
            .iter()
            .find(|t| t.name == progress_entry.name)
        else {
            failure = Some(AppError::config(
                "targets",
                format!(
                    "do not name {:?}, a target of the journalled update; roll back with the \
                     configuration that made it",
                    progress_entry.name
                ),
            ));
            break;
        };
        let Some(previous) = progress_entry.previous_task_definition_arn.clone() else {
            results.push(json!({ "name": target.name, "action": "not_updated" }));
            continue;
        };
        let service = match ecs.describe_service(&target.cluster, &target.service).await {
            Ok(s) => s,
            Err(e) => {
                failure = Some(AppError::failed(e));
                break;
            }
        };
        if service.task_definition_arn == previous {
            results.push(json!({
                "name": target.name,
                "action": "already_on_previous",
                "task_definition_arn": previous,
            }));
            continue;
        }
        let failed = progress_entry
            .task_definition_arn
            .clone()
            .unwrap_or_else(|| service.task_definition_arn.clone());
        let rollout = match Rollout::new(
            ecs.clone(),
            ctx.clock.clone(),
            rollout_config(&settings.updater.rollout, target),
        ) {
            Ok(r) => r.with_progress(progress.clone()),
            Err(e) => {
                failure = Some(AppError::failed(e));
                break;
            }
        };
        match rollout
            .revert(&target.rollout_target(), &previous, &failed, &args.reason)
            .await
        {
            Ok(evidence) => {
                all_ok &= evidence.completed;
                results.push(json!({
                    "name": target.name,
                    "action": "rolled_back",
                    "task_definition_arn": previous,
                    "rollback": evidence,
                }));
            }
            Err(e) => {
                failure = Some(AppError::failed(format!("target {}: {e}", target.name)));
                break;
            }
        }
    }
    if let Err(e) = stores.lock.release(&guard).await {
        tracing::warn!(error = %e, "could not release the lock");
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let now = ctx.clock.now();
    let reason = args.reason.clone();
    let version = entry.release.version.clone();
    modify(stores.quarantine.as_ref(), key, |r| {
        r.last_outcome = Some(LastOutcome {
            at: now,
            version: version.clone(),
            outcome: "rolled_back_by_operator".into(),
            summary: reason.clone(),
        });
    })
    .await?;
    if ctx.text() {
        println!(
            "Rollback of update {} ({}) for runner {key}:",
            entry.update_id, entry.release.version
        );
        for r in &results {
            println!(
                "  {}: {}{}",
                r["name"].as_str().unwrap_or(""),
                r["action"].as_str().unwrap_or(""),
                r["task_definition_arn"]
                    .as_str()
                    .map(|a| format!(" → {a}"))
                    .unwrap_or_default()
            );
        }
        if all_ok {
            println!(
                "The updater now holds at the running version (held after manual rollback); \
                 resume with `runner-updater hold clear --acknowledge-rollback`."
            );
        } else {
            println!(
                "A rollback deployment did not complete: look at the services in the ECS console."
            );
        }
    } else {
        output::json(&json!({
            "runner": key,
            "update_id": entry.update_id,
            "release": entry.release.version.to_string(),
            "completed": all_ok,
            "targets": results,
        }));
    }
    Ok(if all_ok { Exit::Success } else { Exit::Failed })
}

/// `status`.
pub async fn status(ctx: &Ctx) -> Result<Exit, AppError> {
    let key = ctx.settings.runner();
    let (updater, stores) = updater(ctx, None).await?;
    let now = ctx.clock.now();
    let lock = stores.lock.inspect(key).await.map_err(AppError::failed)?;
    let (record, _) = stores.quarantine.load(key).await?;
    let journal = stores.journal.load(key).await?;
    let check = updater.check().await;
    let running = match &check {
        Ok(_) => None,
        Err(_) => updater.running().await.ok(),
    };
    let journal_json = journal.as_ref().map(|e| {
        if e.is_finished() {
            json!({
                "update_id": e.update_id,
                "release": e.release.version.to_string(),
                "finished": true,
                "outcome": match &e.step { JournalStep::Done { outcome } => Some(outcome.clone()), _ => None },
                "written_at": e.written_at,
            })
        } else {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["finished"] = json!(false);
            v
        }
    });
    if !ctx.text() {
        let (current, available, decision, error) = match &check {
            Ok(c) => (
                Some(c.state.version.to_string()),
                Some(c.release.version.to_string()),
                Some(serde_json::to_value(&c.decision).unwrap_or_default()),
                None,
            ),
            Err(e) => (
                running
                    .as_ref()
                    .and_then(|r| r.version.as_ref())
                    .map(ToString::to_string),
                None,
                None,
                Some(e.to_string()),
            ),
        };
        output::json(&json!({
            "runner": key,
            "current_version": current,
            "available_version": available,
            "decision": decision,
            "check_error": error,
            "last_outcome": record.last_outcome,
            "highest_successful_version": record.highest_successful_version.as_ref().map(ToString::to_string),
            "hold": record.hold,
            "policy_hold": ctx.settings.policy.hold,
            "quarantine": record.quarantine.iter().map(|q| {
                let mut v = serde_json::to_value(q).unwrap_or_default();
                v["active"] = json!(q.is_active(now));
                v
            }).collect::<Vec<_>>(),
            "lock": lock_json(lock.as_ref()),
            "journal": journal_json,
            "backend": ctx.settings.backend.name(),
        }));
        return Ok(Exit::Success);
    }
    println!("Runner {key} ({} backend)", ctx.settings.backend.name());
    match &check {
        Ok(c) => {
            println!(
                "  current version:   {} (infrastructure {})",
                c.state.version, c.state.infra_version
            );
            println!("  available version: {}", c.release.version);
            print_decision(&c.decision, "  ");
        }
        Err(e) => {
            if let Some(v) = running.as_ref().and_then(|r| r.version.as_ref()) {
                println!("  current version:   {v}");
            }
            println!("  available version: unknown ({e})");
        }
    }
    match &record.last_outcome {
        Some(o) => println!(
            "  last outcome:      {} of {} at {}: {}",
            o.outcome,
            o.version,
            o.at.format("%Y-%m-%dT%H:%M:%SZ"),
            o.summary
        ),
        None => println!("  last outcome:      none recorded"),
    }
    if let Some(h) = &record.highest_successful_version {
        println!("  highest version run successfully: {h}");
    }
    match (&record.hold, &ctx.settings.policy.hold) {
        (_, Some(h)) => println!("  hold (config):     {}", h.reason),
        (Some(h), None) if h.is_active(now) => println!(
            "  hold:              {}{}",
            h.reason,
            h.expires_at
                .map(|t| format!(" until {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
                .unwrap_or_default()
        ),
        _ => println!("  hold:              none"),
    }
    println!("  lock:              {}", lock_text(lock.as_ref()));
    if record.quarantine.is_empty() {
        println!("  quarantine:        empty");
    } else {
        println!("  quarantine:");
        for line in quarantine_table(&record, now).render().lines() {
            println!("    {line}");
        }
    }
    match &journal {
        Some(e) if !e.is_finished() => println!(
            "  journal:           UNFINISHED update {} of {} at step {} (token {}, written {}); the next cycle resumes it",
            e.update_id,
            e.release.version,
            e.step.name(),
            e.token,
            e.written_at.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        Some(e) => println!(
            "  journal:           last update {} of {} finished ({})",
            e.update_id,
            e.release.version,
            match &e.step {
                JournalStep::Done { outcome } => outcome.as_str(),
                _ => "?",
            }
        ),
        None => println!("  journal:           empty"),
    }
    Ok(Exit::Success)
}
