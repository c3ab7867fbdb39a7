//! Files the tools are told to read or write, which they do not own:
//!
//! - atomic writes: a temporary file in the same directory, written, fsynced, renamed over the
//!   target, then the directory fsynced — a reader sees the old or the new file, never half;
//!   an existing target that is not a regular file is refused, so `--state /dev/null` or
//!   `--secret-file /dev/stdout` never turns a device into a file; a symbolic link is never
//!   followed nor replaced (the rename would turn the link into a file and leave the file it
//!   names stale), even one to a regular file or to nothing;
//! - bounded reads: a file is opened without blocking and read only if it is a regular file, so
//!   a FIFO (which would block until `--timeout` and beyond) is refused up front;
//! - paths from the document: a NUL byte or an empty path is bad input (exit 2), found before
//!   any request;
//! - directories: only the ones the tool creates are created private (0700); an existing one is
//!   never chmodded;
//! - on Windows, "mode 0600" is an owner-only DACL set when the file is created, and
//!   the rename is `MoveFileExW`, which fails cleanly when another program holds the target
//!   open ([`crate::win`]); [`check_private`] is the one "is this file private" check for both.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically. `mode` (e.g. 0o600) is applied when the temporary file is
/// created, so a secret is never readable by others, not even for an instant.
///
/// An existing target that is not a regular file (a device, FIFO, socket, directory or a
/// symbolic link to anything) is refused with [`std::io::ErrorKind::InvalidInput`] and left
/// alone; use [`write_file`] to get that as exit 2.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(no) = not_a_regular_file(path) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} {}; {}", path.display(), no.why, no.fix),
        ));
    }
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = open_new(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        rename_over(&tmp, path)?;
        // The rename is durable only once the directory entry is on disk.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// [`write_atomic`] with the error as the tools report it: a target that is not a regular file
/// is bad input (exit 2), any other failure exit 1; `what` names the flag or key
/// (`"--state"`, `"the token cache"`).
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, what: &str) -> Result<()> {
    check_write_target(path, what)?;
    write_atomic(path, bytes, mode).map_err(|e| {
        let err = Error::internal(format!("cannot write {what} {}: {e}", path.display()));
        if e.kind() == std::io::ErrorKind::InvalidInput {
            err.with_kind(crate::error::Kind::Usage)
        } else {
            err
        }
    })
}

/// Everything that can be known about a file the tool will write, before the first request:
/// not empty, no NUL byte, a file name (not a directory), an existing target is a regular file
/// (not a symbolic link, which is never followed), and its directory exists. Exit 2 naming
/// `what` otherwise.
///
/// Tools call this on `--state`, `--secret-file` and `secret.file` while checking their input,
/// so a bad target never costs a write on the service.
pub fn check_write_target(path: &Path, what: &str) -> Result<()> {
    check_path(path, what)?;
    if path.is_dir() || path.file_name().is_none() {
        return Err(Error::usage(format!(
            "{what} {} is a directory; give the path of the file to create",
            shown(path)
        )));
    }
    if let Some(no) = not_a_regular_file(path) {
        return Err(Error::usage(format!("{what} {} {}", shown(path), no.why)).with_hint(no.fix));
    }
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "{what} {}: the directory {} does not exist",
            shown(path),
            shown(&dir)
        ))
        .with_hint("create the directory first, or give a path in an existing one"));
    }
    Ok(())
}

/// A path given by the user or read from the state document: exit 2 when it is empty or holds a
/// NUL byte (which no file system accepts, so every use of it would fail — after the writes).
pub fn check_path(path: &Path, what: &str) -> Result<()> {
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.is_empty() {
        return Err(Error::usage(format!("{what} must not be empty")));
    }
    if bytes.contains(&0) {
        return Err(Error::usage(format!(
            "{what} {} contains a NUL byte, which no file name can hold",
            shown(path)
        ))
        .with_hint("fix the path in the flag or the state document and re-run"));
    }
    Ok(())
}

