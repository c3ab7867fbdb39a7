//! Sign-in: the credential chain that gives the admin's bearer tokens ([`TokenProvider`], in
//! [`chain`]), one module per credential source (`env`, `certificate`, `workload_identity`,
//! `managed_identity`, `cache`, `az`, `device_code`), what they share at the token endpoint
//! ([`endpoint`]), the client assertions they sign or read ([`assertion`]), the one JWT decoder
//! ([`jwt`]), and the sign-in the document and the environment name ([`signin`]).
//!
//! Imports point one way: auth signs in through the transport (`crate::http`), which knows
//! nothing about tokens; the API client (`crate::Http`) asks the chain for them.

pub mod assertion;
mod az;
mod cache;
mod certificate;
pub mod chain;
mod device_code;
pub mod endpoint;
mod env;
pub mod jwt;
mod managed_identity;
pub mod signin;
mod workload_identity;

pub use chain::{TokenProvider, describe};
pub use endpoint::{Login, client_assertion_credentials, client_credentials};
