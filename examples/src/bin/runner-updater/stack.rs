//! `stack show|plan|apply|validate-azs`: the runner's CloudFormation stack
//! through `cfn-stack`. Nothing is applied without a plan: `plan` creates a
//! change set and prints what it would change; `apply --change-set NAME`
//! executes exactly that change set.

use std::collections::BTreeMap;

use cfn_stack::{
    AwsCfn, CfnApi, ChangeSetRef, NO_ECHO_MASK, PlanOutcome, StackChange, StackPlan, StackProgress,
    StackUpdateOutcome, TemplateSource,
};
use serde_json::json;

use crate::{
    cli::{StackAction, StackApplyArgs, StackPlanArgs, ValidateAzsArgs},
    context::Ctx,
    exit::{AppError, Exit},
    output,
};

/// `stack ...`.
pub async fn run(ctx: &Ctx, action: StackAction) -> Result<Exit, AppError> {
    match action {
        StackAction::Show => show(ctx).await,
        StackAction::Plan(args) => plan(ctx, &args).await,
        StackAction::Apply(args) => apply(ctx, &args).await,
        StackAction::ValidateAzs(args) => validate_azs(ctx, &args).await,
    }
}

async fn show(ctx: &Ctx) -> Result<Exit, AppError> {
    let name = ctx.settings.stack_name()?;
    let updater = crate::aws::stack_updater(ctx).await?;
    let state = updater.read_stack(name).await.map_err(AppError::failed)?;
    let d = &state.description;
    let infra = state.infra_version.as_ref().map(|v| v.as_str().to_string());
    let parameters = masked_parameters(ctx, name, &d.parameters).await;
    if !ctx.text() {
        output::json(&json!({
            "name": d.name,
            "id": d.id,
            "status": d.status.as_str(),
            "status_reason": d.status_reason,
            "infra_version": infra,
            "parameters": parameters,
            "outputs": d.outputs,
            "tags": d.tags,
            "last_updated": d.last_updated,
        }));
        return Ok(Exit::Success);
    }
    println!("Stack {} ({})", d.name, d.id);
    println!(
        "  status: {}{}",
        d.status,
        d.status_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    println!(
        "  infrastructure version: {}",
        infra
            .as_deref()
            .unwrap_or("not found (no InfrastructureVersion output or tag)")
    );
    if let Some(t) = d.last_updated {
        println!("  last updated: {}", t.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    for (title, map) in [
        ("parameters", &parameters),
        ("outputs", &d.outputs),
        ("tags", &d.tags),
    ] {
        println!("  {title}:");
        if map.is_empty() {
            println!("    (none)");
        }
        for (k, v) in map {
            println!("    {k} = {v}");
        }
    }
    Ok(Exit::Success)
}

/// The stack's parameters with the values of its `NoEcho` parameters
/// masked. CloudFormation masks them itself; this holds should a backend
/// hand a secret back (moto does). Without `GetTemplateSummary` (a
/// read-only policy need not grant it) the parameters are as described.
async fn masked_parameters(
    ctx: &Ctx,
    stack: &str,
    parameters: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut parameters = parameters.clone();
    let cfn = AwsCfn::new(aws_sdk_cloudformation::Client::new(ctx.sdk().await));
    if let Ok(summary) = cfn.template_summary(stack, &TemplateSource::Existing).await {
        for declared in summary.parameters.iter().filter(|p| p.no_echo) {
            if let Some(value) = parameters.get_mut(&declared.key) {
                *value = NO_ECHO_MASK.to_string();
            }
        }
    }
    parameters
}

fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>, AppError> {
    let mut out = BTreeMap::new();
    for set in sets {
        let (k, v) = set
            .split_once('=')
            .ok_or_else(|| AppError::Usage(format!("--set {set:?}: expected KEY=VALUE")))?;
        if k.trim().is_empty() {
            return Err(AppError::Usage(format!("--set {set:?}: the key is empty")));
        }
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

async fn plan(ctx: &Ctx, args: &StackPlanArgs) -> Result<Exit, AppError> {
    let name = ctx.settings.stack_name()?;
    let parameter_changes = parse_sets(&args.set)?;
    let (template_url, expected_sha256) = if args.release_template {
        let source = crate::stores::release_source(ctx)?;
        let release = source
            .latest(&ctx.settings.policy.channel)
            .await
            .map_err(AppError::failed)?
            .into_release();
        (
            Some(release.template_url),
            args.template_sha256.clone().or(release.template_sha256),
        )
    } else {
        (args.template_url.clone(), args.template_sha256.clone())
    };
    let change = match template_url {
        Some(template_url) => StackChange::ReplaceTemplate {
            template_url,
            parameter_changes,
            expected_sha256,
        },
        None if parameter_changes.is_empty() => {
            return Err(AppError::Usage(
                "nothing to plan: give --template-url, --release-template or --set KEY=VALUE"
                    .into(),
            ));
        }
        None => {
            if expected_sha256.is_some() {
                return Err(AppError::Usage(
                    "--template-sha256 needs --template-url or --release-template".into(),
                ));
            }
            StackChange::UseExistingTemplate { parameter_changes }
        }
    };
    let updater = crate::aws::stack_updater(ctx).await?;
    let text = ctx.text();
    let progress = move |p: &StackProgress| {
        if text && let StackProgress::ChangeSet { name, status } = p {
            println!("  change set {name}: {status}");
        }
    };
    let outcome = updater
        .plan_with_progress(name, &change, &progress)
        .await
        .map_err(AppError::failed)?;
    match outcome {
        PlanOutcome::NoChanges { reason } => {
            if text {
                println!("Nothing to change in stack {name}: {reason}");
            } else {
                output::json(&json!({ "stack": name, "no_changes": true, "reason": reason }));
            }
        }
        PlanOutcome::Planned(plan) => {
            let template = match &plan.template {
                TemplateSource::Existing => "existing".to_string(),
                TemplateSource::Url(u) => u.clone(),
                TemplateSource::Body(_) => "verified template body".to_string(),
            };
            if text {
                println!(
                    "Plan for stack {name} (change set {}):",
                    plan.change_set.change_set
                );
                println!("  template: {template}");
                println!("  parameters:");
                if plan.parameter_diff.is_empty() {
                    println!("    (no parameter changes)");
                }
                for p in &plan.parameter_diff {
                    println!("    {p}");
                }
                println!("  resources:");
                if plan.resource_changes.is_empty() {
                    println!("    (no resource changes reported)");
                }
                for r in &plan.resource_changes {
                    println!(
                        "    {} {} ({}){}",
                        r.action,
                        r.logical_id,
                        r.resource_type,
                        r.replacement
                            .as_deref()
                            .map(|x| format!(", replacement: {x}"))
                            .unwrap_or_default()
                    );
                }
                for w in &plan.warnings {
                    println!("  warning: {w}");
                }
                if let Some(sha) = &plan.template_sha256 {
                    println!("  template sha256: {sha} (verified)");
                }
                println!(
                    "Nothing was applied. To apply exactly this change set:\n  runner-updater stack apply --change-set {}{}",
                    plan.change_set.change_set,
                    plan.template_sha256
                        .as_deref()
                        .map(|s| format!(" --template-sha256 {s}"))
                        .unwrap_or_default()
                );
            } else {
                output::json(&json!({
                    "stack": name,
                    "change_set": plan.change_set.change_set,
                    "template": template,
                    "parameter_diff": plan.parameter_diff.iter().map(|p| json!({
                        "key": p.key, "old": p.old, "new": p.new,
                    })).collect::<Vec<_>>(),
                    "resource_changes": plan.resource_changes.iter().map(|r| json!({
                        "action": r.action,
                        "logical_id": r.logical_id,
                        "physical_id": r.physical_id,
                        "resource_type": r.resource_type,
                        "replacement": r.replacement,
                    })).collect::<Vec<_>>(),
                    "template_sha256": plan.template_sha256,
                    "warnings": plan.warnings,
                }));
            }
        }
    }
    Ok(Exit::Success)
}

async fn apply(ctx: &Ctx, args: &StackApplyArgs) -> Result<Exit, AppError> {
    let name = ctx.settings.stack_name()?;
    let updater = crate::aws::stack_updater(ctx).await?;
    // Only the change set's identity is used to execute it: what it does
    // was fixed (and shown) by `stack plan`.
    let plan = StackPlan::for_change_set(
        ChangeSetRef {
            stack: name.to_string(),
            change_set: args.change_set.clone(),
        },
        args.template_sha256.clone(),
    );
    let text = ctx.text();
    let progress = move |p: &StackProgress| {
        if !text {
            return;
        }
        match p {
            StackProgress::Event(e) => println!(
                "  {} {} {}{}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            StackProgress::Status {
                status, elapsed, ..
            } => {
                println!("  stack {status} after {} s", elapsed.as_secs())
            }
            _ => {}
        }
    };
    let outcome = updater
        .apply_plan(&plan, &progress)
        .await
        .map_err(AppError::failed)?;
    let (code, detail, exit) = match &outcome {
        StackUpdateOutcome::Updated {
            status,
            waited,
            cleanup_pending,
            ..
        } => (
            "updated",
            format!(
                "{status} after {} s{}",
                waited.as_secs(),
                if *cleanup_pending {
                    "; CloudFormation is still cleaning up replaced resources"
                } else {
                    ""
                }
            ),
            Exit::Success,
        ),
        StackUpdateOutcome::NoChanges { reason } => ("no_changes", reason.clone(), Exit::Success),
        StackUpdateOutcome::RolledBack { reasons, .. } => {
            ("rolled_back", reasons.join("; "), Exit::RolledBack)
        }
        StackUpdateOutcome::Failed {
            status, reasons, ..
        } => (
            "failed",
            format!("{status}: {}", reasons.join("; ")),
            Exit::Failed,
        ),
        other => ("failed", format!("{other:?}"), Exit::Failed),
    };
    if text {
        println!("Stack {name}: {code} ({detail})");
        if let Ok(state) = updater.read_stack(name).await {
            println!(
                "  infrastructure version now: {}",
                state
                    .infra_version
                    .as_ref()
                    .map_or("not found", runner_version::InfraVersion::as_str)
            );
        }
    } else {
        output::json(
            &json!({ "stack": name, "change_set": args.change_set, "outcome": code, "detail": detail }),
        );
    }
    Ok(exit)
}

#[cfg(feature = "ec2")]
async fn validate_azs(ctx: &Ctx, args: &ValidateAzsArgs) -> Result<Exit, AppError> {
    let name = ctx.settings.stack_name()?;
    let updater = crate::aws::stack_updater(ctx).await?;
    let state = updater.read_stack(name).await.map_err(AppError::failed)?;
    let mut request = updater
        .config()
        .az_parameters
        .request_from(&state.description.parameters);
    if !args.zones.is_empty() {
        request.availability_zones = args.zones.clone();
    }
    if !args.subnets.is_empty() {
        request.subnet_ids = args.subnets.clone();
    }
    let directory = cfn_stack::Ec2Subnets::new(aws_sdk_ec2::Client::new(ctx.sdk().await));
    let report = cfn_stack::validate_subnets(&directory, &request)
        .await
        .map_err(AppError::failed)?;
    let valid = report.is_valid();
    if ctx.text() {
        println!(
            "Stack {name}: zones {} · subnets {}",
            request.availability_zones.join(", "),
            request.subnet_ids.join(", ")
        );
        for s in report.found.values() {
            println!("  {} in {} (VPC {})", s.id, s.availability_zone, s.vpc_id);
        }
        if valid {
            println!("  OK: {report}");
        } else {
            for p in report.problems() {
                println!("  problem: {p}");
            }
        }
    } else {
        output::json(&json!({
            "stack": name,
            "valid": valid,
            "availability_zones": request.availability_zones,
            "subnet_ids": request.subnet_ids,
            "vpc_id": request.vpc_id,
            "found": report.found.values().map(|s| json!({
                "id": s.id, "vpc_id": s.vpc_id, "availability_zone": s.availability_zone,
            })).collect::<Vec<_>>(),
            "problems": report.problems(),
        }));
    }
    Ok(if valid { Exit::Success } else { Exit::Failed })
}

#[cfg(not(feature = "ec2"))]
async fn validate_azs(_ctx: &Ctx, _args: &ValidateAzsArgs) -> Result<Exit, AppError> {
    Err(AppError::NotBuilt(
        "`stack validate-azs` is not built: it needs the `ec2` feature (aws-sdk-ec2 takes \
         minutes and gigabytes to compile); rebuild with `--features ec2`"
            .into(),
    ))
}
