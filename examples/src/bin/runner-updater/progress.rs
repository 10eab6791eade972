//! Live rollout progress: an indicatif spinner per deployment when stdout is
//! a terminal, plain lines otherwise, log events in the daemon.

use std::{io::IsTerminal, sync::Mutex, time::Duration};

use ecs_rollout::{ProgressEvent, ProgressSink, RolloutState};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use updater_examples::progress_text::{self, Arns};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A spinner line per deployment (stdout is a terminal).
    Spinner,
    /// Plain lines on stdout (pipes, CI logs).
    Plain,
    /// As `tracing` events (the daemon's JSON logs).
    Log,
    /// Nothing (JSON output).
    Off,
}

impl Mode {
    /// Spinner when stdout is a terminal, plain lines otherwise.
    pub fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() {
            Self::Spinner
        } else {
            Self::Plain
        }
    }
}

#[derive(Debug, Default)]
struct State {
    bar: Option<ProgressBar>,
    label: String,
    last: Option<(Option<RolloutState>, i32, i32, i32)>,
}

/// A [`ProgressSink`] for the terminal.
#[derive(Debug)]
pub struct LiveProgress {
    mode: Mode,
    indent: &'static str,
    state: Mutex<State>,
}

impl LiveProgress {
    /// A sink in `mode`, indenting lines by `indent`.
    pub fn new(mode: Mode, indent: &'static str) -> Self {
        Self {
            mode,
            indent,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finishes a spinner left open (a rollout that ended in an error).
    pub fn close(&self) {
        if let Some(bar) = self.state().bar.take() {
            bar.finish_and_clear();
        }
    }

    fn line(&self, state: &State, text: &str) {
        let line = format!("{}{}: {text}", self.indent, state.label);
        match (&state.bar, self.mode) {
            (Some(bar), Mode::Spinner) => bar.println(line),
            _ => println!("{line}"),
        }
    }
}

/// The family of a task-definition ARN (`.../task-definition/runner:3` → `runner`).
fn family(arn: &str) -> String {
    arn.rsplit('/')
        .next()
        .and_then(|s| s.split(':').next())
        .unwrap_or(arn)
        .to_string()
}

fn counts(event: &ProgressEvent) -> Option<String> {
    match event {
        ProgressEvent::DeploymentProgress {
            rollout_state,
            desired,
            pending,
            running,
            failed_tasks,
            failed_task_threshold,
            elapsed,
            ..
        } => Some(format!(
            "{}: {running}/{desired} running, {pending} pending, {failed_tasks}/{failed_task_threshold} failed tasks [{:.0} s simulated]",
            match rollout_state {
                Some(RolloutState::InProgress) => "deploying",
                Some(RolloutState::Completed) => "completed",
                Some(RolloutState::Failed) => "failed",
                None => "state unknown",
            },
            elapsed.as_secs_f64()
        )),
        _ => None,
    }
}

/// One line for an event, or `None` for the noisy ones (the counts of
/// `DeploymentProgress` are the spinner's message instead).
fn describe(event: &ProgressEvent) -> Option<String> {
    match event {
        ProgressEvent::DeploymentProgress { .. } => None,
        other => progress_text::describe(other, Arns::Revision),
    }
}

impl ProgressSink for LiveProgress {
    fn emit(&self, event: &ProgressEvent) {
        match self.mode {
            Mode::Off => return,
            Mode::Log => {
                let json = serde_json::to_string(event).unwrap_or_default();
                tracing::info!(target: "rollout", progress = %json, "rollout progress");
                return;
            }
            Mode::Spinner | Mode::Plain => {}
        }
        let mut state = self.state();
        if let ProgressEvent::CurrentState {
            task_definition_arn,
            ..
        } = event
        {
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
            state.label = family(task_definition_arn);
            state.last = None;
            if self.mode == Mode::Spinner {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
                bar.set_style(
                    ProgressStyle::with_template(&format!(
                        "{}{{spinner}} {{prefix}}: {{msg}}",
                        self.indent
                    ))
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
                );
                bar.set_prefix(state.label.clone());
                bar.enable_steady_tick(Duration::from_millis(80));
                state.bar = Some(bar);
            }
        }
        if let Some(text) = counts(event) {
            let ProgressEvent::DeploymentProgress {
                rollout_state,
                running,
                pending,
                failed_tasks,
                ..
            } = event
            else {
                return;
            };
            let now = (*rollout_state, *running, *pending, *failed_tasks);
            match (&state.bar, self.mode) {
                (Some(bar), Mode::Spinner) => bar.set_message(text),
                _ if state.last != Some(now) => self.line(&state, &text),
                _ => {}
            }
            state.last = Some(now);
            return;
        }
        let Some(text) = describe(event) else {
            return;
        };
        if let ProgressEvent::Finished { .. } = event {
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
            self.line(&state, &text);
            return;
        }
        match (&state.bar, self.mode) {
            (Some(bar), Mode::Spinner) => {
                bar.set_message(text.clone());
                self.line(&state, &text);
            }
            _ => self.line(&state, &text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_shorten() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/gitpod-runner:3";
        assert_eq!(family(arn), "gitpod-runner");
        let registered = ProgressEvent::TaskDefinitionRegistered { arn: arn.into() };
        assert_eq!(
            describe(&registered).as_deref(),
            Some("registered gitpod-runner:3")
        );
    }
}
