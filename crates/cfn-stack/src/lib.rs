//! Safe, scriptable updates of the runner's CloudFormation stack.
//!
//! The manual half of the runner updater ("Updating Infrastructure",
//! "Updating CloudFormation Parameters", "Expanding Availability Zones"),
//! made safe:
//!
//! - [`StackUpdater::read_stack`]: status, parameters, outputs, tags and the
//!   infrastructure version (from a configurable output or tag).
//! - Two kinds of [`StackChange`]: [`ReplaceTemplate`](StackChange::ReplaceTemplate)
//!   and [`UseExistingTemplate`](StackChange::UseExistingTemplate). Every
//!   parameter the caller does not change is sent with `UsePreviousValue`.
//!   A change to an undeclared parameter, a non-`https`/non-S3 template URL
//!   ([`TemplateUrlPolicy`]) or a template whose sha256 differs from the
//!   expected one is an error before any mutating call (URL and hash
//!   before any CloudFormation call at all).
//! - `NoEcho` parameters: a `****` handed back for a secret the stack has
//!   is `UsePreviousValue`, any other `****` for a hidden parameter is
//!   [`Error::MaskedNoEchoValue`]; a set secret is in the diff as
//!   `(hidden)`, and no plan, `Debug`, progress item or error carries it.
//! - A template with an expected sha256 is applied as the verified bytes
//!   ([`TemplateSource::Body`], ≤ [`MAX_TEMPLATE_BODY_BYTES`]), or by URL
//!   through a change set whose template is read back and compared before
//!   executing; [`StackChange::from_release`] carries a release's URL and
//!   hash, [`TemplateUrlPolicy::only_buckets`] limits the buckets.
//! - [`StackUpdater::plan`] creates a change set and returns the parameter
//!   diff (old → new) and the resource changes; [`StackUpdater::apply_plan`]
//!   executes it; [`StackUpdater::apply`] does both, or calls `UpdateStack`
//!   directly ([`ApplyMode::Direct`]).
//! - Waiting streams stack events to a [`ProgressSink`], runs on the
//!   injected [`Clock`](update_clock::Clock) with a timeout (throttled or
//!   transient reads are retried; a timeout carries a [`WaitResume`]), follows
//!   only the events of its `ClientRequestToken`, and ends in a
//!   [`StackUpdateOutcome`]: `Updated` (also with cleanup pending),
//!   `NoChanges` ("No updates are to be performed" is not an error),
//!   `RolledBack { reasons, rollback_failures }` or
//!   `Failed { status, reasons, next_step }`. A stack already `*_IN_PROGRESS` is
//!   [`Error::StackBusy`], never waited on.
//! - Availability zones: [`validate_subnets`] over a [`SubnetDirectory`]
//!   checks that subnets exist, share one VPC and cover every requested
//!   zone (by name or id), each subnet parameter on its own;
//!   [`AzParameterNames::declared_in`] checks the configured names against
//!   the template first; [`AzParameterNames::zone_change_warning`] warns when
//!   the zone parameter changes without the subnet parameters.
//! - The plan shows what will really change: the capabilities the template
//!   needs ([`TemplateSummary::required_capabilities`], acknowledged by
//!   [`StackUpdaterConfig::capabilities`]), parameters kept although their
//!   default changed ([`KeptDefault`]), SSM parameters re-resolved on every
//!   update ([`SsmParameter`]) and the rollback triggers
//!   ([`UpdateOptions`]). Change sets that fail, time out or are abandoned are
//!   deleted.
//!
//! Backends of [`CfnApi`]:
//! - [`FakeCfn`]: in memory, can fail and roll back updates (moto cannot);
//! - `AwsCfn` (feature `aws`): over `aws-sdk-cloudformation`;
//! - [`RecordingCfn`]: a decorator recording every call.
//!
//! Backends of [`SubnetDirectory`]: [`InMemorySubnets`] and `Ec2Subnets`
//! (feature `ec2`; aws-sdk-ec2 alone takes minutes and gigabytes to build).
//! Template fetchers (for the sha256 check): [`StaticTemplates`] and
//! `HttpsTemplateFetcher` (feature `https-fetch`).
//!
//! The `conformance` feature exposes the behaviour suite every [`CfnApi`]
//! backend must pass.
//!
//! ```
//! use std::sync::Arc;
//! use cfn_stack::{
//!     ApplyMode, FakeCfn, FakeTemplate, NoProgress, PlanOutcome, StackChange,
//!     StackUpdateOutcome, StackUpdater, StackUpdaterConfig,
//! };
//! use update_clock::ManualClock;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cfn = FakeCfn::new();
//! let v1 = "https://runner-templates.s3.amazonaws.com/v1/runner.yaml";
//! let v2 = "https://runner-templates.s3.amazonaws.com/v2/runner.yaml";
//! cfn.add_template(v1, FakeTemplate::new()
//!     .parameter("Image", None)
//!     .parameter("SubnetIds", None)
//!     .output("InfrastructureVersion", "1"));
//! cfn.add_template(v2, FakeTemplate::new()
//!     .parameter("Image", None)
//!     .parameter("SubnetIds", None)
//!     .output("InfrastructureVersion", "2"));
//! cfn.create_stack("runner", v1, &[("Image", "runner:1"), ("SubnetIds", "subnet-a")], &[])
//!     .unwrap();
//!
//! let clock = Arc::new(ManualClock::auto_advancing(ManualClock::EPOCH_2025));
//! let updater = StackUpdater::new(Arc::new(cfn), clock, StackUpdaterConfig::default()).unwrap();
//! assert_eq!(updater.read_stack("runner").await.unwrap().infra_version.unwrap().as_str(), "1");
//!
//! // Preview: only Image changes; SubnetIds is kept with UsePreviousValue.
//! let change = StackChange::replace_template(v2, [("Image", "runner:2")]);
//! let PlanOutcome::Planned(plan) = updater.plan("runner", &change).await.unwrap() else {
//!     panic!("expected a plan");
//! };
//! assert_eq!(plan.parameter_diff.len(), 1);
//! assert_eq!(plan.parameter_diff[0].to_string(), r#"Image: "runner:1" -> "runner:2""#);
//!
//! let outcome = updater.apply_plan(&plan, &NoProgress).await.unwrap();
//! assert!(matches!(outcome, StackUpdateOutcome::Updated { .. }));
//! assert_eq!(updater.read_stack("runner").await.unwrap().infra_version.unwrap().as_str(), "2");
//!
//! // The same change again changes nothing.
//! let again = updater.apply("runner", &change, ApplyMode::Direct, &NoProgress).await.unwrap();
//! assert!(matches!(again, StackUpdateOutcome::NoChanges { .. }));
//! # });
//! ```
#![warn(missing_docs)]

