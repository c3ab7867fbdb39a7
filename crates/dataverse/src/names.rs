//! Checks of the Dataverse names and free-text values the Dynamics tools take as flags, shared so
//! that every tool accepts and refuses the same things with the same words. Each runs before any
//! request (clap value parsers, or `Tool::validate`), so a bad value exits 2 having sent nothing.

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
