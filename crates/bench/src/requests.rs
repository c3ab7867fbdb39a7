//! tenant-sim's request log, attributed to the tools by their user agent and counted as reads,
//! writes and sign-ins, with the method + path list the report shows as evidence.

use std::collections::BTreeMap;

use serde_json::{Value, json};

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
pub fn count_requests(log: &[Value]) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for e in log {
        let tool = tool_of(e);
        let slot = out.entry(tool).or_insert_with(
            || json!({"reads": 0, "writes": 0, "login": 0, "errors": 0, "requests": []}),
        );
        let method = e["method"].as_str().unwrap_or("?");
        let service = e["service"].as_str().unwrap_or("?");
        let status = e["status"].as_u64().unwrap_or(0);
        let key = if service == "login" {
            "login"
        } else if method == "GET" || method == "HEAD" {
            "reads"
        } else {
            "writes"
        };
        slot[key] = json!(slot[key].as_i64().unwrap_or(0) + 1);
        if status >= 400 || status == 0 {
            slot["errors"] = json!(slot["errors"].as_i64().unwrap_or(0) + 1);
        }
        let path = e["path"].as_str().unwrap_or("");
        let line = format!(
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
        );
        if let Some(a) = slot["requests"].as_array_mut() {
            a.push(json!(line));
        }
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
        assert_eq!(
            (
                r["reads"].as_i64(),
                r["writes"].as_i64(),
                r["login"].as_i64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(r["errors"].as_i64(), Some(1));
        assert!(c.contains_key("(other)"));
    }
}
