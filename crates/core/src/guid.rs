//! GUIDs as the services print them: 8-4-4-4-12 hex digits, lower-cased. Braces are accepted on
//! input because the portal and PowerShell copy them that way.

/// The input was not a GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidGuid;

impl std::fmt::Display for InvalidGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a GUID")
    }
}

impl std::error::Error for InvalidGuid {}

/// Parses and normalises a GUID (lower case, no braces).
pub fn parse(s: &str) -> Result<String, InvalidGuid> {
    let t = s.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if groups.len() != 5
        || groups
            .iter()
            .zip(lens)
            .any(|(g, n)| g.len() != n || !g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(InvalidGuid);
    }
    Ok(t.to_ascii_lowercase())
}

/// For clap: `#[arg(value_parser = guid::clap_parser)]`.
pub fn clap_parser(s: &str) -> Result<String, String> {
    parse(s)
        .map_err(|_| format!("{s:?} is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"))
}

/// The last GUID in a string, e.g. the id in Dataverse's `OData-EntityId` header
/// (`https://org/api/data/v9.2/systemusers(00000000-...)`), as Microsoft's Terraform provider reads it.
pub fn last_in(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 36 {
        return None;
    }
    (0..=b.len() - 36)
        .rev()
        .find_map(|i| s.get(i..i + 36).and_then(|c| parse(c).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses() {
        assert_eq!(
            parse("{ABCDEF01-2345-6789-abcd-ef0123456789}").unwrap(),
            "abcdef01-2345-6789-abcd-ef0123456789"
        );
        assert!(parse("abcdef01-2345-6789-abcd-ef012345678").is_err());
        assert!(parse("abcdef01x2345-6789-abcd-ef0123456789").is_err());
        assert_eq!(
            last_in("https://x/api/data/v9.2/systemusers(00000000-0000-0000-0000-000000000008)")
                .unwrap(),
            "00000000-0000-0000-0000-000000000008"
        );
    }
}