/// A path from a state-document string value (e.g. `secret.file`), checked as [`check_path`].
pub fn path_from_doc(value: &str, key: &str) -> Result<PathBuf> {
    let p = PathBuf::from(value);
    check_path(&p, &format!("state document key {key}"))?;
    Ok(p)
}

/// How long a token cache, a certificate or `--ca-file` may be: far more than any real one, and
/// a bound on what a wrong path can make the tool read.
pub const MAX_SMALL_FILE: u64 = 4 * 1024 * 1024;

/// Reads at most `max` bytes of a regular file. The file is opened non-blocking, so a FIFO
/// cannot block the tool, and anything but a regular file (after following a symlink) is
/// refused with [`std::io::ErrorKind::InvalidInput`]; a larger file with
/// [`std::io::ErrorKind::InvalidData`].
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = open_read_nonblocking(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind_of(&meta)
            ),
        ));
    }
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {max} bytes", path.display()),
        ));
    }
    Ok(buf)
}

/// The most of a secret file that is read: a client secret is 40 characters.
pub const SECRET_FILE_MAX: u64 = 64 * 1024;

/// The secret saved in a secret file (make-secret's format: the value, maybe with a newline),
/// read with [`read_regular`] (so never blocking on a FIFO) up to [`SECRET_FILE_MAX`] bytes.
/// `None` when the file holds only white space.
pub fn read_secret(path: &Path) -> std::io::Result<Option<secrecy::SecretString>> {
    let bytes = secrecy::SecretSlice::from(read_regular(path, SECRET_FILE_MAX)?);
    use secrecy::ExposeSecret;
    let text = String::from_utf8_lossy(bytes.expose_secret());
    let value = text.trim();
    Ok((!value.is_empty()).then(|| secrecy::SecretString::from(value.to_string())))
}

/// The fingerprint of a saved secret that the document may keep (`secret.sha256`): the lower-case
/// hex SHA-256 of the value as [`read_secret`] returns it (trimmed). It lets make-secret,
/// verify-sync and teardown tell their own secret file from any other without signing in, and
/// says nothing usable about the secret itself (a client secret has ~200 bits of entropy).
pub fn secret_sha256(secret: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.expose_secret().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `dir` and its missing parents with mode 0700 (unix; an owner-only DACL on Windows).
/// Directories that exist already
/// are left exactly as they are: the tool does not own them (`MKTO_S2S_TOKEN_CACHE=/tmp/x` must
/// not make `/tmp` private).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    #[cfg(windows)]
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    b.create(dir)?;
    #[cfg(windows)]
    for d in missing.iter().rev() {
        crate::win::make_private(d)?;
    }
    Ok(())
}

/// The rename of an atomic write. On Windows `std::fs::rename` is not used: its error for a
/// target held open by another program is a bare "Access is denied" (see [`crate::win::replace`]).
fn rename_over(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(windows)]
    {
        crate::win::replace(from, to)
    }
    #[cfg(not(windows))]
    {
        fs::rename(from, to)
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    }
}

/// Why an existing `path` may not be replaced, and what to give instead.
struct NotRegular {
    why: String,
    fix: &'static str,
}

/// `None` when `path` is missing or a regular file. The link itself is looked at, never what
/// it names: the rename of an atomic write replaces a symbolic link (turning it into a file and
/// leaving the file it names stale), so a link is refused, even one to a regular file or to
/// nothing.
fn not_a_regular_file(path: &Path) -> Option<NotRegular> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Some(NotRegular {
            why: "is a symbolic link, not a regular file; a link is never followed or replaced"
                .to_string(),
            fix: "give the path of the file it points to (the real path), or remove the link",
        }),
        Ok(m) if m.is_file() => None,
        Ok(m) => Some(NotRegular {
            why: format!("is {}, not a regular file", kind_of(&m)),
            fix: "give the path of a regular file (it is replaced atomically, so a device, FIFO \
                  or socket cannot be a target)",
        }),
        Err(_) => None,
    }
}

fn kind_of(m: &fs::Metadata) -> &'static str {
    if m.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// A path for a message: control characters escaped (it may come from the document).
fn shown(path: &Path) -> String {
    crate::output::sanitize(&path.display().to_string()).into_owned()
}

