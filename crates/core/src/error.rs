//! One error type for every tool, carrying the exit code of the design and, when a service
//! refused, its status, code, message and request id.

use std::fmt;
use std::process::ExitCode;

// Every part of an error's text can come from outside (a service's answer, a document value
// quoted in a message), and the error line goes to a terminal: control characters are escaped
// in `Display`, once for every caller.
use crate::output::sanitize;

/// The signal that interrupted a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, a CI job's cancel button, a container stopping.
    Terminate,
}

/// How a run ended, when not with 0, and the exit code that says so: each kind owns its code and
/// its meaning, which every tool's `--help` lists ([`crate::exit_codes::help`]) and the README's
/// table repeats (design.md, "Output, errors, exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: unexpected failure (I/O, a bug).
    Internal,
    /// 2: usage or bad input; no request was sent.
    Usage,
    /// 3: authentication failed (no credential, rejected secret, consent missing).
    Auth,
    /// 4: the service refused the request and retrying cannot fix it.
    Refused,
    /// 5: the service did not succeed in time.
    Timeout,
    /// 6: a checklist (verify-sync, preflight) ran to the end and a check failed. A step says so
    /// with [`crate::run::Outcome::ChecksFailed`], not with an error; only a pipeline passing on
    /// such a step's exit code makes an error of this kind.
    ChecksFailed,
    /// 130 (SIGINT, Ctrl-C) or 143 (SIGTERM): the run was interrupted; what it did is kept.
    Interrupted(Signal),
}

impl Kind {
    /// Every kind, in the order of their codes.
    pub const ALL: [Kind; 8] = [
        Kind::Internal,
        Kind::Usage,
        Kind::Auth,
        Kind::Refused,
        Kind::Timeout,
        Kind::ChecksFailed,
        Kind::Interrupted(Signal::Interrupt),
        Kind::Interrupted(Signal::Terminate),
    ];

    pub fn code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Auth => 3,
            Kind::Refused => 4,
            Kind::Timeout => 5,
            Kind::ChecksFailed => 6,
            Kind::Interrupted(Signal::Interrupt) => 130,
            Kind::Interrupted(Signal::Terminate) => 143,
        }
    }

    /// What the code means, as `--help` and the README say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Kind::Internal => "unexpected failure (I/O, a bug)",
            Kind::Usage => {
                "usage or bad input (flags, document, empty pipe, another tenant or org); no write sent"
            }
            Kind::Auth => "sign-in failed (no credential, a rejected secret or certificate)",
            Kind::Refused => {
                "the service refused the request (a 4xx retrying cannot fix, e.g. a missing permission)"
            }
            Kind::Timeout => {
                "not in time (5xx or throttling past --timeout, replication, a locked --state file)"
            }
            Kind::ChecksFailed => "a check failed (verify-sync, preflight)",
            Kind::Interrupted(Signal::Interrupt) => {
                "interrupted by Ctrl-C (SIGINT); what the run did is kept and the resume command is printed"
            }
            Kind::Interrupted(Signal::Terminate) => "stopped by SIGTERM; as 130",
        }
    }

    /// The word a document records (`steps.<tool>.error.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::Auth => "auth",
            Kind::Refused => "refused",
            Kind::Timeout => "timeout",
            Kind::ChecksFailed => "checks_failed",
            Kind::Interrupted(_) => "interrupted",
        }
    }

    /// The kind an exit code stands for (a pipeline passes an earlier step's code on); an
    /// unknown code is an unexpected failure.
    pub fn from_code(code: u8) -> Kind {
        Kind::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or(Kind::Internal)
    }
}

/// What a service said when it refused a request: enough to search the docs and to quote in a
/// support ticket (Graph asks for the request id; Dataverse codes are hex like `0x80040220`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceError {
    /// "login", "graph" or "dataverse".
    pub service: &'static str,
    pub status: u16,
    pub code: String,
    pub message: String,
    /// Graph's `request-id`, Dataverse's `REQ_ID` / `x-ms-service-request-id`, or the
    /// identity platform's trace id.
    pub request_id: Option<String>,
    /// The more specific code Graph puts in `details[0].code` or `innerError.code`.
    pub detail_code: Option<String>,
    /// AADSTS numbers from the token endpoint's `error_codes`.
    pub error_codes: Vec<u64>,
    /// On a 403: who the token said the caller was, so the hint can name what is missing.
    pub caller: Option<Caller>,
}

/// What an access token says about its holder (its `appid`, `idtyp`, `roles` and `scp` claims).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The client the token was issued to (`appid`, or `azp` in v2 tokens).
    pub app_id: Option<String>,
    /// A user's token (delegated), rather than an app-only one.
    pub delegated: bool,
    /// Application permissions (`roles`) of an app-only token.
    pub roles: Vec<String>,
    /// Delegated scopes (`scp`) of a user's token.
    pub scopes: Vec<String>,
}

