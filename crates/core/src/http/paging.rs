//! Following a service's `@odata.nextLink` safely, for every typed client.
//!
//! OData says the next link is opaque and must be followed as-is (Graph: "Paging Microsoft
//! Graph data in your app", graph.md §7.3; Dataverse: reference/dataverse.md §7.5), so it comes
//! from the server's answer — outside input. Following it sends the bearer token, so:
//! - a link is followed only on the exact origin (scheme, host, port) the token was issued for,
//!   with no user info; anything else is refused (exit 4) and named, sanitised, without its
//!   query;
//! - a link seen before (a loop) and more than [`MAX_PAGES`] pages are refused too, so a broken
//!   or hostile server cannot keep a tool busy until `--timeout`.

use std::collections::HashSet;

use url::Url;

use crate::error::{Error, Result};

/// More pages than any collection these tools read can have (the largest, Dataverse rows at 500
/// a page, would be half a million rows).
pub const MAX_PAGES: usize = 1000;

/// The paging state of one collection read.
#[derive(Debug)]
pub struct Pager {
    origin: Url,
    what: String,
    seen: HashSet<String>,
    pages: usize,
    max_pages: usize,
}

impl Pager {
    /// `origin` is the base URL the token is for (`https://graph.microsoft.com`, the org URL);
    /// `first` the URL of the first page; `what` names the collection in errors.
    pub fn new(origin: &str, first: &str, what: &str) -> Result<Self> {
        let origin = Url::parse(origin).map_err(|e| {
            Error::internal(format!("the service URL {origin} does not parse ({e})"))
        })?;
        let mut seen = HashSet::new();
        // Stored in the parser's form, as every next link is, so a link back to page one is
        // recognised as a loop.
        seen.insert(
            Url::parse(first)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| first.to_string()),
        );
        Ok(Pager {
            origin,
            what: what.to_string(),
            seen,
            pages: 1,
            max_pages: MAX_PAGES,
        })
    }

    /// A smaller page cap (tests).
    pub fn with_max_pages(mut self, n: usize) -> Self {
        self.max_pages = n;
        self
    }

    /// The URL to fetch for `next` (the `@odata.nextLink` of the page just read), or an error
    /// (exit 4) when it may not be followed.
    pub fn next(&mut self, next: &str) -> Result<String> {
        let url = same_origin(&self.origin, next, &self.what)?;
        if !self.seen.insert(url.clone()) {
            return Err(Error::refused(format!(
                "the service's next-page link for {} repeats a page already read ({}): the \
                 paging would never end",
                self.what,
                shown(next)
            ))
            .with_hint(
                "re-run later; if it persists, report the service's answer (run with -vv)",
            ));
        }
        self.pages += 1;
        if self.pages > self.max_pages {
            return Err(Error::refused(format!(
                "{}: more than {} pages; giving up",
                self.what, self.max_pages
            ))
            .with_hint(
                "re-run later; if it persists, report the service's answer (run with -vv)",
            ));
        }
        Ok(url)
    }
}

/// `link` resolved against `origin` when it stays on that origin (same scheme, host and port,
/// no user info); otherwise an error (exit 4) naming the link.
pub fn same_origin(origin: &Url, link: &str, what: &str) -> Result<String> {
    let refuse = |why: &str| {
        Error::refused(format!(
            "the service's next-page link for {what} {why}: {}",
            shown(link)
        ))
        .with_hint(format!(
            "the sign-in token is only ever sent to {}; check --graph-url / --dynamics-url and any \
             proxy that rewrites answers, then re-run",
            origin_of(origin)
        ))
    };
    let url = origin
        .join(link.trim())
        .map_err(|_| refuse("is not a URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("carries user info"));
    }
    if url.scheme() != origin.scheme()
        || url.host_str() != origin.host_str()
        || url.port_or_known_default() != origin.port_or_known_default()
    {
        return Err(refuse(&format!("points outside {}", origin_of(origin))));
    }
    Ok(url.to_string())
}

fn origin_of(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// A link for an error message: parsed when possible (scheme, host, port and path; no user info,
/// no query, which may be long or hold a paging cookie), control characters escaped, at most 200
/// characters.
fn shown(link: &str) -> String {
    let text = match Url::parse(link.trim()) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => link.to_string(),
    };
    let text = crate::output::sanitize(&text).into_owned();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn pager() -> Pager {
        Pager::new(
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/v1.0/domains",
            "domains",
        )
        .unwrap()
    }

    #[test]
    fn follows_links_on_the_same_origin() {
        let mut p = pager();
        assert_eq!(
            p.next("https://graph.microsoft.com/v1.0/domains?$skiptoken=abc")
                .unwrap(),
            "https://graph.microsoft.com/v1.0/domains?$skiptoken=abc"
        );
        assert_eq!(
            p.next("https://GRAPH.microsoft.com:443/v1.0/domains?$skiptoken=b")
                .unwrap(),
            "https://graph.microsoft.com/v1.0/domains?$skiptoken=b"
        );
    }

    #[test]
    fn refuses_every_other_origin_with_exit_4_naming_the_link() {
        for link in [
            "http://graph.microsoft.com/v1.0/domains?$skiptoken=x",
            "https://graph.microsoft.com.evil.example/v1.0/domains",
            "https://graph.microsoft.com:8443/v1.0/domains",
            "https://evil.example/v1.0/domains",
            "//evil.example/v1.0/domains",
            "https://user:pw@graph.microsoft.com/v1.0/domains",
            "https://graph.microsoft.com@evil.example/v1.0/domains",
        ] {
            let e = pager().next(link).unwrap_err();
            assert_eq!(e.kind, Kind::Refused, "{link}");
            assert!(e.message.contains("next-page link for domains"), "{e}");
            assert!(!e.message.contains("pw"), "{e}");
        }
        let e = pager()
            .next("https://evil.example/x\u{1b}]0;t\u{7}?token=1")
            .unwrap_err();
        assert!(!e.message.chars().any(char::is_control), "{e}");
        assert!(!e.message.contains("token=1"), "{e}");
    }

    #[test]
    fn a_loop_or_too_many_pages_ends() {
        let mut p = pager();
        let e = p
            .next("https://graph.microsoft.com/v1.0/domains")
            .unwrap_err();
        assert!(e.message.contains("repeats"), "{e}");
        let mut p = pager().with_max_pages(3);
        p.next("https://graph.microsoft.com/v1.0/domains?p=2")
            .unwrap();
        p.next("https://graph.microsoft.com/v1.0/domains?p=3")
            .unwrap();
        let e = p
            .next("https://graph.microsoft.com/v1.0/domains?p=4")
            .unwrap_err();
        assert_eq!(e.kind, Kind::Refused);
        assert!(e.message.contains("more than 3 pages"), "{e}");
    }
}
