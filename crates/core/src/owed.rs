//! Is a "Publish All Customizations" owed? One answer for `publish-customizations --if-changed`
//! (which publishes only then) and `verify-sync` (which fails its "published" check until then).
//!
//! Publishing interrupts the org's users, so it is owed only after a step changed the Dynamics
//! org, never for Entra-only changes (a new secret, a renamed app, an HRD policy). Core records
//! `steps.<tool>.dataverse_changed` for every run; documents written before that field existed
//! fall back to the list of steps that write to the org.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Result;
use crate::keys;
use crate::state::StateDoc;
use crate::tools::{TOOLS, Writes, tool};

/// The publishing step itself.
pub const PUBLISH_STEP: &str = "publish-customizations";

/// Steps whose changes never call for the publish: the setup steps after it in the runbook
/// (add-sync-filter publishes exactly its own entities with `PublishXml`, verify-sync only
/// reads). Counting them would make a re-run of a `--state` runbook publish again, because their
/// `changed: true` from the previous run is still in the document when the publish runs.
fn after_publish(name: &str) -> bool {
    TOOLS
        .iter()
        .skip_while(|t| t.name != PUBLISH_STEP)
        .skip(1)
        .any(|t| t.setup_step() && t.name == name)
}

/// A step that changes the Dynamics org (and nothing else), for documents without
/// `dataverse_changed`: those come from before teardown existed, so its writes (to both
/// services) need no fallback.
fn writes_dataverse(name: &str) -> bool {
    tool(name).is_some_and(|t| t.writes == Writes::Dataverse)
}

/// Did this `steps.<tool>` entry change the Dynamics org (or, in a dry run, plan to)? An entry
/// whose run wrote nothing but carries an earlier run's unpublished change (core keeps
/// `dataverse_changed: true` with `dataverse_changed_at` then) counts too: a re-run that found
/// "nothing to change" must not make an owed publish look paid.
pub fn changed_dataverse(name: &str, step: &Value, dry_run: bool) -> bool {
    if name == PUBLISH_STEP || after_publish(name) {
        return false;
    }
    let flag = |k: &str| step.get(k).and_then(Value::as_bool);
    // A dry run records what it would have written: in a dry-run pipeline, planned changes
    // count too, so the plan shows the publish a real run would send. A real run never counts
    // a dry run's entry (nothing was sent).
    if flag("dry_run") == Some(true) {
        let planned = step
            .get("planned_writes")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0;
        let dataverse = flag("dataverse_changed").unwrap_or_else(|| writes_dataverse(name));
        return dry_run && dataverse && (planned || step.get("dataverse_changed_at").is_some());
    }
    match flag("dataverse_changed") {
        Some(changed) => changed,
        // Documents from before core recorded it.
        None => writes_dataverse(name) && flag("changed") == Some(true),
    }
}

