//! The read-only checklists of `preflight` and `verify-sync`: one [`Check`] per line, printed
//! the same way, recorded in the document the same way (`<section>.ok`, `.at`, `.checks`), and
//! failing with exit 6 the same way.

use serde_json::{Value, json};

use crate::error::Error;
use crate::run::Ctx;

/// One line of a checklist: what was checked, what was found, and the fix when it failed.
#[derive(Debug, Clone)]
pub struct Check {
    /// A stable id for scripts (`app`, `consent`, …).
    pub id: String,
    /// The name people read.
    pub name: String,
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to run or do when the check failed.
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(id: &str, name: &str, detail: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(id: &str, name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `{id, name, ok, detail[, fix]}` as the document records it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"id": self.id, "name": self.name, "ok": self.ok, "detail": self.detail});
        if let Some(f) = &self.fix {
            v["fix"] = json!(f);
        }
        v
    }
}

/// Prints one line per check (and its fix) on stderr, records `<section>.ok`, `<section>.at` and
/// `<section>.checks` in the document, and returns the exit-6 error naming the failed checks when
/// any failed (the caller adds its hint and anything else it owes before returning it).
pub fn record(ctx: &mut Ctx, section: &str, checks: &[Check]) -> Option<Error> {
    for c in checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        ctx.say(&format!("[{mark}] {}: {}", c.name, c.detail));
        if let Some(f) = &c.fix {
            ctx.say(&format!("       fix: {f}"));
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    ctx.doc.set(&format!("{section}.ok"), failed.is_empty());
    ctx.doc
        .set(&format!("{section}.at"), crate::run::now_rfc3339());
    ctx.doc.set(
        &format!("{section}.checks"),
        Value::Array(checks.iter().map(Check::to_json).collect()),
    );
    (!failed.is_empty()).then(|| {
        Error::verify_failed(format!(
            "{} of {} checks failed: {}",
            failed.len(),
            checks.len(),
            failed.join("; ")
        ))
    })
}
