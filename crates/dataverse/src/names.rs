//! Checks of the Dataverse names and free-text values the Dynamics tools take as flags, shared so
//! that every tool accepts and refuses the same things with the same words. Each runs before any
//! request (clap value parsers, or `Tool::validate`), so a bad value exits 2 having sent nothing.

use s2s_core::keys;
use s2s_core::{Error, Result};

/// A schema name, logical name or navigation property (`mkto_marketoconfig`, `mkto_MarketoUser`):
/// letters, digits and underscores, not starting with a digit. Anything else cannot be a
/// Dataverse name and must not reach a URL path. Case is kept: navigation properties are
/// case-sensitive in `@odata.bind`.
pub fn schema_name(s: &str) -> std::result::Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a Dataverse name (letters, digits and underscores, not starting with a digit)"
        ))
    }
}

/// An application user's username as Marketo's step 3 takes it: its primary e-mail
/// (`internalemailaddress`, reference §1.1), e.g. `<client id>@contoso.onmicrosoft.com`.
/// The value comes from the service or from the state document, and verify-sync prints it in
/// the step-3 block, so its shape is checked: 3 to 254 characters (RFC 5321's path limit),
/// exactly one `@` with a 1–64 character local part and a domain of dot-separated labels, no
/// white space, no control or bidirectional-override character. `what` names the key or source
/// in the error (exit 2 for a document value; the caller reclassifies a service answer).
pub fn username(s: &str, what: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::usage(format!(
            "{what} {} is not an e-mail address ({why})",
            s2s_core::output::sanitize(s)
        ))
        .with_hint("run assign-role again to read the application user's e-mail from the org")
    };
    let n = s.chars().count();
    if !(3..=254).contains(&n) {
        return Err(bad("3 to 254 characters"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || s2s_core::output::needs_escape(c))
    {
        return Err(bad("white space or control characters"));
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Err(bad("no @"));
    };
    if domain.contains('@') {
        return Err(bad("more than one @"));
    }
    if local.is_empty() || local.chars().count() > 64 {
        return Err(bad("the part before @ must be 1 to 64 characters"));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(bad("the domain must be dot-separated names"));
    }
    Ok(())
}

/// `dynamics.username` from the state document, checked as [`username`]: exit 2 naming the key
/// when it is not an e-mail address (verify-sync prints it in the step-3 block).
pub fn username_from_doc(doc: &s2s_core::StateDoc) -> Result<Option<String>> {
    match doc.get(keys::DYNAMICS_USERNAME)? {
        Some(u) => {
            username(
                u,
                &format!("state document key {}", keys::DYNAMICS_USERNAME),
            )?;
            Ok(Some(u.to_string()))
        }
        None => Ok(None),
    }
}

/// An entity logical name (`lead`): lower-case letters, digits and underscores, starting with a
/// letter. Upper case is folded because logical names are always lower case.
pub fn entity_logical_name(s: &str) -> std::result::Result<String, String> {
    let n = s.trim().to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && n.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(n)
    } else {
        Err(format!(
            "{s:?} is not an entity logical name (letters, digits and underscores, e.g. lead)"
        ))
    }
}

/// Exit 2 when a flag's value is empty or only white space (`--role " "`).
pub fn not_blank(flag: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::usage(format!("{flag} must not be empty")));
    }
    Ok(())
}

/// The values of a repeatable flag, trimmed, each once, in the order given.
pub fn unique(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim().to_string();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(schema_name("mkto_marketoconfig").is_ok());
        assert_eq!(schema_name("mkto_MarketoUser").unwrap(), "mkto_MarketoUser");
        assert!(schema_name("a/b").is_err());
        assert!(schema_name("a'b").is_err());
        assert!(schema_name("1abc").is_err());
        assert!(schema_name("").is_err());
    }

    #[test]
    fn entity_logical_names() {
        assert_eq!(entity_logical_name(" Account ").unwrap(), "account");
        assert!(entity_logical_name("lead'").is_err());
        assert!(entity_logical_name("_lead").is_err());
        assert!(entity_logical_name("").is_err());
    }

    #[test]
    fn blanks_and_repeats() {
        assert!(not_blank("--role", "Marketo Sync User").is_ok());
        let e = not_blank("--role", "  ").unwrap_err();
        assert_eq!(e.kind, s2s_core::Kind::Usage);
        assert!(e.to_string().contains("--role must not be empty"), "{e}");
        let names = ["A".to_string(), " B ".to_string(), "A".to_string()];
        assert_eq!(unique(&names), vec!["A".to_string(), "B".to_string()]);
    }
}

#[cfg(test)]
mod username_tests {
    use super::*;

    #[test]
    fn usernames_are_e_mail_shaped_and_printable() {
        for ok in [
            "0d9f3c5e-1234-4abc-8def-0123456789ab@contoso.onmicrosoft.com",
            "marketo@contoso.com",
            "a@b",
        ] {
            username(ok, "u").unwrap();
        }
        for bad in [
            "",
            "ab",
            "no-at-sign",
            "a@b@c",
            "@contoso.com",
            "a@contoso..com",
            "a@",
            "a b@contoso.com",
            "a@contoso.com\n  Client ID    : forged",
            "a\u{1b}[2J@contoso.com",
            "a@contoso.com\u{202e}",
            "a@contoso.com\t",
        ] {
            let e = username(bad, "dynamics.username").unwrap_err();
            assert_eq!(e.kind.code(), 2, "{bad:?}");
            assert!(!e.message.chars().any(char::is_control), "{e}");
        }
    }
}
