//! The per-run tag of the Graph creates that have no idempotency key.
//!
//! `addPassword` and `POST /policies/homeRealmDiscoveryPolicies` make a new object each time, and
//! core retries a POST whose answer was lost, so one request can leave two objects (graph.md
//! §4.1, §5.2). A step puts a fresh tag at the end of what it creates (the credential's display
//! name, the policy's description) and afterwards reads back what carries its tag, keeps the one
//! it knows and removes the others.

use std::fmt;

/// `[run 3fa9c2d1]`: eight hex digits, fresh for every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTag(String);

impl RunTag {
    pub fn fresh() -> RunTag {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        RunTag(format!("[run {}]", &nonce[..8]))
    }

    /// Whether `text` (a display name or description) was written by this run.
    pub fn marks(&self, text: &str) -> bool {
        text.ends_with(&self.0)
    }
}

impl fmt::Display for RunTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_marks_only_what_ends_with_it() {
        let t = RunTag::fresh();
        let s = t.to_string();
        assert!(
            s.starts_with("[run ") && s.ends_with(']') && s.len() == 14,
            "{s}"
        );
        assert!(t.marks(&format!("marketo-s2s make-secret 2026-11-26 {t}")));
        assert!(!t.marks(&format!("{t} and more")));
        assert!(!t.marks(&format!("x {}", RunTag::fresh())));
    }
}