impl Caller {
    /// True when the token holds one of `any` (as an app role, or as a scope when delegated).
    pub fn holds_any(&self, any: &[&str]) -> bool {
        let held = if self.delegated {
            &self.scopes
        } else {
            &self.roles
        };
        any.iter()
            .any(|p| held.iter().any(|h| h.eq_ignore_ascii_case(p)))
    }
}

impl ServiceError {
    /// True when `code` or the detail code equals `c` (case-insensitive, as Graph codes vary in case).
    pub fn has_code(&self, c: &str) -> bool {
        self.code.eq_ignore_ascii_case(c)
            || self
                .detail_code
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(c))
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {}", self.service, self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", sanitize(&self.code))?;
        }
        if let Some(d) = &self.detail_code {
            if !d.eq_ignore_ascii_case(&self.code) {
                write!(f, " ({})", sanitize(d))?;
            }
        }
        if !self.message.is_empty() {
            // Token endpoint descriptions carry "\r\nTrace ID: ..." lines; keep the first line.
            let first = self.message.lines().next().unwrap_or_default().trim();
            write!(f, ": {}", sanitize(first))?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {}]", sanitize(id))?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// The error every tool returns. `Display` is the one-line report — every link of the chain,
/// outermost first, joined by `: ` (`adding a client secret: POST /v1.0/…: graph answered 403 …`);
/// [`Error::causes`] gives the links one by one, as `-v` prints them. `hint` says what to do
/// next.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    /// This link's own words; empty for an error that only carries its source (an I/O error).
    pub message: String,
    /// The service's refusal, when this link is one (boxed: errors travel through every
    /// `Result`, and most carry no service answer). Read it with [`Error::service`], which
    /// looks down the chain.
    service: Option<Box<ServiceError>>,
    pub hint: Option<String>,
    /// True when a write may have been committed although the client saw a failure (the
    /// connection broke after the request was sent). Ensure-logic re-reads before writing again.
    pub ambiguous: bool,
    /// The document key of a value found neither in a flag nor in the document
    /// ([`crate::config::missing`]): the harness names a `--state` file that does not exist as
    /// the likelier cause, and records the key in `steps.<tool>.error.missing_key`.
    pub missing_key: Option<String>,
    /// What this error wraps: the error [`Error::context`] was given, or an I/O error.
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            service: None,
            hint: None,
            ambiguous: false,
            missing_key: None,
            source: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Kind::Timeout, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    /// A service refusal, classified by status: 401 → auth, 5xx/429 → timeout, other 4xx → refused.
    pub fn from_service(what: impl Into<String>, se: ServiceError) -> Self {
        let kind = match se.status {
            401 => Kind::Auth,
            408 | 429 | 500..=599 => Kind::Timeout,
            _ => Kind::Refused,
        };
        Error {
            service: Some(Box::new(se)),
            ..Self::new(kind, what)
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    /// Wraps the error in what was being done (`"creating the service principal"`): the result
    /// reads `creating the service principal: <the error>`, keeps the error as its source, and
    /// keeps its kind, hint and whether a write may have been committed.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        // An error that only carries its source (an I/O error) is named, not wrapped again.
        if self.message.is_empty() && self.service.is_none() {
            self.message = what.to_string();
            return self;
        }
        let outer = Error {
            kind: self.kind,
            message: what.to_string(),
            service: None,
            hint: self.hint.take(),
            ambiguous: self.ambiguous,
            missing_key: self.missing_key.clone(),
            source: None,
        };
        Error {
            source: Some(Box::new(self)),
            ..outer
        }
    }
    /// The service's refusal this error is, or wraps.
    pub fn service(&self) -> Option<&ServiceError> {
        match &self.service {
            Some(se) => Some(se),
            None => self.source.as_ref()?.downcast_ref::<Error>()?.service(),
        }
    }
    /// [`Error::service`], to complete (the API client adds who the caller was to a 403).
    pub fn service_mut(&mut self) -> Option<&mut ServiceError> {
        match &mut self.service {
            Some(se) => Some(se),
            None => self.source.as_mut()?.downcast_mut::<Error>()?.service_mut(),
        }
    }
    pub fn status(&self) -> Option<u16> {
        self.service().map(|s| s.status)
    }
    pub fn has_code(&self, c: &str) -> bool {
        self.service().is_some_and(|s| s.has_code(c))
    }
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
    /// The links of the chain under the first, each in its own words, outermost first: what
    /// `-v` prints as cargo does, one `Caused by:` each. The first link is the one-line report's
    /// beginning; an empty link (an error that only carries its source) is skipped.
    pub fn causes(&self) -> Vec<String> {
        let mut links = Vec::new();
        let mut link: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(l) = link {
            let own = match l.downcast_ref::<Error>() {
                Some(e) => e.message.clone(),
                None => l.to_string(),
            };
            if !own.trim().is_empty() {
                links.push(sanitize(&own).into_owned());
            }
            link = l.source();
        }
        links.into_iter().skip(1).collect()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize(&self.message))?;
        let sep = if self.message.is_empty() { "" } else { ": " };
        if let Some(source) = &self.source {
            write!(f, "{sep}{}", sanitize(&source.to_string()))?;
        } else if let Some(se) = &self.service {
            write!(f, "{sep}{se}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match (&self.source, &self.service) {
            (Some(source), _) => Some(source.as_ref()),
            (None, Some(se)) => Some(se.as_ref()),
            (None, None) => None,
        }
    }
}