/// When this entry's Dataverse change happened: `dataverse_changed_at` (a carried change), else
/// the run's `at`.
fn changed_at(step: &Value) -> Option<OffsetDateTime> {
    step.get("dataverse_changed_at")
        .or_else(|| step.get("at"))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

/// The steps that changed Dataverse *since the last publish* (`steps.<tool>` whose change is later
/// than `publish.last_published_at`). Without the time test, a step's old `changed: true` — left
/// in a `--state` file by a step that is not re-run — would publish again on a finished setup.
pub fn changes_since_publish(doc: &StateDoc, dry_run: bool) -> Result<Vec<String>> {
    let Some(steps) = doc.get(keys::STEPS)? else {
        return Ok(Vec::new());
    };
    let last = doc
        .get(keys::PUBLISH_LAST_PUBLISHED_AT)?
        .and_then(parse_time);
    Ok(steps
        .iter()
        .filter(|(name, v)| after(last, v) && changed_dataverse(name, v, dry_run))
        .map(|(name, _)| name.clone())
        .collect())
}

/// Is the entry's change later than the last publish? No publish recorded yet, or a step
/// without a time: yes.
fn after(last: Option<OffsetDateTime>, step: &Value) -> bool {
    match (last, changed_at(step)) {
        (Some(last), Some(at)) => at > last,
        _ => true,
    }
}

/// The time of `tool`'s Dataverse change that no publish has covered yet, if its entry in `doc`
/// records one: what a run of `tool` that writes nothing to the org carries forward.
pub fn unpaid_change(doc: &StateDoc, tool: &str, dry_run: bool) -> Option<String> {
    let step = doc.get_value(keys::STEPS.path())?.get(tool)?;
    let last = doc
        .get_value(keys::PUBLISH_LAST_PUBLISHED_AT.path())
        .and_then(Value::as_str)
        .and_then(parse_time);
    if !(changed_dataverse(tool, step, dry_run) && after(last, step)) {
        return None;
    }
    step.get("dataverse_changed_at")
        .or_else(|| step.get("at"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| Some(crate::state::now_rfc3339()))
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_after_the_publish_and_those_that_change_the_org() {
        let names =
            |f: fn(&str) -> bool| crate::tools::names().filter(|n| f(n)).collect::<Vec<_>>();
        assert_eq!(names(after_publish), ["add-sync-filter", "verify-sync"]);
        assert_eq!(
            names(writes_dataverse),
            [
                "assign-role",
                "configure-marketo",
                "publish-customizations",
                "add-sync-filter"
            ]
        );
    }

    #[test]
    fn only_dataverse_changes_after_the_last_publish_count() {
        let doc = StateDoc::parse(
            r#"{"steps":{
                "make-secret":{"changed":true,"dataverse_changed":false,"at":"2026-12-02T10:00:00Z"},
                "register-app":{"changed":true,"at":"2026-12-02T10:00:00Z"},
                "assign-role":{"changed":true,"at":"2026-12-02T09:00:00Z"},
                "configure-marketo":{"changed":true,"dataverse_changed":true,"at":"2026-12-02T11:00:00Z"},
                "add-sync-filter":{"changed":true,"dataverse_changed":true}},
              "publish":{"last_published_at":"2026-12-02T10:30:00Z"}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            changes_since_publish(&doc, false).unwrap(),
            vec!["configure-marketo"]
        );
    }

    #[test]
    fn a_carried_change_stays_owed_until_a_later_publish() {
        let carried = r#"{"changed":false,"dataverse_changed":true,
            "dataverse_changed_at":"2026-12-02T10:00:00Z","at":"2026-12-02T12:00:00Z"}"#;
        let doc = |published: &str| {
            StateDoc::parse(
                &format!(
                    r#"{{"steps":{{"assign-role":{carried}}},
                        "publish":{{"status":"pending","last_published_at":"{published}"}}}}"#
                ),
                "t",
            )
            .unwrap()
        };
        let before = doc("2026-12-02T09:00:00Z");
        assert_eq!(
            changes_since_publish(&before, false).unwrap(),
            ["assign-role"]
        );
        assert_eq!(
            unpaid_change(&before, "assign-role", false).as_deref(),
            Some("2026-12-02T10:00:00Z")
        );
        // A publish after the change (not after the carrying run's `at`) pays it.
        let paid = doc("2026-12-02T11:00:00Z");
        assert!(changes_since_publish(&paid, false).unwrap().is_empty());
        assert_eq!(unpaid_change(&paid, "assign-role", false), None);
        // A dry run's entry never counts for a real run.
        let dry = StateDoc::parse(
            r#"{"steps":{"assign-role":{"changed":false,"dataverse_changed":true,"dry_run":true,"planned_writes":2}}}"#,
            "t",
        )
        .unwrap();
        assert!(changes_since_publish(&dry, false).unwrap().is_empty());
        assert_eq!(changes_since_publish(&dry, true).unwrap(), ["assign-role"]);
    }
}
