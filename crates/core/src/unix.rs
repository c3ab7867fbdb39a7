//! The one Unix call std has no safe form for: signalling a whole process group (a child started
//! with `process_group(0)` and what it started in turn). Like `win.rs` on Windows, the only file
//! of this crate that may use `unsafe`.

#![allow(unsafe_code)]

/// Sends SIGKILL to the process group `pgid` (a child's id after `process_group(0)`). A group
/// that no longer exists is no error: there is nothing left to stop.
pub(crate) fn kill_process_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of this process; a negative
    // pid names the process group. ESRCH (already gone) is ignored on purpose.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
