//! Redaction of every secret that could reach a log line: Authorization headers, form fields and
//! JSON properties that carry secrets or tokens. Applied at every verbosity (design.md, "HTTP
//! behaviour"); there is no flag to turn it off.

use serde_json::Value;

pub const REDACTED: &str = "(redacted)";

/// JSON properties and form fields whose value is secret.
const SECRET_KEYS: &[&str] = &[
    "secrettext",
    "client_secret",
    "clientsecret",
    "access_token",
    "accesstoken",
    "refresh_token",
    "id_token",
    "password",
    "device_code",
    "client_assertion",
];

fn is_secret_key(k: &str) -> bool {
    SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str())
}

/// Header values to hide.
pub fn header(name: &str, value: &str) -> String {
    let n = name.to_ascii_lowercase();
    // X-IDENTITY-HEADER is the managed-identity endpoint's shared secret (IDENTITY_HEADER).
    if matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-identity-header"
    ) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// A copy of `v` with secret properties replaced, recursively.
pub fn json(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    if is_secret_key(k) && !v.is_null() {
                        (k.clone(), Value::String(REDACTED.into()))
                    } else {
                        (k.clone(), json(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(json).collect()),
        Value::String(s) if looks_like_jwt(s) => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

/// `k=v&...` with secret fields hidden.
pub fn form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if is_secret_key(k) {
                format!("{k}={REDACTED}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Three base64url parts starting with `eyJ` (`{"`): a bearer token that slipped into a body.
pub fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.matches('.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[test]
    fn hides_secrets() {
        let v = json!({"secretText":"abc","keyId":"k","nested":[{"access_token":"t"}],"x":"eyJa.eyJb.c"});
        assert_eq!(
            json(&v),
            json!({"secretText":REDACTED,"keyId":"k","nested":[{"access_token":REDACTED}],"x":REDACTED})
        );
        assert_eq!(header("Authorization", "Bearer x"), REDACTED);
        assert_eq!(header("X-IDENTITY-HEADER", "s"), REDACTED);
        assert_eq!(
            form(&[("client_assertion".into(), "eyJ.x.y".into())]),
            "client_assertion=(redacted)"
        );
        assert_eq!(
            form(&[
                ("client_secret".into(), "s".into()),
                ("scope".into(), "a".into())
            ]),
            "client_secret=(redacted)&scope=a"
        );
    }
}
