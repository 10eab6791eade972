//! `iam-policy`: the least-privilege IAM policy of this configuration,
//! derived from [`GRANTS`], a table naming for every AWS action the crate
//! and function that calls it. The table lists every SDK operation called in
//! `crates/ecs-rollout/src/aws/`, `crates/cfn-stack/src/{aws,ec2}.rs`,
//! `crates/update-lock/src/dynamodb.rs` and `crates/runner-updater/src/dynamodb.rs`
//! (a `grep` for `.client.<operation>()`); those this binary never makes are
//! kept with `Need::Never`, so a new SDK call shows up as missing here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    cli::{IamPolicyArgs, OutputFormat},
    config::{Backend, InfraSettings, Settings},
    exit::{AppError, Exit},
    output,
};

/// When an action is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Need {
    /// Every update.
    Always,
    /// `rollout.keep_revisions` is set (retention).
    Retention,
    /// `lock.backend = "dynamodb"`.
    DynamoDb,
    /// The infrastructure version is read from a stack, or `stack show`.
    StackRead,
    /// `--with-stack-updates` (`stack plan` / `stack apply`).
    StackUpdates,
    /// `--with-az-validation` or `--with-stack-updates` (`stack validate-azs`, and
    /// `stack plan` of zone or subnet parameters).
    Subnets,
    /// Never granted: the call exists in a crate but this binary never makes it.
    Never,
}

/// Which resources a grant covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Scope {
    /// The targets' services.
    Services,
    /// The tasks of the targets' clusters.
    Tasks,
    /// The lock table.
    Table,
    /// The runner's stack.
    Stack,
    /// The task and execution roles.
    Roles,
    /// No resource-level permissions for this action (`*`).
    Any,
}

/// One AWS action and who calls it.
#[derive(Debug, Clone, Copy, Serialize)]
struct Grant {
    action: &'static str,
    called_by: &'static str,
    need: Need,
    scope: Scope,
}

const fn grant(action: &'static str, called_by: &'static str, need: Need, scope: Scope) -> Grant {
    Grant {
        action,
        called_by,
        need,
        scope,
    }
}

