//! Stage 4, the plan: what this run does about the secret — keep the recorded credential, adopt
//! the one whose secret is already in the file, or add a new one (and which live credential it
//! takes over from) — and which credentials an interrupted run left behind. Decided from the
//! app's live credentials, the document's record and what the file holds; nothing here sends
//! anything.

use secrecy::ExposeSecret;
use time::OffsetDateTime;

use s2s_core::Result;
use s2s_graph::{Application, PasswordCredential};

use crate::discovery::{adoptable_name, carries_tag, hint_starts};
use crate::input::{Input, Record};
use crate::secret_file::Saved;

/// What to do about the secret on this run.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Keep this credential.
    Keep(PasswordCredential, Kept),
    /// Add a new credential, for this reason; `replaces` is the live credential it takes over
    /// from (Marketo may still use it: it becomes `secret.previous_key_id`).
    Add {
        why: String,
        replaces: Option<PasswordCredential>,
    },
}

/// Why a credential is kept.
#[derive(Debug)]
pub(crate) enum Kept {
    /// Its secret is in the file.
    Saved,
    /// Valid, but its file is gone (deleted after pasting it into Marketo): kept, with a warning.
    FileMissing,
    /// Kept outside a file on purpose (`secret.storage: external`).
    External,
    /// The file holds its secret although the document does not record it: an earlier pipeline
    /// run's file, or the file an interrupted run saved before it could record it. `replaced`
    /// is the credential the document recorded, when it is still on the app and another one.
    Adopted {
        replaced: Option<PasswordCredential>,
        interrupted: bool,
    },
}

/// The judgement of one run: the plan, and the credentials an interrupted run left behind whose
/// secret nobody has (removed first, if they carry this setup's mark).
#[derive(Debug)]
pub(crate) struct Judged {
    pub plan: Plan,
    pub orphans: Vec<PasswordCredential>,
}

