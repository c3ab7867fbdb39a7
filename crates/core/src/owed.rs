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
use crate::state::StateDoc;

/// The publishing step itself.
pub const PUBLISH_STEP: &str = "publish-customizations";

/// Steps whose changes never call for the publish: they come after it in the runbook, and
/// `add-sync-filter` publishes exactly its own entities (`PublishXml`) while `verify-sync` only
/// reads. Counting them would make a re-run of a `--state` runbook publish again, because their
/// `changed: true` from the previous run is still in the document when the publish runs.
const NOT_BEFORE_PUBLISH: &[&str] = &["add-sync-filter", "verify-sync"];

/// The steps that change the Dynamics org, for documents without `dataverse_changed`.
const DATAVERSE_STEPS: &[&str] = &["assign-role", "configure-marketo"];

/// Did this `steps.<tool>` entry change the Dynamics org (or, in a dry run, plan to)?
pub fn changed_dataverse(name: &str, step: &Value, dry_run: bool) -> bool {
    if name == PUBLISH_STEP || NOT_BEFORE_PUBLISH.contains(&name) {
        return false;
    }
    let flag = |k: &str| step.get(k).and_then(Value::as_bool);
    let dataverse = flag("dataverse_changed").unwrap_or(DATAVERSE_STEPS.contains(&name));
    // A dry run records what it would have written: in a dry-run pipeline, planned changes
    // count too, so the plan shows the publish a real run would send.
    let planned = dry_run
        && flag("dry_run") == Some(true)
        && step
            .get("planned_writes")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0;
    dataverse && (flag("changed") == Some(true) || planned)
}

/// The steps that changed Dataverse *since the last publish* (`steps.<tool>` whose `at` is later
/// than `publish.last_published_at`). Without the time test, a step's old `changed: true` — left
/// in a `--state` file by a step that is not re-run — would publish again on a finished setup.
pub fn changes_since_publish(doc: &StateDoc, dry_run: bool) -> Result<Vec<String>> {
    let Some(steps) = doc.get_object("steps")? else {
        return Ok(Vec::new());
    };
    let last = doc
        .get_str("publish.last_published_at")?
        .and_then(parse_time);
    Ok(steps
        .iter()
        .filter(|(name, v)| {
            let after_last = match (
                last,
                v.get("at").and_then(Value::as_str).and_then(parse_time),
            ) {
                (Some(last), Some(at)) => at > last,
                // No publish recorded yet, or a step without a time: count it.
                _ => true,
            };
            after_last && changed_dataverse(name, v, dry_run)
        })
        .map(|(name, _)| name.clone())
        .collect())
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