/// Every AWS action any crate of the workspace calls, with its caller.
const GRANTS: &[Grant] = &[
    // ecs-rollout, src/aws/aws_ecs.rs (AwsEcs as EcsApi), driven by Rollout.
    grant(
        "ecs:DescribeServices",
        "ecs-rollout AwsEcs::describe_service (Rollout::current_state, monitoring) and AwsEcs::update_service (re-read)",
        Need::Always,
        Scope::Services,
    ),
    grant(
        "ecs:UpdateService",
        "ecs-rollout AwsEcs::update_service (Rollout::run deploy, Rollout::revert rollback)",
        Need::Always,
        Scope::Services,
    ),
    grant(
        "ecs:DescribeTaskDefinition",
        "ecs-rollout AwsEcs::describe_task_definition, AwsEcs::essential_flags",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:RegisterTaskDefinition",
        "ecs-rollout AwsEcs::register_task_definition (the lossless clone)",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:TagResource",
        "ecs-rollout AwsEcs::tag_resource (failed-revision marks; runner-updater ServiceTagReporter) and tag-on-create of RegisterTaskDefinition",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:ListTasks",
        "ecs-rollout AwsEcs::list_tasks (ecs_rollout::list_all_tasks while monitoring)",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:DescribeTasks",
        "ecs-rollout AwsEcs::describe_tasks (stopped-task reasons, container health)",
        Need::Always,
        Scope::Tasks,
    ),
    grant(
        "ecs:ListTaskDefinitions",
        "ecs-rollout AwsEcs::list_task_definition_revisions (ecs_rollout::prune_revisions)",
        Need::Retention,
        Scope::Any,
    ),
    grant(
        "ecs:DeregisterTaskDefinition",
        "ecs-rollout AwsEcs::deregister_task_definition (ecs_rollout::prune_revisions)",
        Need::Retention,
        Scope::Any,
    ),
    grant(
        "ecs:ListServiceDeployments",
        "ecs-rollout AwsEcs::describe_service_deployments (the monitor judges by our ServiceDeployment's status; without the grant it falls back to DescribeServices)",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:DescribeServiceDeployments",
        "ecs-rollout AwsEcs::describe_service_deployments (the ServiceDeployment status that decides the verdict)",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:DescribeServiceRevisions",
        "ecs-rollout AwsEcs::describe_service_deployments (the task definition of a deployment's target and rollback revisions)",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "ecs:StopServiceDeployment",
        "ecs-rollout AwsEcs::stop_service_deployment (our rollback: stopType ROLLBACK; without the grant it falls back to UpdateService(previous))",
        Need::Always,
        Scope::Any,
    ),
    grant(
        "iam:PassRole",
        "RegisterTaskDefinition of a task definition with taskRoleArn / executionRoleArn",
        Need::Always,
        Scope::Roles,
    ),
    // update-lock src/dynamodb.rs and runner-updater src/dynamodb.rs.
    grant(
        "dynamodb:GetItem",
        "update-lock DynamoDbLockStore::load; runner-updater DynamoDbJournal::load and the re-read after a fenced write, DynamoDbQuarantine::load",
        Need::DynamoDb,
        Scope::Table,
    ),
    grant(
        "dynamodb:PutItem",
        "update-lock DynamoDbLockStore::write; runner-updater DynamoDbQuarantine::store and the Put inside DynamoDbJournal::write's TransactWriteItems",
        Need::DynamoDb,
        Scope::Table,
    ),
    grant(
        "dynamodb:ConditionCheckItem",
        "runner-updater DynamoDbJournal::write: the ConditionCheck on the lock item inside TransactWriteItems",
        Need::DynamoDb,
        Scope::Table,
    ),
    grant(
        "dynamodb:DescribeTable",
        "update-lock dynamodb::create_table_if_missing (never called by this binary: create the table beforehand)",
        Need::Never,
        Scope::Table,
    ),
    grant(
        "dynamodb:CreateTable",
        "update-lock dynamodb::create_table_if_missing (never called by this binary)",
        Need::Never,
        Scope::Table,
    ),
    grant(
        "dynamodb:UpdateTimeToLive",
        "update-lock dynamodb::create_table_if_missing (never called by this binary)",
        Need::Never,
        Scope::Table,
    ),
    grant(
        "dynamodb:DescribeTimeToLive",
        "update-lock dynamodb::create_table_if_missing (never called by this binary)",
        Need::Never,
        Scope::Table,
    ),
    // cfn-stack src/aws.rs (AwsCfn as CfnApi), driven by StackUpdater.
    grant(
        "cloudformation:DescribeStacks",
        "cfn-stack AwsCfn::describe_stack (StackUpdater::read_stack: infrastructure version, stack show; apply_plan, wait_for_update)",
        Need::StackRead,
        Scope::Stack,
    ),
    grant(
        "cloudformation:GetTemplateSummary",
        "cfn-stack AwsCfn::template_summary (StackUpdater::plan: declared parameters)",
        Need::StackUpdates,
        Scope::Any,
    ),
    grant(
        "cloudformation:CreateChangeSet",
        "cfn-stack AwsCfn::create_change_set (StackUpdater::plan)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:DescribeChangeSet",
        "cfn-stack AwsCfn::describe_change_set (StackUpdater::plan)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:DeleteChangeSet",
        "cfn-stack AwsCfn::delete_change_set (StackUpdater::plan: an empty change set is removed)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:GetTemplate",
        "cfn-stack AwsCfn::change_set_template (StackUpdater::plan and apply_plan with an expected template sha256: the change set's template is read back and checked)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:ExecuteChangeSet",
        "cfn-stack AwsCfn::execute_change_set (StackUpdater::apply_plan)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:DescribeStackEvents",
        "cfn-stack AwsCfn::stack_events (StackUpdater::apply_plan, wait_for_update)",
        Need::StackUpdates,
        Scope::Stack,
    ),
    grant(
        "cloudformation:UpdateStack",
        "cfn-stack AwsCfn::update_stack (ApplyMode::Direct only; this binary applies change sets)",
        Need::Never,
        Scope::Stack,
    ),
    // cfn-stack src/ec2.rs.
    grant(
        "ec2:DescribeSubnets",
        "cfn-stack Ec2Subnets::subnets (validate_subnets: stack validate-azs, stack plan of zone/subnet parameters)",
        Need::Subnets,
        Scope::Any,
    ),
];

