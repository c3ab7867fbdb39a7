//! The Windows system calls of the tools, in one file because each one is an
//! `unsafe` call into the Win32 API; every other file calls the safe functions here.
//!
//! - **Owner-only files**: the Windows form of mode 0600 is a *protected* DACL (no entry
//!   inherited from the folder) with one entry, full control for the current user, who is also
//!   the owner. [`create_private`] creates a file with that DACL already in place (not set
//!   afterwards: a handle opened in between would keep its access), [`make_private`] puts it on
//!   an existing file, and [`private_problem`] says what makes a file readable by others.
//!   Access control lists:
//!   <https://learn.microsoft.com/en-us/windows/win32/secauthz/access-control-lists>; SDDL:
//!   <https://learn.microsoft.com/en-us/windows/win32/secauthz/security-descriptor-string-format>.
//! - **Atomic replace**: [`replace`] is `MoveFileExW(MOVEFILE_REPLACE_EXISTING |
//!   MOVEFILE_WRITE_THROUGH)`; a target another program holds open (an editor, a virus scanner,
//!   Explorer's preview) makes it fail with a sharing violation or "access denied", retried
//!   briefly and then reported, with the target unchanged.
//! - **`< NUL`**: [`stdin_is_char_device`] tells the NUL device (an explicit "no document", as
//!   `/dev/null` is on Unix) from an empty pipe.
//! - **The console**: [`enable_vt_on_stderr`] turns on escape-sequence processing so the
//!   progress spinner redraws its line on a Windows console as it does on a Unix terminal.
//! - **`az`**: [`find_program`] searches `PATH` with `PATHEXT`, which Rust's `Command` does not
//!   apply, so the Azure CLI's `az.cmd` is found.

#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, ERROR_SHARING_VIOLATION, GENERIC_WRITE, HANDLE,
    INVALID_HANDLE_VALUE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_SIZE_INFORMATION, AclSizeInformation,
    DACL_SECURITY_INFORMATION, GetAce, GetAclInformation, GetSecurityDescriptorControl,
    GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, GetTokenInformation, INHERIT_ONLY_ACE,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SE_DACL_PROTECTED, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::{
    CREATE_NEW, CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_TYPE_CHAR, GetFileType,
    MOVEFILE_REPLACE_EXISTING, MOVEFILE_WRITE_THROUGH, MoveFileExW,
};
use windows_sys::Win32::System::Console::{
    ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle, STD_ERROR_HANDLE,
    SetConsoleMode,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// ACE types and the SIDs the private check knows by name (winnt.h; well-known SIDs:
/// <https://learn.microsoft.com/en-us/windows/win32/secauthz/well-known-sids>).
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACCESS_DENIED_ACE_TYPE: u8 = 1;
const SYSTEM: &str = "S-1-5-18";
const ADMINISTRATORS: &str = "S-1-5-32-544";

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// A path for the wide file calls, NUL-terminated: made absolute (`std::path::absolute` is
/// `GetFullPathNameW` here, which resolves `.` and `..`) and in the `\\?\` form, so a long
/// folder is no limit (std does the same for its own calls; these do not go through std).
fn wide_path(path: &Path) -> Vec<u16> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let units: Vec<u16> = abs.as_os_str().encode_wide().collect();
    let mut v = crate::winpath::windows_verbatim(&units);
    v.push(0);
    v
}

/// A NUL-terminated UTF-16 string allocated by Windows (`LocalAlloc`), as text; frees it.
///
/// # Safety
/// `p` is null or a NUL-terminated string from `LocalAlloc` that nothing else frees.
unsafe fn take_local_wstr(p: *mut u16) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller promises a NUL-terminated string; reading stops at the NUL.
    let text = unsafe {
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
    };
    // SAFETY: allocated with LocalAlloc by the API that returned it, freed once here.
    unsafe { LocalFree(p.cast()) };
    text
}

