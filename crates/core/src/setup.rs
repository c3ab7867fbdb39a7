//! The setup's identity, and the marks that prove on the live tenant what is this setup's own.
//!
//! A state document is only a pointer: it may be stale (a teardown re-run after a newer setup
//! reused the name), shared by copy (prod and sandbox folders in one tenant), or wrong (a client
//! id typed by hand). So a tool that removes, revokes, disables or replaces something acts only
//! when the *live object* carries this setup's mark. register-app mints the setup id
//! (`setup.id`, a random GUID) once per connection; every object the setup creates carries it
//! where the service lets an object carry text:
//!
//! | object | where the mark goes | form |
//! |---|---|---|
//! | application, service principal | `tags` | [`SetupId::tag`]: `marketo-s2s:setup:<guid>` (one tag per setup that uses the object) |
//! | HRD policy, sync-filter column | description | [`SetupId::description_mark`]: `[marketo-s2s setup <guid>]` |
//! | client secret | display name | [`SetupId::name_mark`]: `[setup <first 8 hex digits>]`, before the run tag |
//!
//! The secret's mark is short (the portal's description has little room) and another setup's
//! tags show those 8 hex digits, so it counts only on an app whose tags carry this setup's full
//! [`SetupId::tag`] (or an untagged app the document records as adopted).
//!
//! What cannot carry text (a grant, the Dataverse application user, a role association) counts
//! as the setup's only when the document records that the setup *created* it **and** it belongs
//! to an object that carries the mark. See docs/architecture.md, "Ownership".

use crate::error::{Error, Result};
use crate::state::StateDoc;

use crate::keys::SETUP_ID;

const TAG_PREFIX: &str = "marketo-s2s:setup:";
const DESCRIPTION_PREFIX: &str = "[marketo-s2s setup ";
const NAME_PREFIX: &str = "[setup ";

/// One connection's identity: a lower-case GUID, minted by register-app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetupId(String);

impl SetupId {
    /// A fresh, random setup id.
    pub fn mint() -> SetupId {
        SetupId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// A setup id from text (a GUID; braces and upper case accepted).
    pub fn parse(s: &str) -> Option<SetupId> {
        crate::guid::parse(s).ok().map(SetupId)
    }

    /// The document's `setup.id`, if any; a value that is not a GUID is bad input (exit 2).
    pub fn of_doc(doc: &StateDoc) -> Result<Option<SetupId>> {
        match doc.get_str(SETUP_ID.path())? {
            None => Ok(None),
            Some(s) => SetupId::parse(s).map(Some).ok_or_else(|| {
                Error::usage(format!(
                    "state document key {SETUP_ID} must be a GUID (register-app writes it)"
                ))
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first eight hex digits, for names with little room (a secret's description).
    pub fn short(&self) -> &str {
        &self.0[..8]
    }

    /// The tag on the application and service principal: `marketo-s2s:setup:<guid>`.
    pub fn tag(&self) -> String {
        format!("{TAG_PREFIX}{}", self.0)
    }

    /// The mark in a description (HRD policy, sync-filter column): `[marketo-s2s setup <guid>]`.
    pub fn description_mark(&self) -> String {
        format!("{DESCRIPTION_PREFIX}{}]", self.0)
    }

    /// The mark in a client secret's display name: `[setup 1a2b3c4d]`.
    pub fn name_mark(&self) -> String {
        format!("{NAME_PREFIX}{}]", self.short())
    }

    /// Whether an object's `tags` carry this setup's mark.
    pub fn marks_tags<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        let mine = self.tag();
        tags.iter().any(|t| t.as_ref().eq_ignore_ascii_case(&mine))
    }

    /// Whether a description carries this setup's mark.
    pub fn marks_description(&self, text: &str) -> bool {
        setups_in_description(text).contains(self)
    }

    /// Whether a secret's display name carries this setup's mark.
    pub fn marks_name(&self, name: &str) -> bool {
        name.to_ascii_lowercase().contains(&self.name_mark())
    }
}

impl std::fmt::Display for SetupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every setup whose tag an object carries (more than one when setups share the object).
pub fn setups_in_tags<S: AsRef<str>>(tags: &[S]) -> Vec<SetupId> {
    tags.iter()
        .filter_map(|t| {
            let t = t.as_ref();
            let rest = t.get(..TAG_PREFIX.len())?;
            if rest.eq_ignore_ascii_case(TAG_PREFIX) {
                SetupId::parse(&t[TAG_PREFIX.len()..])
            } else {
                None
            }
        })
        .collect()
}

/// Every setup whose mark a description carries.
pub fn setups_in_description(text: &str) -> Vec<SetupId> {
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find(DESCRIPTION_PREFIX) {
        let after = &rest[i + DESCRIPTION_PREFIX.len()..];
        if let Some(end) = after.find(']') {
            if let Some(id) = SetupId::parse(&after[..end]) {
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        rest = after;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_tell_setups_apart() {
        let a = SetupId::mint();
        let b = SetupId::mint();
        assert_ne!(a, b);
        let tags = vec![
            "WindowsAzureActiveDirectoryIntegratedApp".to_string(),
            a.tag(),
        ];
        assert!(a.marks_tags(&tags));
        assert!(!b.marks_tags(&tags));
        assert_eq!(setups_in_tags(&tags), vec![a.clone()]);

        let d = format!("Marketo S2S {} [run 1234abcd]", a.description_mark());
        assert!(a.marks_description(&d));
        assert!(!b.marks_description(&d));
        assert_eq!(setups_in_description(&d), vec![a.clone()]);

        let n = format!(
            "marketo-s2s make-secret 2026-12-03 {} [run 1234abcd]",
            a.name_mark()
        );
        assert!(a.marks_name(&n));
        assert_eq!(a.name_mark().len(), "[setup 12345678]".len());
    }

    #[test]
    fn upper_case_and_braces_are_the_same_setup() {
        let a = SetupId::mint();
        let upper = a.as_str().to_ascii_uppercase();
        assert_eq!(SetupId::parse(&format!("{{{upper}}}")), Some(a.clone()));
        assert!(a.marks_tags(&[a.tag().to_ascii_uppercase()]));
        assert!(SetupId::parse("not-a-guid").is_none());
        assert!(setups_in_tags(&["marketo-s2s:setup:nope"]).is_empty());
    }
}