/// The name part of an ARN or a plain name (`arn:...:cluster/runners` → `runners`).
fn name_of(value: &str) -> &str {
    if value.starts_with("arn:") {
        value.rsplit('/').next().unwrap_or(value)
    } else {
        value
    }
}

struct Context<'a> {
    settings: &'a Settings,
    args: &'a IamPolicyArgs,
}

impl Context<'_> {
    fn needed(&self, need: Need) -> bool {
        match need {
            Need::Always => true,
            Need::Retention => self.settings.updater.rollout.keep_revisions.is_some(),
            Need::DynamoDb => matches!(self.settings.backend, Backend::DynamoDb(_)),
            Need::StackRead => {
                matches!(self.settings.infra, Some(InfraSettings::Stack { .. }))
                    || self.args.with_stack_updates
                    || self.args.with_az_validation
            }
            Need::StackUpdates => self.args.with_stack_updates,
            Need::Subnets => self.args.with_stack_updates || self.args.with_az_validation,
            Need::Never => false,
        }
    }

    fn resources(&self, scope: Scope) -> Vec<String> {
        let targets = &self.settings.updater.targets;
        let mut out: Vec<String> = match scope {
            Scope::Services => targets
                .iter()
                .map(|t| {
                    format!(
                        "arn:aws:ecs:*:*:service/{}/{}",
                        name_of(&t.cluster),
                        name_of(&t.service)
                    )
                })
                .collect(),
            Scope::Tasks => targets
                .iter()
                .map(|t| format!("arn:aws:ecs:*:*:task/{}/*", name_of(&t.cluster)))
                .collect(),
            Scope::Table => match &self.settings.backend {
                Backend::DynamoDb(table) => {
                    vec![format!("arn:aws:dynamodb:*:*:table/{}", name_of(table))]
                }
                _ => Vec::new(),
            },
            Scope::Stack => match &self.settings.infra {
                Some(InfraSettings::Stack { name, .. }) => {
                    vec![format!(
                        "arn:aws:cloudformation:*:*:stack/{}/*",
                        name_of(name)
                    )]
                }
                _ => vec!["arn:aws:cloudformation:*:*:stack/*/*".into()],
            },
            Scope::Roles if !self.settings.pass_role_arns.is_empty() => {
                self.settings.pass_role_arns.clone()
            }
            Scope::Roles | Scope::Any => vec!["*".into()],
        };
        out.sort();
        out.dedup();
        out
    }
}

fn sid(scope: Scope, actions: &[&str]) -> String {
    let service = actions
        .first()
        .and_then(|a| a.split(':').next())
        .unwrap_or("x");
    let service = match service {
        "ecs" => "Ecs",
        "dynamodb" => "DynamoDb",
        "cloudformation" => "CloudFormation",
        "ec2" => "Ec2",
        "iam" => "Iam",
        other => other,
    };
    let scope = match scope {
        Scope::Services => "Services",
        Scope::Tasks => "Tasks",
        Scope::Table => "LockTable",
        Scope::Stack => "RunnerStack",
        Scope::Roles => "PassTaskRoles",
        Scope::Any => "Unscoped",
    };
    format!("{service}{scope}")
}

/// The policy document and the grants it was derived from.
fn build(settings: &Settings, args: &IamPolicyArgs) -> (Value, Vec<Grant>, Vec<String>) {
    let ctx = Context { settings, args };
    let granted: Vec<Grant> = GRANTS
        .iter()
        .copied()
        .filter(|g| ctx.needed(g.need))
        .collect();
    // Group by (service prefix, scope), keeping the table's order.
    let mut groups: Vec<((String, Scope), Vec<&'static str>)> = Vec::new();
    for g in &granted {
        let key = (
            g.action.split(':').next().unwrap_or("").to_string(),
            g.scope,
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, actions)) => actions.push(g.action),
            None => groups.push((key, vec![g.action])),
        }
    }
    let mut statements = Vec::new();
    for ((_, scope), actions) in &groups {
        let mut statement = json!({
            "Sid": sid(*scope, actions),
            "Effect": "Allow",
            "Action": actions,
            "Resource": ctx.resources(*scope),
        });
        if *scope == Scope::Roles {
            statement["Condition"] = json!({
                "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" }
            });
        }
        statements.push(statement);
    }
    let mut notes = vec![
        "dynamodb:TransactWriteItems is not an IAM action: a transaction is authorised by the \
         actions of its parts (PutItem, ConditionCheckItem)."
            .to_string(),
        "Region and account are `*` in every ARN; replace them to pin the policy to one account."
            .to_string(),
    ];
    if settings.pass_role_arns.is_empty() {
        notes.push(
            "iam:PassRole is allowed on any role passed to ECS tasks; list the task and execution \
             roles under [iam] pass_role_arns to narrow it."
                .into(),
        );
    }
    if args.with_stack_updates {
        notes.push(
            "A stack update also needs the permissions of every resource the template changes \
             (or a CloudFormation service role), and s3:GetObject on a private template bucket."
                .into(),
        );
    }
    (
        json!({ "Version": "2012-10-17", "Statement": statements }),
        granted,
        notes,
    )
}

