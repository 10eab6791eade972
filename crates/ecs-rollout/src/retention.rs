//! Retention of task-definition revisions: keep the newest N, never a
//! rollback target.

use crate::{EcsApi, PageToken, Result, api::parse_task_definition_arn};

/// Every ACTIVE revision ARN of `family`, oldest first, across all pages.
pub async fn list_all_revisions(ecs: &dyn EcsApi, family: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut token: PageToken = None;
    loop {
        let page = ecs.list_task_definition_revisions(family, token).await?;
        arns.extend(page.items);
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    arns.sort_by_key(|arn| parse_task_definition_arn(arn).map_or(0, |(_, rev)| rev));
    Ok(arns)
}

/// The ACTIVE revisions of `family` that retention would deregister: all
/// but the newest `keep`, minus every ARN in `protected` (the running
/// revision, the rollback target, revisions any deployment still uses).
/// Pure; see [`prune_revisions`] for the effect.
pub fn revisions_to_deregister(
    active_oldest_first: &[String],
    keep: usize,
    protected: &[String],
) -> Vec<String> {
    let cut = active_oldest_first.len().saturating_sub(keep);
    active_oldest_first[..cut]
        .iter()
        .filter(|arn| !protected.iter().any(|p| same_revision(p, arn)))
        .cloned()
        .collect()
}

fn same_revision(a: &str, b: &str) -> bool {
    match (parse_task_definition_arn(a), parse_task_definition_arn(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Deregisters ACTIVE revisions of `family` beyond the newest `keep`,
/// never one in `protected`. Returns the deregistered ARNs; stops at the
/// first error (what was deregistered before it stays deregistered).
pub async fn prune_revisions(
    ecs: &dyn EcsApi,
    family: &str,
    keep: usize,
    protected: &[String],
) -> Result<Vec<String>> {
    let active = list_all_revisions(ecs, family).await?;
    let doomed = revisions_to_deregister(&active, keep.max(1), protected);
    let mut done = Vec::with_capacity(doomed.len());
    for arn in doomed {
        ecs.deregister_task_definition(&arn).await?;
        done.push(arn);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(revs: &[i32]) -> Vec<String> {
        revs.iter()
            .map(|r| format!("arn:aws:ecs:us-east-1:1:task-definition/runner:{r}"))
            .collect()
    }

    #[test]
    fn keeps_newest_and_protected() {
        type Case<'a> = (Vec<i32>, usize, Vec<&'a str>, Vec<i32>);
        let cases: Vec<Case> = vec![
            (vec![1, 2, 3, 4, 5], 2, vec![], vec![1, 2, 3]),
            (vec![1, 2, 3, 4, 5], 2, vec!["runner:2"], vec![1, 3]),
            (vec![1, 2, 3], 5, vec![], vec![]),
            (
                vec![1, 2, 3, 4],
                3,
                vec!["arn:aws:ecs:us-east-1:1:task-definition/runner:1"],
                vec![],
            ),
        ];
        for (active, keep, protected, expected) in cases {
            let protected: Vec<String> = protected.into_iter().map(String::from).collect();
            assert_eq!(
                revisions_to_deregister(&arns(&active), keep, &protected),
                arns(&expected)
            );
        }
    }

    #[test]
    fn a_name_that_is_no_task_definition_arn_protects_only_itself() {
        // Compared as strings, exactly: it protects its equal, nothing else.
        let active = vec![
            "not-an-arn".to_owned(),
            "also-not-an-arn".to_owned(),
            arns(&[3])[0].clone(),
        ];
        assert_eq!(
            revisions_to_deregister(&active, 0, &["not-an-arn".to_owned()]),
            active[1..].to_vec()
        );
    }
}
