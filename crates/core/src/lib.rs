//! The shared core of the marketo-s2s tools: the state document, the shared flags, configuration,
//! the credential chain, the HTTP layer (retry, Retry-After, deadline, eventual-consistency waits,
//! redaction, dry-run plans), the error type and its exit codes, and stdout/stderr output.
//!
//! Dependencies point down: tools use the typed clients (graph, dataverse), which use this crate;
//! only [`run`] writes stdout.

pub mod assertion;
pub mod auth;
pub mod checklist;
pub mod cli;
pub mod config;
pub mod confirm;
pub mod error;
pub mod exit_codes;
pub mod fsutil;
pub mod guid;
pub mod help;
pub mod hint;
pub mod http;
pub mod interrupt;
pub mod keys;
pub mod lifetime;
pub mod odata;
pub mod output;
pub mod owed;
pub mod paging;
pub mod pipe;
pub mod redact;
pub mod retry;
pub mod run;
pub mod setup;
pub mod signin;
pub mod state;
pub mod statefile;
pub mod tools;
#[cfg(windows)]
pub mod win;

pub use cli::CommonArgs;
pub use error::{Caller, Error, Kind, Result, ResultExt, ServiceError};
pub use http::{Auth, Http, Method, Request, Response, Service};
pub use keys::{AnyKey, DocKey};
pub use run::{Ctx, Tool};
pub use state::StateDoc;
