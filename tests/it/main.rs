//! Integration tests: every tool run as a real process against the in-process emulator
//! (`tenant_sim::TestServer` on 127.0.0.1:0), never against the internet or a mock.

mod common;
mod register_app;
