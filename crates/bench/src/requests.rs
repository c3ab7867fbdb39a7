//! tenant-sim's request log, attributed to the tools by their user agent and counted as reads,
//! writes and sign-ins, with the method + path list the report shows as evidence.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::results::Counts;

/// The tool named in `marketo-s2s/<version> <tool>`.
fn tool_of(entry: &Value) -> String {
    entry["user_agent"]
        .as_str()
        .and_then(|ua| {
            let mut it = ua.split_whitespace();
            let first = it.next()?;
            if !first.starts_with("marketo-s2s/") {
                return None;
            }
            it.next().map(str::to_string)
        })
        .unwrap_or_else(|| "(other)".into())
}

/// Requests per tool: reads (GET/HEAD), writes (any other method), sign-ins (token endpoint),
/// error answers, and the method + path list for the report's evidence.
pub fn count_requests(log: &[Value]) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for e in log {
        let slot = out.entry(tool_of(e)).or_default();
        let method = e["method"].as_str().unwrap_or("?");
        let service = e["service"].as_str().unwrap_or("?");
        let status = e["status"].as_u64().unwrap_or(0);
        if service == "login" {
            slot.login += 1;
        } else if method == "GET" || method == "HEAD" {
            slot.reads += 1;
        } else {
            slot.writes += 1;
        }
        if status >= 400 || status == 0 {
            slot.errors += 1;
        }
        let path = e["path"].as_str().unwrap_or("");
        slot.requests.push(format!(
            "{method} {service} {}{} → {}",
            shorten(path),
            e["query"]
                .as_str()
                .map(|q| format!("?{}", shorten_query(q)))
                .unwrap_or_default(),
            if status == 0 {
                "-".into()
            } else {
                status.to_string()
            }
        ));
    }
    out
}

/// Guids in paths make the evidence unreadable and differ per run: `{id}`.
fn shorten(path: &str) -> String {
    let mut out = String::new();
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_guid(&path[i..i + 36]) {
            out.push_str("{id}");
            i += 36;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn shorten_query(q: &str) -> String {
    let decoded = q
        .replace("%20", " ")
        .replace("%27", "'")
        .replace("%24", "$")
        .replace("%2C", ",");
    let s = shorten(&decoded);
    if s.len() > 90 {
        let cut = (0..=90).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guids_are_shortened() {
        assert_eq!(
            shorten("/v1.0/applications/0d9f3c5e-1111-2222-3333-444455556666/addPassword"),
            "/v1.0/applications/{id}/addPassword"
        );
        assert_eq!(shorten("/v1.0/domains"), "/v1.0/domains");
    }

    #[test]
    fn requests_are_attributed_and_split() {
        let log = vec![
            json!({"method": "POST", "service": "login", "path": "/t/oauth2/v2.0/token", "status": 200, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "GET", "service": "graph", "path": "/v1.0/x", "status": 404, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "PATCH", "service": "graph", "path": "/v1.0/x", "status": 201, "user_agent": "marketo-s2s/0.1.0 register-app"}),
            json!({"method": "GET", "service": "graph", "path": "/v1.0/y", "status": 200, "user_agent": "curl/8"}),
        ];
        let c = count_requests(&log);
        let r = &c["register-app"];
        assert_eq!(r.totals(), (1, 1, 1));
        assert_eq!(r.errors, 1);
        assert_eq!(
            r.requests,
            [
                "POST login /t/oauth2/v2.0/token → 200",
                "GET graph /v1.0/x → 404",
                "PATCH graph /v1.0/x → 201"
            ]
        );
        assert!(c.contains_key("(other)"));
    }
}