/// `iam-policy`.
pub fn run(
    settings: &Settings,
    args: &IamPolicyArgs,
    format: OutputFormat,
) -> Result<Exit, AppError> {
    let (policy, granted, notes) = build(settings, args);
    match format {
        OutputFormat::Json => {
            let not_granted: Vec<&Grant> = GRANTS
                .iter()
                .filter(|g| !granted.iter().any(|x| x.action == g.action))
                .collect();
            output::json(&json!({
                "policy": policy,
                "granted": granted,
                "not_granted": not_granted,
                "notes": notes,
            }));
        }
        OutputFormat::Text => {
            output::json(&policy);
            let mut by_action: BTreeMap<&str, &str> = BTreeMap::new();
            for g in &granted {
                by_action.insert(g.action, g.called_by);
            }
            eprintln!("# Why each action is granted:");
            for (action, by) in by_action {
                eprintln!("#   {action:<36} {by}");
            }
            for note in notes {
                eprintln!("# Note: {note}");
            }
        }
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for g in GRANTS {
            assert!(seen.insert(g.action), "{} twice", g.action);
            assert!(g.action.contains(':'));
            assert!(!g.called_by.is_empty());
        }
    }

    /// The SDK operations called on a `client` in `source`, in PascalCase.
    fn sdk_calls(source: &str) -> Vec<String> {
        let mut calls = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("client") {
            rest = &rest[at + "client".len()..];
            let after = rest.trim_start();
            let Some(call) = after.strip_prefix('.') else {
                continue;
            };
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // `clone` and `config` are the client's own methods, not API calls.
            if name.is_empty()
                || !call[name.len()..].starts_with("()")
                || ["clone", "config"].contains(&name.as_str())
            {
                continue;
            }
            calls.push(
                name.split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect(),
            );
        }
        calls
    }

    #[test]
    fn the_table_names_every_sdk_call_of_the_crates() {
        let sources = [
            (
                "ecs",
                include_str!("../../../../crates/ecs-rollout/src/aws/aws_ecs.rs"),
            ),
            (
                "cloudformation",
                include_str!("../../../../crates/cfn-stack/src/aws.rs"),
            ),
            (
                "ec2",
                include_str!("../../../../crates/cfn-stack/src/ec2.rs"),
            ),
            (
                "dynamodb",
                include_str!("../../../../crates/update-lock/src/dynamodb.rs"),
            ),
            (
                "dynamodb",
                include_str!("../../../../crates/runner-updater/src/dynamodb.rs"),
            ),
        ];
        let mut found = 0;
        for (service, source) in sources {
            for call in sdk_calls(source) {
                found += 1;
                // A transaction is authorised by its parts' actions.
                if service == "dynamodb" && call == "TransactWriteItems" {
                    continue;
                }
                let action = format!("{service}:{call}");
                assert!(
                    GRANTS.iter().any(|g| g.action == action),
                    "{action} is called but not in GRANTS"
                );
            }
        }
        assert!(found >= 20, "the scan found only {found} calls");
    }

    #[test]
    fn arn_names() {
        assert_eq!(
            name_of("arn:aws:ecs:us-east-1:1:cluster/runners"),
            "runners"
        );
        assert_eq!(name_of("runners"), "runners");
    }
}
