//! Ctrl-C (SIGINT) and SIGTERM (`kill`, a CI job's cancel button, a container stopping) end a
//! tool the way a failure does, not the way a crash does: the work in flight is abandoned, the
//! document keeps everything that was done (`steps.<tool>.error` with kind `interrupted`, and
//! e.g. `publish.status: pending`), and the tool says it was interrupted and how to resume
//! (exit 130 for SIGINT, 143 for SIGTERM, as shells report them).
//!
//! The signals are caught by a small thread of its own from the start of a run — before the
//! document is read — so a tool that is still waiting for its stdin when the pipeline gets
//! Ctrl-C reads the whole document and hands it on rather than dying with it unread. A second
//! signal stops the tool at once (a person pressing Ctrl-C twice means it).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::sync::Notify;

use crate::error::{Error, Kind, Signal};

/// The first signal received (2 = SIGINT, 15 = SIGTERM), or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static ARRIVED: Notify = Notify::const_new();
static WATCHING: OnceLock<bool> = OnceLock::new();

/// Starts catching SIGINT and SIGTERM (once per process). Returns when the handlers are in place,
/// so nothing after it can be killed by the first signal. If they cannot be installed, the
/// signals keep their default effect (the tool stops at once).
pub fn watch(tool: &'static str) {
    WATCHING.get_or_init(|| {
        let (ready, installed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    let _ = ready.send(false);
                    return;
                };
                rt.block_on(wait_for_signals(tool, ready));
            });
        spawned.is_ok() && installed.recv().unwrap_or(false)
    });
}

#[cfg(unix)]
async fn wait_for_signals(tool: &'static str, ready: std::sync::mpsc::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = ready.send(false);
        return;
    };
    let _ = ready.send(true);
    loop {
        let signo = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        arrived(tool, signo);
    }
}

/// Windows: Ctrl-C and Ctrl-Break. The listeners are registered before `watch` returns (the
/// handler is installed when they are made, not when first polled), and kept for the whole run,
/// so no Ctrl-C falls to the default handler, which would end the process with nothing said.
#[cfg(windows)]
async fn wait_for_signals(tool: &'static str, ready: std::sync::mpsc::Sender<bool>) {
    use tokio::signal::windows::{ctrl_break, ctrl_c};
    let (Ok(mut c), Ok(mut b)) = (ctrl_c(), ctrl_break()) else {
        let _ = ready.send(false);
        return;
    };
    let _ = ready.send(true);
    loop {
        tokio::select! {
            Some(()) = c.recv() => {}
            Some(()) = b.recv() => {}
            else => return,
        }
        arrived(tool, 2);
    }
}

fn arrived(tool: &str, signo: i32) {
    if SIGNAL
        .compare_exchange(0, signo, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        ARRIVED.notify_one();
    } else {
        crate::output::ewriteln(&format!(
            "{tool}: interrupted again: stopping at once (what this run did may not be recorded)"
        ));
        std::process::exit(128 + signo);
    }
}

/// The signal that arrived, if one did: `"SIGINT"` or `"SIGTERM"`.
pub fn signalled() -> Option<&'static str> {
    signal().map(|s| match s {
        Signal::Terminate => "SIGTERM",
        Signal::Interrupt => "SIGINT",
    })
}

/// The signal that arrived, if one did.
fn signal() -> Option<Signal> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        15 => Some(Signal::Terminate),
        _ => Some(Signal::Interrupt),
    }
}

/// Resolves when a signal arrives (at once if one already has).
pub async fn arrival() {
    while signalled().is_none() {
        ARRIVED.notified().await;
    }
}

/// The error an interrupted run ends with (exit 130, or 143 for SIGTERM); `during` says what it
/// was doing.
pub fn error(during: &str) -> Error {
    let signal = signal().unwrap_or(Signal::Interrupt);
    let how = match signal {
        Signal::Terminate => "stopped by SIGTERM",
        Signal::Interrupt => "interrupted (Ctrl-C)",
    };
    Error::new(Kind::Interrupted(signal), format!("{how} while {during}"))
}
