//! Integration tests: every tool run as a real process against the in-process emulator
//! (`tenant_sim::TestServer` on 127.0.0.1:0), never against the internet or a mock.

// The suite drives the tools as a Unix shell does (modes, FIFOs, symlinks, /dev/null, bash
// runbooks); the Windows side is tests/windows, run under Wine by scripts/windows-check.sh.
#![cfg(unix)]
// A test that cannot unwrap should fail loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod add_sync_filter;
mod assign_role;
mod auth;
mod chaos;
mod common;
mod configure_marketo;
mod daily;
mod demo;
mod fleet;
mod grant_consent;
mod hardening;
mod help;
mod hints;
mod hostile;
mod interrupted;
mod make_secret;
mod monitoring;
mod ownership;
mod pipeline;
mod platform;
mod preflight;
mod publish_customizations;
mod register_app;
mod resume;
mod rotation;
mod runbook;
mod runbooks;
mod safety;
mod secret_files;
mod set_hrd_policy;
mod signin;
mod strict;
mod teardown;
mod transport;
mod usability;
mod verify_sync;
