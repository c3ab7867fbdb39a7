//! The shared core of the marketo-s2s tools: the state document, the shared flags, configuration,
//! the credential chain ([`auth`]), the HTTP layer ([`http`]: requests, retry and Retry-After
//! within the deadline, redaction, dry-run plans) and the client that joins them ([`Http`]),
//! eventual-consistency waits ([`retry`]), the error type and its exit codes, and stdout/stderr
//! output.
//!
//! Dependencies point down: tools use the typed clients (graph, dataverse), which use this crate;
//! only [`run`] writes stdout. Inside it, `api` → `auth` → `http`, never back.

pub mod api;
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
pub mod pipe;
pub mod retry;
pub mod run;
pub mod setup;
pub mod state;
pub mod statefile;
pub mod tools;
#[cfg(unix)]
mod unix;
pub mod urls;
#[cfg(windows)]
pub mod win;
mod winpath;

pub use api::Http;
/// `s2s_core::assertion`: the client assertions of [`auth`] (certificates, federated tokens).
pub use auth::assertion;
pub use cli::CommonArgs;
pub use error::{Caller, Error, Kind, Result, ResultExt, ServiceError};
pub use http::{Auth, Method, Request, Response, Service};
pub use keys::{AnyKey, DocKey};
pub use run::{Ctx, Tool};
pub use state::StateDoc;
