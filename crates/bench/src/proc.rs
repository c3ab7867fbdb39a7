//! Child processes measured the way the kernel sees them: wall time from just before the spawn to
//! the reap, and the peak resident set (`ru_maxrss`) that `wait4` reports for that one child.

use std::process::Command;
use std::time::{Duration, Instant};

/// How one child ended.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: u32,
    /// Exit code, or 128 + signal number when a signal ended it.
    pub code: i32,
    /// When it was reaped.
    pub at: Instant,
    /// Peak resident set size in KiB (Linux reports `ru_maxrss` in KiB).
    pub maxrss_kib: u64,
    pub user: Duration,
    pub sys: Duration,
}

/// Waits for a child: `pid` > 0 for that child, -1 for whichever ends first.
#[allow(unsafe_code)]
pub fn wait4(pid: i32) -> std::io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid, exclusively borrowed out-pointers for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let at = Instant::now();
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            -1
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        return Ok(Reaped {
            pid: r as u32,
            code,
            at,
            maxrss_kib: ru.ru_maxrss.max(0) as u64,
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
        });
    }
}

/// One measured run of a command whose stdio the caller has set.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub wall: Duration,
    pub code: i32,
    pub maxrss_kib: u64,
}

/// Spawns `cmd` and reaps exactly that child (std's `Child` is dropped un-waited on purpose, so
/// `wait4` gets the child's own rusage).
pub fn run(cmd: &mut Command) -> std::io::Result<Run> {
    let t0 = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    drop(child);
    let r = wait4(pid)?;
    Ok(Run {
        wall: r.at.duration_since(t0),
        code: r.code,
        maxrss_kib: r.maxrss_kib,
    })
}