/// Decides from the app's live credentials, the document's record and what the file holds.
pub(crate) fn judge(
    app: &Application,
    input: &Input,
    saved: &Saved,
    file_shown: &str,
    use_file: bool,
    renew_before: OffsetDateTime,
) -> Result<Judged> {
    let rec = &input.record;
    let setup = input.setup.as_ref();
    let live = rec
        .key_id
        .as_deref()
        .and_then(|k| app.password_credential(k));
    let valid = |c: &PasswordCredential| c.expires_at().is_some_and(|end| end > renew_before);
    let gone = || match &rec.key_id {
        Some(k) => format!("the recorded secret {k} is no longer on the app"),
        None => "no secret recorded in the document".to_string(),
    };
    let expiring = |c: &PasswordCredential| match c.expires_at() {
        Some(_) => format!(
            "the recorded secret {} expires on {}, within --min-validity",
            c.key_id,
            c.end_date_time.as_deref().unwrap_or("?")
        ),
        None => format!("the recorded secret {} has no readable end date", c.key_id),
    };
    let keep_or_renew = |c: &PasswordCredential, kept: Kept| {
        if valid(c) {
            Plan::Keep(c.clone(), kept)
        } else {
            Plan::Add {
                why: expiring(c),
                replaces: Some(c.clone()),
            }
        }
    };
    let mut adopted_key = None;
    let plan = if !use_file {
        // Kept outside a file: only the live credential counts.
        match live {
            Some(c) => keep_or_renew(c, Kept::External),
            None => Plan::Add {
                why: gone(),
                replaces: None,
            },
        }
    } else {
        match saved {
            Saved::Absent => match live {
                Some(c) if valid(c) => Plan::Keep(c.clone(), Kept::FileMissing),
                Some(c) => Plan::Add {
                    why: format!("{}, and its file {file_shown} is missing", expiring(c)),
                    replaces: Some(c.clone()),
                },
                None => Plan::Add {
                    why: gone(),
                    replaces: None,
                },
            },
            Saved::Recorded(value) => match live {
                Some(c) if hint_starts(c, value.expose_secret()) => keep_or_renew(c, Kept::Saved),
                // The document's key id and its fingerprint disagree: the file holds the
                // recorded secret, but not the recorded credential's. It is the document's own
                // file, so a new secret may replace it.
                Some(c) => Plan::Add {
                    why: format!(
                        "{file_shown} does not hold the secret of credential {} (its hint is {})",
                        c.key_id,
                        c.hint.as_deref().unwrap_or("?")
                    ),
                    replaces: Some(c.clone()),
                },
                None => Plan::Add {
                    why: gone(),
                    replaces: None,
                },
            },
            Saved::RecordedHint(value) => match live {
                Some(c) if hint_starts(c, value.expose_secret()) => keep_or_renew(c, Kept::Saved),
                Some(c) => {
                    return Err(crate::secret_file::not_ours(
                        input.file.as_deref().unwrap_or(std::path::Path::new("")),
                        "the secret file",
                        &format!(
                            "it does not hold the secret of the recorded credential {} (hint {})",
                            c.key_id,
                            c.hint.as_deref().unwrap_or("?")
                        ),
                    ));
                }
                // The recorded credential is gone: the file holds a dead secret of this app.
                None => Plan::Add {
                    why: gone(),
                    replaces: None,
                },
            },
            Saved::Damaged(why) => Plan::Add {
                why: format!("{file_shown} {why}: a new secret replaces it"),
                replaces: live.cloned(),
            },
            Saved::Unrecorded(value) => {
                let v = value.expose_secret();
                let pending_tag = rec.pending.as_ref().map(|p| p.tag.as_str());
                let behind = app
                    .password_credentials
                    .iter()
                    .filter(|c| adoptable_name(setup, c))
                    .filter(|c| hint_starts(c, v))
                    .filter(|c| rec.key_id.as_deref() != Some(c.key_id.as_str()))
                    // The interrupted run's own credential first, then the newest.
                    .max_by_key(|c| {
                        (
                            pending_tag.is_some_and(|t| carries_tag(c, t)),
                            c.start_date_time.clone(),
                        )
                    });
                match behind {
                    Some(c) if valid(c) => {
                        adopted_key = Some(c.key_id.clone());
                        Plan::Keep(
                            c.clone(),
                            Kept::Adopted {
                                replaced: live.cloned(),
                                // The journaled run's own credential: that run is finished now.
                                interrupted: pending_tag.is_some_and(|t| carries_tag(c, t)),
                            },
                        )
                    }
                    // A secret of this app, but it is due: replaced like a recorded one.
                    Some(c) => Plan::Add {
                        why: format!(
                            "the secret in {file_shown} (credential {}) expires on {}, within --min-validity",
                            c.key_id,
                            c.end_date_time.as_deref().unwrap_or("?")
                        ),
                        replaces: Some(c.clone()),
                    },
                    None => {
                        return Err(crate::secret_file::not_ours(
                            input.file.as_deref().unwrap_or(std::path::Path::new("")),
                            "the secret file",
                            "it holds a secret that is not one of this app's credentials made by make-secret",
                        ));
                    }
                }
            }
        }
    };
    let orphans = orphans_of(app, rec, adopted_key.as_deref());
    Ok(Judged { plan, orphans })
}

