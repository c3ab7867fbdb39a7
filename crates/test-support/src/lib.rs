//! What the integration tests share: `tests/it` (every tool as a process against the in-process
//! emulator), `tests/windows` (the same under Wine) and tenant-sim's own behaviour tests.
//!
//! - [`http`]: a minimal HTTP/1.1 client over `std::net`. It deliberately shares nothing with
//!   the tools' HTTP stack (`s2s-core`, reqwest), so a bug there cannot hide itself in the
//!   tests' own view of the emulator; this crate depends on no crate of the tools.
//! - [`token`]: the emulator's token endpoint (client credentials, the admin's token, the
//!   device-code flow).
//! - [`Sim`] (`sim`): one test's emulator and temporary folder, and what the test reads of
//!   the emulated tenant: the request log, the state, Graph and Dataverse as the admin.
//! - [`Run`] (`run`): the tools run as real processes in a scrubbed environment.
//! - `setup`: where tests start from (the runbook's steps, a registered app, a finished setup
//!   in a state file, a seeded token cache) and the reads many suites share.
//!
//! Everything a test needs is in the prelude: `use test_support::*;`.

pub mod http;
mod run;
mod setup;
mod sim;
pub mod token;

pub use http::urlencode;
pub use run::{Run, assert_handed_on_unchanged, bare_cmd, bin, run_bare};
pub use setup::{
    app_user_id, app_users, chain_steps, client_id, dv_get, finished_state, method_paths, mkfifo,
    publish_history, read_doc, registered, seed_token_cache, seed_token_cache_for,
    service_principal_id, with_app_user,
};
pub use sim::{Sim, federated, sim, sim_with};