mod api;
#[cfg(feature = "aws")]
mod aws;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "ec2")]
mod ec2;
mod error;
mod fake;
mod outcome;
mod parameters;
mod recording;
#[cfg(feature = "aws")]
mod sdk_error;
mod status;
mod subnets;
mod template_fetch;
mod template_url;
mod updater;

pub use api::{
    CAPABILITY_AUTO_EXPAND, CfnApi, ChangeSetDescription, ChangeSetRef, ChangeSetStart,
    DeclaredParameter, MAX_ROLLBACK_TRIGGERS, MAX_TEMPLATE_BODY_BYTES, NO_ECHO_MASK,
    ParameterValue, ResourceChange, ResourceChangeDetail, RollbackConfiguration, StackDescription,
    StackEvent, StackUpdateRequest, TemplateSource, TemplateSummary, UpdateStart,
};
#[cfg(feature = "aws")]
pub use aws::AwsCfn;
#[cfg(feature = "ec2")]
pub use ec2::Ec2Subnets;
pub use error::{BoxError, Error, ErrorClass};
pub use fake::{FakeCfn, FakeFailure, FakeTemplate};
pub use outcome::{NoProgress, ProgressSink, StackProgress, StackUpdateOutcome, means_no_changes};
pub use parameters::{KeptDefault, ParameterChange, SsmParameter};
pub use recording::{CfnOperation, RecordingCfn};
pub use status::{StackStatus, StatusKind};
pub use subnets::{
    AzParameterNames, DeclaredAzParameters, InMemorySubnets, ListZoneGap, SubnetDirectory,
    SubnetInfo, SubnetList, SubnetReport, SubnetRequest, validate_subnets,
};
#[cfg(feature = "https-fetch")]
pub use template_fetch::HttpsTemplateFetcher;
pub use template_fetch::{
    StaticTemplates, TemplateFetcher, fetch_verified_template, sha256_hex, verify_template_sha256,
};
pub use template_url::{TemplateLocation, TemplateUrlPolicy};
pub use updater::{
    ApplyMode, InfraVersionKey, MAX_NESTED_DEPTH, PlanOutcome, StackChange, StackPlan, StackState,
    StackUpdater, StackUpdaterConfig, UpdateOptions, WaitResume,
};
