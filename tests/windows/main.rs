//! What must be right on Windows, each point as a test that runs the real tools as
//! Windows processes. On Linux this binary is empty; `scripts/windows-check.sh` builds it for
//! `x86_64-pc-windows-gnu` and runs it under Wine (`cargo test --target x86_64-pc-windows-gnu
//! --test windows`, with wine as the runner), against the in-process emulator as `tests/it`
//! does.
//!
//! | module | what |
//! |---|---|
//! | `files` | owner-only DACLs on the state and secret files, a too-open secret file, atomic replace while another process holds the file, the `--state` lock, a `secret.file` recorded on Linux |
//! | `signin` | `az` found as `az.cmd` and its errors, the token cache under `%LOCALAPPDATA%` |
//! | `stdin` | a UTF-8 BOM and CRLF from PowerShell, `< NUL` against an empty pipe |

#![cfg(windows)]
// A test that cannot unwrap should fail loudly; that is what unwrap is for here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod files;
mod signin;
mod stdin;
mod support;
