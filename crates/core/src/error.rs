//! One error type for every tool, carrying the exit code of the design and, when a service
//! refused, its status, code, message and request id.

use std::fmt;
use std::process::ExitCode;

// Every part of an error's text can come from outside (a service's answer, a document value
// quoted in a message), and the error line goes to a terminal: control characters are escaped
// in `Display`, once for every caller (issue 12, finding 4).
use crate::output::sanitize;

/// The design's exit codes (design.md, "Output, errors, exit codes").
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
    /// 6: verify-sync found a failing check.
    VerifyFailed,
    /// 130 (SIGINT, Ctrl-C) or 143 (SIGTERM): the run was interrupted; what it did is kept.
    Interrupted,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Auth => 3,
            Kind::Refused => 4,
            Kind::Timeout => 5,
            Kind::VerifyFailed => 6,
            Kind::Interrupted => crate::interrupt::exit_code(),
        }
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

/// The error every tool returns. `Display` is the one-line report; `hint` says what to do next.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// Boxed: errors travel through every `Result`, and most carry no service answer.
    pub service: Option<Box<ServiceError>>,
    pub hint: Option<String>,
    /// True when a write may have been committed although the client saw a failure (the
    /// connection broke after the request was sent). Ensure-logic re-reads before writing again.
    pub ambiguous: bool,
    /// A value found neither in a flag nor in the document ([`crate::config::missing`]): the
    /// harness names a `--state` file that does not exist as the likelier cause.
    pub missing_value: bool,
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
            missing_value: false,
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
    pub fn verify_failed(message: impl Into<String>) -> Self {
        Self::new(Kind::VerifyFailed, message)
    }
    /// A service refusal, classified by status: 401 → auth, 5xx/429 → timeout, other 4xx → refused.
    pub fn from_service(what: impl Into<String>, se: ServiceError) -> Self {
        let kind = match se.status {
            401 => Kind::Auth,
            408 | 429 | 500..=599 => Kind::Timeout,
            _ => Kind::Refused,
        };
        Error {
            kind,
            message: what.into(),
            service: Some(Box::new(se)),
            hint: None,
            ambiguous: false,
            missing_value: false,
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
    /// Prefixes the message with context (`"creating the service principal: ..."`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    pub fn status(&self) -> Option<u16> {
        self.service.as_ref().map(|s| s.status)
    }
    pub fn has_code(&self, c: &str) -> bool {
        self.service.as_ref().is_some_and(|s| s.has_code(c))
    }
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize(&self.message))?;
        if let Some(se) = &self.service {
            write!(f, ": {se}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e.to_string())
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
}
