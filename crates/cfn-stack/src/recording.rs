//! `RecordingCfn`: a decorator that records every call to a `CfnApi`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{
    CfnApi, ChangeSetDescription, ChangeSetRef, ChangeSetStart, Error, StackDescription,
    StackEvent, StackUpdateRequest, TemplateSource, TemplateSummary, UpdateStart,
};

/// One `CfnApi` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CfnOperation {
    /// `DescribeStacks`
    DescribeStack,
    /// `GetTemplateSummary`
    TemplateSummary,
    /// `UpdateStack`
    UpdateStack,
    /// `CreateChangeSet`
    CreateChangeSet,
    /// `DescribeChangeSet`
    DescribeChangeSet,
    /// `ExecuteChangeSet`
    ExecuteChangeSet,
    /// `DeleteChangeSet`
    DeleteChangeSet,
    /// `DescribeStackEvents`
    StackEvents,
    /// `GetTemplate` (of a change set)
    ChangeSetTemplate,
}

impl CfnOperation {
    /// Whether the operation changes anything in the account.
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            CfnOperation::UpdateStack
                | CfnOperation::CreateChangeSet
                | CfnOperation::ExecuteChangeSet
                | CfnOperation::DeleteChangeSet
        )
    }
}

/// Wraps a [`CfnApi`] and records each operation before forwarding it, so
/// tests (and audits) can prove which calls were made. Clones share the log.
#[derive(Debug, Clone)]
pub struct RecordingCfn<A> {
    inner: A,
    calls: Arc<Mutex<Vec<CfnOperation>>>,
}

impl<A: CfnApi> RecordingCfn<A> {
    /// Records calls to `inner`.
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            calls: Arc::default(),
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<CfnOperation> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The mutating calls so far, in order.
    pub fn mutating_calls(&self) -> Vec<CfnOperation> {
        self.calls()
            .into_iter()
            .filter(|op| op.is_mutating())
            .collect()
    }

    /// Forgets the calls recorded so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    fn record(&self, op: CfnOperation) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(op);
    }
}

#[async_trait]
impl<A: CfnApi> CfnApi for RecordingCfn<A> {
    async fn describe_stack(&self, stack: &str) -> Result<StackDescription, Error> {
        self.record(CfnOperation::DescribeStack);
        self.inner.describe_stack(stack).await
    }

    async fn template_summary(
        &self,
        stack: &str,
        template: &TemplateSource,
    ) -> Result<TemplateSummary, Error> {
        self.record(CfnOperation::TemplateSummary);
        self.inner.template_summary(stack, template).await
    }

    async fn update_stack(&self, request: &StackUpdateRequest) -> Result<UpdateStart, Error> {
        self.record(CfnOperation::UpdateStack);
        self.inner.update_stack(request).await
    }

    async fn create_change_set(
        &self,
        name: &str,
        request: &StackUpdateRequest,
    ) -> Result<ChangeSetStart, Error> {
        self.record(CfnOperation::CreateChangeSet);
        self.inner.create_change_set(name, request).await
    }

    async fn describe_change_set(
        &self,
        change_set: &ChangeSetRef,
    ) -> Result<ChangeSetDescription, Error> {
        self.record(CfnOperation::DescribeChangeSet);
        self.inner.describe_change_set(change_set).await
    }

    async fn execute_change_set(
        &self,
        change_set: &ChangeSetRef,
        client_request_token: Option<&str>,
    ) -> Result<(), Error> {
        self.record(CfnOperation::ExecuteChangeSet);
        self.inner
            .execute_change_set(change_set, client_request_token)
            .await
    }

    async fn delete_change_set(&self, change_set: &ChangeSetRef) -> Result<(), Error> {
        self.record(CfnOperation::DeleteChangeSet);
        self.inner.delete_change_set(change_set).await
    }

    async fn change_set_template(&self, change_set: &ChangeSetRef) -> Result<String, Error> {
        self.record(CfnOperation::ChangeSetTemplate);
        self.inner.change_set_template(change_set).await
    }

    async fn stack_events(
        &self,
        stack: &str,
        after_event_id: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<StackEvent>, Error> {
        self.record(CfnOperation::StackEvents);
        self.inner.stack_events(stack, after_event_id, limit).await
    }
}