/// The credentials an interrupted run made (they carry its run tag) whose secret was never
/// saved: every one but the one adopted from the file.
fn orphans_of(app: &Application, rec: &Record, adopted: Option<&str>) -> Vec<PasswordCredential> {
    let Some(p) = &rec.pending else {
        return Vec::new();
    };
    app.password_credentials
        .iter()
        .filter(|c| carries_tag(c, &p.tag))
        .filter(|c| adopted != Some(c.key_id.as_str()))
        .filter(|c| rec.key_id.as_deref() != Some(c.key_id.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2s_core::setup::SetupId;
    use secrecy::SecretString;

    fn app_with(creds: Vec<PasswordCredential>) -> Application {
        Application {
            id: "o".into(),
            app_id: "a".into(),
            password_credentials: creds,
            ..Default::default()
        }
    }

    fn cred(key: &str, hint: &str, end: &str, name: &str) -> PasswordCredential {
        PasswordCredential {
            key_id: key.into(),
            hint: Some(hint.into()),
            end_date_time: Some(end.into()),
            display_name: Some(name.into()),
            ..Default::default()
        }
    }

    fn input(key: Option<&str>, setup: Option<SetupId>) -> Input {
        Input {
            target: s2s_graph::AppRef::ObjectId("o".into()),
            setup,
            adopted: false,
            record: Record {
                key_id: key.map(str::to_string),
                ..Default::default()
            },
            file: None,
            lifetime: crate::lifetime::DEFAULT_LIFETIME,
        }
    }

    fn secret(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    #[test]
    fn a_recorded_secret_is_kept_only_when_present_saved_and_long_lived() {
        let renew = time::macros::datetime!(2026-12-26 00:00 UTC);
        let app = app_with(vec![
            cred("k1", "abc", "2028-11-26T00:00:00Z", "x [run 12345678]"),
            cred("k2", "abc", "2026-12-01T00:00:00Z", "y [run 12345678]"),
        ]);
        let saved = Saved::Recorded(secret("abcdefghijklmnopqrstu"));
        let j = judge(&app, &input(Some("k1"), None), &saved, "f", true, renew).unwrap();
        assert!(matches!(j.plan, Plan::Keep(c, Kept::Saved) if c.key_id == "k1"));
        let j = judge(&app, &input(Some("k2"), None), &saved, "f", true, renew).unwrap();
        assert!(
            matches!(j.plan, Plan::Add { why, replaces: Some(c) } if why.contains("min-validity") && c.key_id == "k2")
        );
        let j = judge(&app, &input(Some("gone"), None), &saved, "f", true, renew).unwrap();
        assert!(matches!(j.plan, Plan::Add { why, replaces: None } if why.contains("no longer")));
        let j = judge(
            &app,
            &input(Some("k1"), None),
            &Saved::Absent,
            "f",
            true,
            renew,
        )
        .unwrap();
        assert!(matches!(j.plan, Plan::Keep(_, Kept::FileMissing)));
        let j = judge(
            &app,
            &input(Some("k1"), None),
            &Saved::Absent,
            "f",
            false,
            renew,
        )
        .unwrap();
        assert!(matches!(j.plan, Plan::Keep(_, Kept::External)));
    }

    #[test]
    fn an_unrecorded_file_is_adopted_only_from_this_setups_or_unmarked_credentials() {
        let renew = time::macros::datetime!(2026-12-26 00:00 UTC);
        let me = SetupId::mint();
        let other = SetupId::mint();
        let saved = Saved::Unrecorded(secret("xyzdefghijklmnopqrstu"));
        let theirs = cred(
            "k9",
            "xyz",
            "2028-11-26T00:00:00Z",
            &format!("n {} [run 12345678]", other.name_mark()),
        );
        let app = app_with(vec![theirs.clone()]);
        assert!(
            judge(
                &app,
                &input(None, Some(me.clone())),
                &saved,
                "f",
                true,
                renew
            )
            .is_err()
        );
        let mine = cred(
            "k1",
            "xyz",
            "2028-11-26T00:00:00Z",
            &format!("n {} [run 12345678]", me.name_mark()),
        );
        let app = app_with(vec![theirs, mine]);
        let j = judge(
            &app,
            &input(None, Some(me.clone())),
            &saved,
            "f",
            true,
            renew,
        )
        .unwrap();
        assert!(matches!(j.plan, Plan::Keep(c, Kept::Adopted { .. }) if c.key_id == "k1"));
        let legacy = cred("k2", "xyz", "2028-11-26T00:00:00Z", "old [run 12345678]");
        let app = app_with(vec![legacy]);
        let j = judge(&app, &input(None, Some(me)), &saved, "f", true, renew).unwrap();
        assert!(matches!(j.plan, Plan::Keep(c, Kept::Adopted { .. }) if c.key_id == "k2"));
    }
}
