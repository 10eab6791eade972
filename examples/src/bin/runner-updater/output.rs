//! Printing: JSON documents, tables and cycle reports for a person.

use runner_updater::{CycleOutcome, CycleReport};
use serde::Serialize;
use update_policy::{Decision, SkipReason};

use crate::{cli::OutputFormat, exit::AppError};

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("runner-updater: could not encode the output as JSON: {e}"),
    }
}

/// Prints an error the way the output format wants it.
pub fn error(format: OutputFormat, error: &AppError) {
    match format {
        OutputFormat::Json => json(&serde_json::json!({
            "ok": false,
            "error": error.to_string(),
            "kind": error.kind(),
            "key": error.key(),
            "exit_code": error.exit().code(),
        })),
        OutputFormat::Text => eprintln!("runner-updater: {error}"),
    }
}

/// A table with aligned columns; the last column is not padded.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        let last = columns.saturating_sub(1);
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| "-".repeat(if i == last { (*w).min(40) } else { *w }))
            .collect();
        out.push_str(&line(&rule));
        for row in &self.rows {
            out.push('\n');
            out.push_str(&line(row));
        }
        out
    }
}

/// One short phrase for a skip reason.
pub fn reason_phrase(reason: &SkipReason) -> String {
    match reason {
        SkipReason::Quarantined {
            version,
            retry_after,
            attempts,
            ..
        } => format!(
            "{version} quarantined until {} (failed {attempts}×)",
            retry_after.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        SkipReason::HeldAfterManualRollback {
            running,
            highest_successful,
        } => format!(
            "held after manual rollback (running {running}, below {highest_successful} which ran \
             successfully)"
        ),
        other => other.to_string(),
    }
}

/// The detail column of a cycle: what happened, in a few words.
pub fn cycle_detail(report: &CycleReport) -> String {
    match &report.outcome {
        CycleOutcome::Skipped => match &report.decision {
            Some(Decision::Skip { reasons }) => format!(
                "skip: {}",
                reasons
                    .iter()
                    .map(reason_phrase)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => report.summary(),
        },
        CycleOutcome::Succeeded => {
            let names: Vec<&str> = report.targets.iter().map(|t| t.name.as_str()).collect();
            format!(
                "{} → {} on {}",
                report.current_version.as_deref().unwrap_or("?"),
                report.release_version.as_deref().unwrap_or("?"),
                names.join(", ")
            )
        }
        CycleOutcome::RolledBack { reason } | CycleOutcome::RollbackFailed { reason } => format!(
            "{reason}{}",
            if report.quarantined {
                "; quarantined"
            } else {
                ""
            }
        ),
        CycleOutcome::Blocked {
            required,
            running,
            template_url,
        } => format!("needs infrastructure {required} (running {running}): apply {template_url}"),
        CycleOutcome::LockBusy { holder } => format!("lock held by {holder}"),
        CycleOutcome::Superseded { reason } | CycleOutcome::Interrupted { reason } => {
            reason.clone()
        }
        _ => report.summary(),
    }
}

/// A cycle report for a person.
pub fn print_report(report: &CycleReport) {
    println!("{}", report.summary());
    println!(
        "  outcome:  {} (exit {})",
        report.outcome.code(),
        crate::exit::Exit::of_outcome(&report.outcome).code()
    );
    println!(
        "  versions: running {} · offered {}",
        report.current_version.as_deref().unwrap_or("?"),
        report.release_version.as_deref().unwrap_or("?")
    );
    if let Some(decision) = &report.decision {
        print_decision(decision, "  ");
    }
    if report.resumed {
        println!("  resumed an unfinished update from the journal");
    }
    for t in &report.targets {
        println!(
            "  target {} ({}/{}): {} — {}{}",
            t.name,
            t.cluster,
            t.service,
            t.outcome_kind,
            t.summary,
            match t.reverted {
                Some(true) => " (rolled back after a later target failed)",
                _ => "",
            }
        );
        for w in &t.warnings {
            println!("    warning: {w}");
        }
    }
    if let Some(token) = report.fencing_token {
        println!("  fencing token: {token}");
    }
    if !report.journalled.is_empty() {
        println!("  journal: {}", report.journalled.join(" → "));
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
}

/// A decision with every reason, one per line.
pub fn print_decision(decision: &Decision, indent: &str) {
    match decision {
        Decision::Update { from, to, image } => {
            println!("{indent}decision: update {from} → {to} (image {image})")
        }
        Decision::Skip { reasons } => {
            println!("{indent}decision: skip ({} reason(s))", reasons.len());
            for r in reasons {
                println!("{indent}  - [{}] {r}", r.code());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["step", "outcome", "detail"]);
        t.row(vec![
            "1".into(),
            "succeeded".into(),
            "long detail text".into(),
        ]);
        let text = t.render();
        assert_eq!(
            text,
            "step  outcome    detail\n----  ---------  ----------------\n1     succeeded  long detail text"
        );
    }
}