#[cfg(unix)]
fn open_read_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, for ever.
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_read_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

#[cfg(unix)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// On Windows a private mode (nothing for group or others) is an owner-only DACL, in place
/// from the moment the file exists.
#[cfg(windows)]
fn open_new(path: &Path, mode: u32) -> std::io::Result<File> {
    if mode & 0o077 == 0 {
        return crate::win::create_private(path);
    }
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(not(any(unix, windows)))]
fn open_new(path: &Path, _mode: u32) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// The permission bits of a file (unix), for checks such as "the secret file is 0600".
#[cfg(unix)]
pub fn mode_of(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

/// Whether a secret file is private to its owner: on Unix no permission bit for group or others
/// (0600 or stricter); on Windows no DACL entry that lets another account or group open it
/// (SYSTEM and Administrators, which can take any file as root can, are accepted). `Err` says,
/// for people, what is too open (e.g. "mode 0644: group and others can read it", "its access
/// list lets Everyone (S-1-1-0) open it").
pub fn check_private(path: &Path) -> std::result::Result<(), String> {
    #[cfg(unix)]
    {
        let mode = mode_of(path).map_err(|e| format!("cannot read its permissions: {e}"))?;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode {mode:04o}: {} can {}",
                match (mode & 0o070 != 0, mode & 0o007 != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                },
                if mode & 0o044 != 0 {
                    "read it"
                } else {
                    "open it"
                }
            ));
        }
        Ok(())
    }
    #[cfg(windows)]
    {
        match crate::win::private_problem(path) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(why),
            Err(e) => Err(format!("cannot read its permissions: {e}")),
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        Ok(())
    }
}

