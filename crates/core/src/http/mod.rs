//! HTTP without sign-in: what a request is ([`request`]), the retry policy as one pure decision
//! ([`policy`]), the transport that sends and retries ([`transport`]), the write ledger and
//! dry-run plan ([`ledger`]), following next-page links ([`paging`]) and the redaction of every
//! secret in a trace ([`redact`]).
//!
//! Nothing here imports `auth`: a request names the resource it needs a token for, and the
//! transport asks the [`TokenSource`] its caller passes. The client tools use, `crate::Http`
//! (`api.rs`), joins the transport and the credential chain.

pub mod ledger;
pub mod paging;
pub mod policy;
pub mod redact;
pub mod request;
pub mod transport;

pub use ledger::Ledger;
pub use paging::Pager;
pub use request::{
    Auth, Body, Method, Request, Response, Service, parse_service_error, path_for_humans, path_of,
};
pub use transport::{NoTokens, Settings, TokenSource, Transport, read_ca_file};
