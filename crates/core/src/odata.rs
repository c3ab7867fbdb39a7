//! OData literals and URL pieces. Every value a user can choose (an app name, a record name, a
//! role name) reaches a `$filter` or a key segment only through these functions, so a quote, `%`,
//! `#` or `/` in a name is data, never syntax (OData ABNF: a `'` inside a string literal is
//! doubled; the URL then percent-encodes everything outside the unreserved set).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a path segment or query value: RFC 3986 unreserved, plus the
/// OData punctuation that must stay literal (`'`, `(`, `)`, `=`, `,`, `$`, `@`, `:`).
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An OData string literal with its quotes: `O'Brien` → `'O''Brien'`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Percent-encodes a whole path segment or query value (`'`, `/`, `#`, `%`, space … all encoded).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// A key segment such as `applications(uniqueName='x')`: the literal is quoted, then encoded so
/// that `/` or `#` cannot end the segment.
pub fn key_segment(entity: &str, key: &str, value: &str) -> String {
    format!("{entity}({key}={})", encode(&quote(value)))
}

/// A query string from pairs; each value is encoded as a whole.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn quotes_and_encodes() {
        assert_eq!(quote("O'Brien"), "'O''Brien'");
        assert_eq!(
            key_segment("applications", "uniqueName", "a'b/c#d%e f"),
            "applications(uniqueName=%27a%27%27b%2Fc%23d%25e%20f%27)"
        );
        assert_eq!(
            query(&[("$filter", "name eq 'x&y'")]),
            "$filter=name%20eq%20%27x%26y%27"
        );
    }
}