/// Makes a file private to its owner (0600 on Unix; an owner-only DACL on Windows).
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(windows)]
    {
        crate::win::make_private(path)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::error::Kind;
    use std::os::unix::fs::PermissionsExt;

    fn fifo(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfifo");
        p
    }

    #[test]
    fn a_file_open_to_group_or_others_is_not_private_until_made_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        fs::write(&p, b"x").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let why = check_private(&p).unwrap_err();
        assert!(
            why.contains("0644") && why.contains("group and others"),
            "{why}"
        );
        make_private(&p).unwrap();
        assert_eq!(mode_of(&p).unwrap(), 0o600);
        assert!(check_private(&p).is_ok());
    }

    #[test]
    fn write_atomic_replaces_a_regular_file_with_the_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(mode_of(&p).unwrap(), 0o600);
    }

    #[test]
    fn write_atomic_never_replaces_a_special_file_even_behind_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let f = fifo(d.path(), "pipe");
        for target in [Path::new("/dev/null"), &link, &f, d.path()] {
            let e = write_atomic(target, b"x", 0o600).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{target:?}");
            let e = write_file(target, b"x", 0o600, "--state").unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{target:?}: {e}");
        }
        // Nothing was replaced, and no temporary file was left behind.
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!fs::metadata("/dev/null").unwrap().is_file());
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn write_atomic_never_replaces_a_symlink_to_a_regular_file_or_to_nothing() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.json");
        fs::write(&real, "old").unwrap();
        let to_file = d.path().join("link.json");
        std::os::unix::fs::symlink(&real, &to_file).unwrap();
        let dangling = d.path().join("dangling.secret");
        std::os::unix::fs::symlink(d.path().join("gone"), &dangling).unwrap();
        for link in [&to_file, &dangling] {
            let e = write_atomic(link, b"new", 0o600).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{link:?}");
            assert!(e.to_string().contains("symbolic link"), "{e}");
            let e = write_file(link, b"new", 0o600, "--secret-file").unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{link:?}: {e}");
            let e = check_write_target(link, "--secret-file").unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{link:?}: {e}");
            assert!(e.message.contains("symbolic link"), "{e}");
            assert!(fs::symlink_metadata(link).unwrap().file_type().is_symlink());
        }
        assert_eq!(fs::read_to_string(&real).unwrap(), "old");
        assert!(!d.path().join("gone").exists());
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "no temporary file left behind");
    }

    #[test]
    fn check_write_target_finds_bad_targets_before_any_write() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("new.secret");
        check_write_target(&ok, "--secret-file").unwrap();
        for (p, needle) in [
            (PathBuf::from(""), "must not be empty"),
            (PathBuf::from("/dev/null"), "not a regular file"),
            (PathBuf::from("/nonexistent-dir/x.json"), "does not exist"),
            (d.path().to_path_buf(), "is a directory"),
            (PathBuf::from("a\0b"), "NUL byte"),
        ] {
            let e = check_write_target(&p, "--secret-file").unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{p:?}");
            assert!(e.message.contains(needle), "{p:?}: {e}");
            assert!(!e.message.contains('\0'));
        }
        let e = path_from_doc("x\0.secret", "secret.file").unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert!(e.message.contains("secret.file"), "{e}");
    }

    #[test]
    fn read_secret_trims_treats_blank_as_none_and_bounds_the_size() {
        use secrecy::ExposeSecret;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.secret");
        fs::write(&p, "  abc~def \n").unwrap();
        assert_eq!(read_secret(&p).unwrap().unwrap().expose_secret(), "abc~def");
        fs::write(&p, " \n\t").unwrap();
        assert!(read_secret(&p).unwrap().is_none());
        fs::write(&p, vec![b'a'; SECRET_FILE_MAX as usize + 1]).unwrap();
        assert_eq!(
            read_secret(&p).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        let f = fifo(d.path(), "fifo");
        assert_eq!(
            read_secret(&f).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn read_regular_refuses_a_fifo_at_once_and_bounds_the_size() {
        let d = tempfile::tempdir().unwrap();
        let f = fifo(d.path(), "secret");
        let t0 = std::time::Instant::now();
        let e = read_regular(&f, 1024).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        let p = d.path().join("big");
        fs::write(&p, vec![b'a'; 2048]).unwrap();
        assert_eq!(
            read_regular(&p, 1024).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(read_regular(&p, 4096).unwrap().len(), 2048);
    }

    #[test]
    fn only_directories_it_creates_are_made_private() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let made = d.path().join("a/b");
        create_private_dir_all(&made).unwrap();
        assert_eq!(mode_of(&made).unwrap(), 0o700);
        assert_eq!(mode_of(&d.path().join("a")).unwrap(), 0o700);
        // The existing parent is untouched.
        assert_eq!(mode_of(d.path()).unwrap(), 0o755);
        create_private_dir_all(d.path()).unwrap();
        assert_eq!(mode_of(d.path()).unwrap(), 0o755);
    }
}

#[cfg(test)]
mod fingerprint_tests {
    #[test]
    fn the_fingerprint_is_sha256_hex_of_the_trimmed_value() {
        let s = secrecy::SecretString::from("abc".to_string());
        assert_eq!(
            super::secret_sha256(&s),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

/// Whether two paths name one file: by the file itself when both exist (`..`, a symbolic link
/// to the folder, and on Windows another letter case all resolve to it), otherwise by the
/// absolute paths (compared without regard to case on Windows, whose file names are so).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        return x == y;
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (x, y) = (abs(a), abs(b));
    if cfg!(windows) {
        x.to_string_lossy().to_lowercase() == y.to_string_lossy().to_lowercase()
    } else {
        x == y
    }
}

#[cfg(test)]
mod same_file_tests {
    use super::same_file;

    #[test]
    fn one_file_by_two_spellings_is_the_same_and_two_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("x.secret");
        std::fs::write(&file, "s").unwrap();
        assert!(same_file(
            &file,
            &sub.join("..").join("sub").join("x.secret")
        ));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&sub, &link).unwrap();
            assert!(same_file(&file, &link.join("x.secret")));
        }
        std::fs::write(sub.join("y.secret"), "t").unwrap();
        assert!(!same_file(&file, &sub.join("y.secret")));
        // Not there (yet): compared as paths.
        assert!(same_file(&sub.join("new"), &sub.join("new")));
        assert!(!same_file(&sub.join("new"), &sub.join("other")));
    }
}
