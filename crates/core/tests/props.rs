//! Property tests for the parsers that face the outside world: the state document, the
//! `Retry-After` header, and OData literal escaping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use s2s_core::http::policy;
use s2s_core::{StateDoc, odata};
use serde_json::{Value, json};

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_.]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decodes an OData string literal the way a server does: strip the quotes, `''` → `'`.
fn unquote(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // A lone quote would end the literal: injection.
            if chars.next() != Some('\'') {
                return None;
            }
        }
        out.push(c);
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

proptest! {
    /// Any text either parses to an object document or is refused as bad input (exit 2) — never
    /// a panic, never another exit code.
    #[test]
    fn any_text_is_a_document_or_a_usage_error(text in ".{0,200}") {
        match StateDoc::parse(&text, "stdin") {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.kind.code(), 2),
        }
    }

    /// Keys a tool does not own survive a set and a serialise/parse round trip unchanged.
    #[test]
    fn unknown_keys_pass_through(v in prop::collection::btree_map("[a-z]{1,8}", json_value(), 0..6), val in ".{0,20}") {
        let obj = Value::Object(v.clone().into_iter().collect());
        let mut doc = StateDoc::parse(&obj.to_string(), "t").unwrap();
        doc.set_value("steps.tool.changed", true);
        doc.set_value("zz_owned.key", val.as_str());
        let back = StateDoc::parse(&doc.to_text(false), "t").unwrap();
        for (k, original) in v {
            if k != "steps" && k != "zz_owned" {
                prop_assert_eq!(back.root().get(&k), Some(&original));
            }
        }
        prop_assert_eq!(back.get_value("zz_owned.key"), Some(&json!(val)));
    }

    /// Typed getters never panic, and a wrong type is always exit 2 naming the key.
    #[test]
    fn typed_getters_never_panic(v in json_value()) {
        let doc = StateDoc::parse(&json!({"app": v}).to_string(), "t").unwrap();
        for r in [doc.get_str("app.client_id").map(|_| ()), doc.get_guid("app.client_id").map(|_| ()), doc.get_object("app.x.y").map(|_| ())] {
            if let Err(e) = r {
                prop_assert_eq!(e.kind.code(), 2);
                prop_assert!(e.message.contains("app"));
            }
        }
    }

    /// Delta-seconds, integer or fractional, parse to exactly that delay.
    #[test]
    fn retry_after_seconds(ms in 0u64..10_000_000) {
        let now = SystemTime::now();
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        prop_assert_eq!(policy::parse_retry_after(&text, now), Some(Duration::from_millis(ms)));
        prop_assert_eq!(policy::parse_retry_after(&(ms / 1000).to_string(), now), Some(Duration::from_secs(ms / 1000)));
    }

    /// An HTTP date in the future parses to the distance from now; one in the past to zero.
    #[test]
    fn retry_after_http_date(secs in 0u64..100_000, past in any::<bool>()) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = if past { now - Duration::from_secs(secs) } else { now + Duration::from_secs(secs) };
        // A date is clamped to a day, like the numeric forms (it is added to an Instant).
        let want = if past { Duration::ZERO } else { Duration::from_secs(secs.min(86_400)) };
        prop_assert_eq!(policy::parse_retry_after(&httpdate::fmt_http_date(at), now), Some(want));
    }

    /// Garbage never panics and never yields a delay longer than a day.
    #[test]
    fn retry_after_garbage(text in ".{0,40}") {
        if let Some(d) = policy::parse_retry_after(&text, SystemTime::now()) {
            prop_assert!(d <= Duration::from_secs(86_400));
        }
    }

    /// Any name quoted for `$filter` decodes back to itself and cannot end the literal early;
    /// once encoded for the URL it contains no character that would end the segment or query.
    #[test]
    fn odata_literals_round_trip(name in ".{0,40}") {
        let lit = odata::quote(&name);
        prop_assert_eq!(unquote(&lit), Some(name.clone()));
        let enc = odata::encode(&lit);
        prop_assert!(!enc.contains(['\'', '/', '#', '?', '&', ' ']));
        prop_assert_eq!(percent_decode(&enc), lit);
        let seg = odata::key_segment("applications", "uniqueName", &name);
        prop_assert!(seg.starts_with("applications(uniqueName=") && seg.ends_with(')'));
        prop_assert!(!seg["applications(".len()..seg.len() - 1].contains(['/', '#', '?', ')', '(']));
    }
}
