//! A minimal HTTP/1.1 client over `std::net` (or any stream, e.g. a TLS one): one request per
//! connection, `Connection: close`, the answer read until the server closes it.
//!
//! The tests must not share the tools' HTTP stack, or a bug there could hide itself; and with no
//! HTTP client crate, a dropped connection is observable as such (an `Err`, not a retry).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// How long [`send`] waits for an answer: long enough for a tool's slowest emulated route on a
/// busy machine.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as sent (de-chunked).
    pub text: String,
    /// The body as JSON: `Null` when empty, the text as a JSON string when it is not JSON.
    pub body: Value,
}

impl Response {
    /// The first header of this name (any letter case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Null` when it is empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// `method url` (an `http://host:port/path?query` URL) with [`TIMEOUT`]; `Err` when the
/// connection failed or closed without a complete answer.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    send_within(TIMEOUT, method, url, headers, body)
}

/// [`send`] with a read timeout of its own: a request without an answer in time is an `Err`.
pub fn send_within(
    timeout: Duration,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    exchange(&mut s, host, method, path, headers, body)
}

/// Writes one HTTP/1.1 request on `stream` (already connected, to `host`) and reads the answer
/// until the connection closes.
pub fn exchange(
    stream: &mut (impl Read + Write),
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let body = body.unwrap_or(b"");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    // A TLS peer may close without close_notify, and a dropped connection ends the read with
    // an error: what arrived before decides.
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse(&String::from_utf8_lossy(&raw))
}

fn parse(text: &str) -> Result<Response, String> {
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return Err(format!("incomplete response: {text:?}"));
    };
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let text = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
    };
    Ok(Response {
        status,
        headers,
        text,
        body,
    })
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_with_their_headers_and_chunked_bodies_joined() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n4\r\n: 1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.text, "{\"a\": 1}");
        assert_eq!(r.body["a"], 1);
        let r = parse("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(
            (r.status, r.body.clone(), r.json()),
            (401, Value::Null, Value::Null)
        );
        let r = parse("HTTP/1.1 500 Oops\r\n\r\nnot json").unwrap();
        assert_eq!(
            (r.body.clone(), r.json()),
            (Value::String("not json".into()), Value::Null)
        );
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Len").is_err());
    }

    #[test]
    fn forms_encode_all_but_unreserved_characters() {
        assert_eq!(
            form(&[
                ("scope", "http://x/.default offline_access"),
                ("a+b", "c&d")
            ]),
            "scope=http%3A%2F%2Fx%2F.default%20offline_access&a%2Bb=c%26d"
        );
    }
}