/// A security descriptor made by `ConvertStringSecurityDescriptorToSecurityDescriptorW`,
/// freed with `LocalFree` on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Drop for Descriptor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the API with LocalAlloc; dropped once.
            unsafe { LocalFree(self.0) };
        }
    }
}

fn sid_text(sid: PSID) -> io::Result<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` points into a live token or ACL buffer; `text` is an out-pointer.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ConvertSidToStringSidW returns a LocalAlloc'd NUL-terminated string.
    Ok(unsafe { take_local_wstr(text) })
}

/// The SID of the user this process runs as (`S-1-5-21-…`).
pub fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` is an out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle OpenProcessToken just returned, owned (closed) from here on.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut len = 0u32;
    // SAFETY: a size query: no buffer, `len` receives the size needed.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            std::ptr::null_mut(),
            0,
            &mut len,
        )
    };
    // u64s: the buffer holds pointers, so it must be pointer-aligned.
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` has room for `len` bytes.
    if unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buf.as_mut_ptr().cast(),
            len,
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled `buf` with a TOKEN_USER whose SID points into `buf`, which lives
    // until the end of this function.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    sid_text(user.User.Sid)
}

/// The owner-only descriptor in SDDL: owner and only entry the current user, full control,
/// protected from inheritance (`P`). For a folder the entry is inherited by what is created in
/// it (`OICI`), so its files start private too.
fn private_sddl(for_dir: bool) -> io::Result<String> {
    let sid = current_user_sid()?;
    let inherit = if for_dir { "OICI" } else { "" };
    Ok(format!("O:{sid}D:P(A;{inherit};FA;;;{sid})"))
}

fn descriptor(sddl: &str) -> io::Result<Descriptor> {
    let sddl = wide(OsStr::new(sddl));
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `sddl` is NUL-terminated; `sd` is an out-pointer freed by `Descriptor`.
    if unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut sd,
            std::ptr::null_mut(),
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(Descriptor(sd))
}

/// Creates a new file (failing if it exists) with the owner-only DACL in place from the start.
pub fn create_private(path: &Path) -> io::Result<std::fs::File> {
    let sd = descriptor(&private_sddl(false)?)?;
    let attrs = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let name = wide_path(path);
    // SAFETY: `name` is NUL-terminated and `attrs` (and the descriptor it points to) outlive
    // the call. No sharing: nobody else may open the file while it is being written.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_WRITE,
            0,
            &attrs,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a valid handle CreateFileW just returned; the File owns it from here on.
    Ok(unsafe { std::fs::File::from_raw_handle(h) })
}

/// Puts the owner-only DACL on an existing file or folder, replacing its entries and cutting
/// inheritance from its parent.
pub fn make_private(path: &Path) -> io::Result<()> {
    set_dacl(path, &private_sddl(path.is_dir())?)
}

/// Replaces the DACL of a file or folder with the one of `sddl` (e.g. `D:P(A;;FA;;;S-1-…)`),
/// protected from inheritance when the SDDL says `P`. The owner is left as it is.
pub fn set_dacl(path: &Path, sddl: &str) -> io::Result<()> {
    const UNPROTECTED_DACL_SECURITY_INFORMATION: u32 = 0x2000_0000;
    let sd = descriptor(sddl)?;
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: `sd` is a valid descriptor; the DACL pointer points into it.
    if unsafe { GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut control = 0u16;
    let mut revision = 0u32;
    // SAFETY: a valid descriptor; out-pointers.
    unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut revision) };
    let inheritance = if control & SE_DACL_PROTECTED != 0 {
        PROTECTED_DACL_SECURITY_INFORMATION
    } else {
        UNPROTECTED_DACL_SECURITY_INFORMATION
    };
    let name = wide_path(path);
    // SAFETY: `name` is NUL-terminated and `dacl` lives in `sd`, alive for the call.
    let err = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | inheritance,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            dacl,
            std::ptr::null(),
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    Ok(())
}

/// One entry of a file's DACL, as the checks read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `A` (allow), `D` (deny) or the ACE type number.
    pub kind: String,
    pub sid: String,
    pub mask: u32,
    /// Came from the parent folder (`INHERITED_ACE`).
    pub inherited: bool,
    /// Applies only to what is created inside (a folder's `INHERIT_ONLY_ACE`).
    pub inherit_only: bool,
}

/// A file's DACL: whether it is protected from inheritance, its owner, and its entries;
/// `entries` is `None` for a NULL DACL (everyone has full access).
#[derive(Debug, Clone)]
pub struct Dacl {
    pub protected: bool,
    pub owner: String,
    pub entries: Option<Vec<Entry>>,
}

/// Reads the owner and DACL of a file or folder.
pub fn dacl_of(path: &Path) -> io::Result<Dacl> {
    let name = wide_path(path);
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; the out-pointers point into `sd`, freed below.
    let err = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | OWNER_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    read_descriptor(&Descriptor(sd))
}

/// The owner, protection and entries of a security descriptor.
fn read_descriptor(sd: &Descriptor) -> io::Result<Dacl> {
    const INHERITED_ACE: u8 = 0x10;
    let mut owner: PSID = std::ptr::null_mut();
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = std::ptr::null_mut();
    // SAFETY: a valid descriptor; the pointers returned point into it, alive while `sd` is.
    unsafe {
        GetSecurityDescriptorOwner(sd.0, &mut owner, &mut defaulted);
        if GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) == 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if present == 0 {
        dacl = std::ptr::null_mut();
    }
    let mut control = 0u16;
    let mut revision = 0u32;
    // SAFETY: a valid descriptor; out-pointers.
    unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut revision) };
    let protected = control & SE_DACL_PROTECTED != 0;
    let owner = if owner.is_null() {
        String::new()
    } else {
        sid_text(owner)?
    };
    if dacl.is_null() {
        return Ok(Dacl {
            protected,
            owner,
            entries: None,
        });
    }
    let mut info = ACL_SIZE_INFORMATION {
        AceCount: 0,
        AclBytesInUse: 0,
        AclBytesFree: 0,
    };
    // SAFETY: `dacl` points into `sd`; `info` has the size passed.
    if unsafe {
        GetAclInformation(
            dacl,
            (&mut info as *mut ACL_SIZE_INFORMATION).cast(),
            std::mem::size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut entries = Vec::new();
    for i in 0..info.AceCount {
        let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
        // SAFETY: `i` < AceCount; `ace` points into the DACL, alive while `sd` is.
        if unsafe { GetAce(dacl, i, &mut ace) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: every ACE starts with an ACE_HEADER.
        let header = unsafe { &*ace.cast::<ACE_HEADER>() };
        let (kind, sid, mask) = match header.AceType {
            // Allow and deny entries share one layout: header, mask, SID.
            t @ (ACCESS_ALLOWED_ACE_TYPE | ACCESS_DENIED_ACE_TYPE) => {
                // SAFETY: the type says this layout; the SID starts at SidStart.
                let a = unsafe { &*ace.cast::<ACCESS_ALLOWED_ACE>() };
                let sid = sid_text((&a.SidStart as *const u32).cast_mut().cast())?;
                let kind = if t == ACCESS_ALLOWED_ACE_TYPE {
                    "A"
                } else {
                    "D"
                };
                (kind.to_string(), sid, a.Mask)
            }
            other => (other.to_string(), String::new(), 0),
        };
        entries.push(Entry {
            kind,
            sid,
            mask,
            inherited: header.AceFlags & INHERITED_ACE != 0,
            inherit_only: u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0,
        });
    }
    Ok(Dacl {
        protected,
        owner,
        entries: Some(entries),
    })
}

/// What lets someone other than the current user open the file, or `None` when nobody can:
/// an allow entry for another account or group. SYSTEM and Administrators are accepted, as root
/// is on Unix: they can take any file on the machine. An entry type this check does not read is
/// counted as open.
pub fn private_problem(path: &Path) -> io::Result<Option<String>> {
    let me = current_user_sid()?;
    let dacl = dacl_of(path)?;
    let Some(entries) = dacl.entries else {
        return Ok(Some(
            "it has no access list (a NULL DACL): everyone can open it".to_string(),
        ));
    };
    for e in entries.iter().filter(|e| !e.inherit_only) {
        match e.kind.as_str() {
            "D" => {}
            "A" if e.sid == me || e.sid == SYSTEM || e.sid == ADMINISTRATORS => {}
            "A" => {
                return Ok(Some(format!(
                    "its access list lets {} open it",
                    account_name(&e.sid)
                )));
            }
            other => {
                return Ok(Some(format!(
                    "its access list has an entry of type {other} that may let others open it"
                )));
            }
        }
    }
    Ok(None)
}

/// A readable name for the SIDs a too-open file usually names.
fn account_name(sid: &str) -> String {
    let name = match sid {
        "S-1-1-0" => "Everyone",
        "S-1-5-32-545" => "Users (BUILTIN\\Users)",
        "S-1-5-11" => "Authenticated Users",
        "S-1-5-32-546" => "Guests",
        "S-1-5-4" => "INTERACTIVE",
        "S-1-3-0" => "CREATOR OWNER",
        _ => return format!("another account ({sid})"),
    };
    format!("{name} ({sid})")
}

/// Replaces `to` with `from` in one step (`MoveFileExW` with `MOVEFILE_REPLACE_EXISTING |
/// MOVEFILE_WRITE_THROUGH`, so the new name is on disk when it returns). A target held open by
/// another program is retried for up to two seconds (a virus scanner or the search indexer lets
/// go quickly), then reported as such; `to` is unchanged either way.
pub fn replace(from: &Path, to: &Path) -> io::Result<()> {
    let a = wide_path(from);
    let b = wide_path(to);
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        // SAFETY: both names are NUL-terminated.
        if unsafe {
            MoveFileExW(
                a.as_ptr(),
                b.as_ptr(),
                MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH,
            )
        } != 0
        {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        let held = matches!(
            e.raw_os_error().map(|c| c as u32),
            Some(ERROR_SHARING_VIOLATION | ERROR_ACCESS_DENIED | ERROR_LOCK_VIOLATION)
        );
        if !held {
            return Err(e);
        }
        if start.elapsed() >= Duration::from_secs(2) {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "another program has it open, or it is read-only ({e}); close it there \
                     (an editor, a viewer, a sync client) and re-run: the file was left as it was"
                ),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Is stdin a character device that is not a console, i.e. `< NUL`?
pub fn stdin_is_char_device() -> bool {
    let stdin = std::io::stdin();
    let h = stdin.as_raw_handle();
    // SAFETY: GetFileType only reads the handle's type; an invalid handle answers UNKNOWN.
    !h.is_null() && unsafe { GetFileType(h) } == FILE_TYPE_CHAR
}

/// Turns on escape-sequence processing on a stderr console (Windows 10 1511 and later), so
/// `\r\x1b[2K` redraws the spinner's line. `false` when stderr is not a console or the console
/// is too old; the caller then draws without escapes.
pub fn enable_vt_on_stderr() -> bool {
    // SAFETY: GetStdHandle returns this process's stderr handle (or null/invalid); the mode
    // calls only read and set that console's flags.
    unsafe {
        let h = GetStdHandle(STD_ERROR_HANDLE);
        if h.is_null() || h == INVALID_HANDLE_VALUE {
            return false;
        }
        let mut mode = 0;
        if GetConsoleMode(h, &mut mode) == 0 {
            return false;
        }
        mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
            || SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
    }
}

/// The program `name` as Windows' shells find it: each folder of `PATH` in order, each
/// extension of `PATHEXT` (default `.COM;.EXE;.BAT;.CMD`), so `az` is found as `az.cmd`. The
/// current folder is not searched first (as `cmd.exe` would): a state folder must not be able
/// to supply an `az.cmd`. `None` when it is nowhere.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    find_program_in(name, &path, &std::env::var("PATHEXT").unwrap_or_default())
}

fn find_program_in(name: &str, path: &OsStr, pathext: &str) -> Option<PathBuf> {
    let exts: Vec<&str> = if pathext.trim().is_empty() {
        vec![".COM", ".EXE", ".BAT", ".CMD"]
    } else {
        pathext.split(';').filter(|e| !e.is_empty()).collect()
    };
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .find_map(|dir| {
            exts.iter()
                .map(|ext| dir.join(format!("{name}{ext}")))
                .find(|p| p.is_file())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`create_private`] and [`make_private`] ask Windows for, read back from the
    /// descriptor itself: Wine keeps no DACL on disk (it maps one to Unix mode bits and shows
    /// a DACL made from those), so the file's own DACL can prove this only on Windows.
    #[test]
    fn the_private_descriptor_is_protected_with_one_entry_for_the_current_user() {
        const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
        let me = current_user_sid().unwrap();
        assert!(me.starts_with("S-1-5-"), "{me}");
        for dir in [false, true] {
            let d = read_descriptor(&descriptor(&private_sddl(dir).unwrap()).unwrap()).unwrap();
            assert!(d.protected, "{d:?}");
            assert_eq!(d.owner, me);
            let e = d.entries.unwrap();
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!((e[0].kind.as_str(), e[0].sid.as_str()), ("A", me.as_str()));
            assert_eq!(e[0].mask, FILE_ALL_ACCESS);
            assert!(!e[0].inherited && !e[0].inherit_only);
        }
    }

    #[test]
    fn a_dacl_with_anyone_else_is_named_and_system_and_administrators_are_not() {
        let me = current_user_sid().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, "x").unwrap();
        set_dacl(&p, &format!("D:P(A;;FA;;;{me})(A;;FR;;;WD)")).unwrap();
        let why = private_problem(&p).unwrap().unwrap();
        assert!(why.contains("Everyone (S-1-1-0)"), "{why}");
        // Wine keeps mode bits only: it shows any group as Everyone, and a DACL set on an
        // existing file never takes bits away (it chmods only when the owner's bits change).
        // So these two hold on Windows only.
        if !under_wine() {
            set_dacl(&p, &format!("D:P(A;;FA;;;{me})(A;;FA;;;SY)(A;;FA;;;BA)")).unwrap();
            assert_eq!(private_problem(&p).unwrap(), None);
            set_dacl(&p, &format!("D:P(A;;FA;;;{me})(A;;FR;;;WD)")).unwrap();
            make_private(&p).unwrap();
            assert_eq!(private_problem(&p).unwrap(), None);
        }
    }

    fn under_wine() -> bool {
        let root = std::env::var("SystemRoot").unwrap_or_default();
        Path::new(&root).join("system32/winecfg.exe").is_file()
    }

    #[test]
    fn find_program_applies_pathext_and_skips_relative_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("az.cmd"), "@echo off\r\n").unwrap();
        let path = std::env::join_paths([Path::new("relative"), dir.path()]).unwrap();
        // Found as Windows' default PATHEXT spells it (`az.CMD`): the file system ignores case.
        let found = find_program_in("az", &path, "").unwrap();
        assert!(
            found
                .to_string_lossy()
                .eq_ignore_ascii_case(&dir.path().join("az.cmd").to_string_lossy()),
            "{found:?}"
        );
        assert_eq!(find_program_in("az", &path, ".EXE;.COM"), None);
        assert_eq!(find_program_in("az", OsStr::new("relative"), ""), None);
    }
}
