//! The URLs the tools are given — `--dynamics-url`, cloud endpoints, `IDENTITY_ENDPOINT`, a URL
//! kept in the state document — all checked by one rule before the first request: https (http on
//! loopback only, for tenant-sim), no user info, no query or fragment, no trailing slash. A
//! refused URL is named in the error without its user info (it may hold a password).

use url::{Host, Url};

use crate::error::{Error, Result};

/// Accepts `https://host[:port][/path]`, or `http://` on a loopback host; refuses user info,
/// queries and fragments (they would leak into logs or change the meaning of every call).
pub fn check_url(raw: &str, what: &str) -> Result<Url> {
    let bad = |why: &str| Error::usage(format!("{what} {} {why}", shown(raw)));
    let mut url = Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(bad("is not an absolute URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not contain a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "uses http: only https is allowed, except on loopback hosts (127.0.0.1, ::1, localhost)",
            ));
        }
        other => return Err(bad(&format!("has scheme {other:?}; use https"))),
    }
    // One canonical form without a trailing slash, so `{base}/v1.0/...` joins cleanly.
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

/// `raw` quoted for a message, never with its user info: a password in a URL
/// (`https://u:S3cret@org…`) must not reach stderr or, through the error, the state document.
/// A URL that parses is shown without it; text that does not parse is shown only when it holds
/// no `@`.
fn shown(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            format!("{:?} (user info removed)", u.as_str())
        }
        Ok(_) => format!("{raw:?}"),
        Err(_) if raw.contains('@') => "(not shown: it may hold a password)".to_string(),
        Err(_) => format!("{raw:?}"),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The URL as a string without a trailing slash (`Url` always prints one on an empty path).
pub fn base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_never_shows_its_password() {
        for raw in [
            "https://u:S3cret@contoso.crm.dynamics.com",
            "https://S3cret@contoso.crm.dynamics.com/?a=1",
            "http://u:S3cret@contoso.crm.dynamics.com",
            "https://u:S3cret@contoso.crm dynamics.com",
            "https://u:S3cret@",
        ] {
            let e = check_url(raw, "--dynamics-url").unwrap_err();
            assert_eq!(e.kind.code(), 2, "{raw}");
            assert!(!e.to_string().contains("S3cret"), "{raw}: {e}");
            assert!(e.to_string().starts_with("--dynamics-url "), "{e}");
        }
        let e = check_url("https://u:S3cret@contoso.crm.dynamics.com", "x").unwrap_err();
        assert!(
            e.message
                .contains("\"https://contoso.crm.dynamics.com/\" (user info removed)"),
            "{e}"
        );
        // Without user info the value is shown as given.
        let e = check_url("ftp://contoso", "x").unwrap_err();
        assert!(e.message.contains("\"ftp://contoso\""), "{e}");
    }
}
