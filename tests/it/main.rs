//! Integration tests: every tool run as a real process against the in-process emulator
//! (`tenant_sim::TestServer` on 127.0.0.1:0), never against the internet or a mock.

// The suite drives the tools as a Unix shell does (modes, FIFOs, symlinks, /dev/null, bash
// runbooks); the Windows side is tests/windows, run under Wine by scripts/windows-check.sh.
#![cfg(unix)]
// A test that cannot unwrap should fail loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod add_sync_filter;
mod assign_role;
mod clis;
mod command_line;
mod common;
mod configure_marketo;
mod demo;
mod faults;
mod fleet;
mod grant_consent;
mod input;
mod interruption;
mod local_files;
mod make_secret;
mod monitoring;
mod ownership;
mod paging;
mod permissions;
mod pipeline;
mod preflight;
mod publish_customizations;
mod register_app;
mod rotation;
mod runbook;
mod secret_files;
mod set_hrd_policy;
mod sign_in;
mod state_file;
mod target_guard;
mod teardown;
mod terminal_output;
mod transport;
mod verify_sync;