/// An I/O failure is an unexpected one (exit 1) that keeps the I/O error as its source: its
/// kind and OS code stay readable down the chain.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error {
            source: Some(Box::new(e)),
            ..Error::internal("")
        }
    }
}

impl Error {
    /// Says the error on stderr: `tool: error: <the one-line report>`; with `-v`
    /// (`verbosity` > 0) each cause as cargo prints them, `Caused by:` and the cause indented;
    /// then `tool: hint: …`.
    pub fn report(&self, tool: &str, verbosity: u8) {
        let causes = if verbosity > 0 {
            self.causes()
        } else {
            Vec::new()
        };
        report_lines(tool, &self.to_string(), &causes, self.hint.as_deref());
    }
}

/// The lines of an error report (`line` and `causes` already sanitised).
pub(crate) fn report_lines(tool: &str, line: &str, causes: &[String], hint: Option<&str>) {
    use crate::output::{Style, ewriteln, paint};
    ewriteln(&format!("{tool}: {} {line}", paint(Style::Fail, "error:")));
    for cause in causes {
        ewriteln("");
        ewriteln("Caused by:");
        ewriteln(&format!("  {cause}"));
    }
    if let Some(h) = hint {
        ewriteln(&format!("{tool}: hint: {}", sanitize(h)));
    }
}

/// `ctx("reading --state")?`-style context on any result.
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_line_never_carries_control_characters() {
        let se = ServiceError {
            service: "graph",
            status: 400,
            code: "Bad\u{1b}[31m".into(),
            message: "first\u{7} line\r\nTrace ID: x".into(),
            request_id: Some("id\n".into()),
            ..Default::default()
        };
        let e = Error::from_service("GET /x\u{1b}]0;t\u{7}", se);
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("first\\x07 line"), "{shown}");
    }

    fn refusal() -> Error {
        Error::from_service(
            "POST /v1.0/applications",
            ServiceError {
                service: "graph",
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges".into(),
                request_id: Some("r1".into()),
                ..Default::default()
            },
        )
    }

    #[test]
    fn context_wraps_and_the_one_line_reads_as_before() {
        let e = refusal()
            .with_hint("grant Application.ReadWrite.All")
            .context("creating the application")
            .context("register-app");
        assert_eq!(
            e.to_string(),
            "register-app: creating the application: POST /v1.0/applications: graph answered 403 \
             Authorization_RequestDenied: Insufficient privileges [request id r1]"
        );
        // Kind, hint and the service's answer stay reachable from the outside.
        assert_eq!(e.kind, Kind::Refused);
        assert_eq!(e.hint.as_deref(), Some("grant Application.ReadWrite.All"));
        assert_eq!(e.status(), Some(403));
        assert!(e.has_code("Authorization_RequestDenied"));
        // The chain keeps every link, each in its own words.
        assert_eq!(
            e.causes(),
            [
                "creating the application",
                "POST /v1.0/applications",
                "graph answered 403 Authorization_RequestDenied: Insufficient privileges [request id r1]",
            ]
        );
        let mut e = e;
        e.service_mut().unwrap().caller = Some(Caller::default());
        assert!(e.service().unwrap().caller.is_some());
    }

    #[test]
    fn an_io_error_is_kept_as_the_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied\u{7}");
        let e = Error::from(io);
        assert_eq!(e.kind, Kind::Internal);
        assert_eq!(e.to_string(), "denied\\x07");
        assert!(e.causes().is_empty(), "{:?}", e.causes());
        let source = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
        let named: Result<()> = Err(std::io::Error::other("disk full")).context("saving x");
        let named = named.unwrap_err();
        assert_eq!(named.to_string(), "saving x: disk full");
        assert_eq!(named.causes(), ["disk full"]);
        assert!(named.source().unwrap().is::<std::io::Error>());
    }
}
