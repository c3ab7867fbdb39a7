//! The `--state FILE` around a run: checked before the first request (it must be a regular file,
//! not a symbolic link, or not exist yet, in a folder that exists), locked while a tool works on
//! it so two tools on one file cannot lose each other's keys, and the base that relative paths
//! in the document (`secret.file`) are resolved against, so a customer's folder can be moved as
//! a whole.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::output::Reporter;

/// How long a second tool waits for the first to finish with the same `--state` file. Every
/// step but a publish finishes within seconds on a healthy tenant; a publish may take minutes,
/// and waiting that long in silence would look like a hang.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// An advisory lock on a sidecar file (`.<name>.lock` beside the state file), held until drop.
/// The state file itself cannot carry the lock: it is replaced by a rename on every save, and a
/// lock on the old inode would not stop a tool that opens the new one.
///
/// The sidecar is opened without following a symbolic link (a planted `.<name>.lock` link must
/// not make the tool create or truncate a file elsewhere) and removed when the lock is released.
/// Removing it is safe because every holder checks, once it has the lock, that the path still
/// names the file it locked: a tool that waited on a sidecar the previous holder has since
/// removed finds it gone, and opens and locks the path afresh (the usual lock-file protocol).
#[derive(Debug)]
pub struct StateLock {
    // Only Unix reads them (to remove the sidecar on drop); on Windows the open file is what
    // holds the lock until drop.
    #[cfg_attr(not(unix), allow(dead_code))]
    file: File,
    #[cfg_attr(not(unix), allow(dead_code))]
    path: PathBuf,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Removed while still locked, so no other tool can be holding this inode's lock. On
        // Windows an open file cannot be removed this way; the sidecar stays there.
        #[cfg(unix)]
        if names_same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Checks `--state` before anything is sent: an existing target must be a regular file, not a
/// symbolic link, and its folder must exist, so a run never does real work only to fail at the
/// end when the document cannot be written.
///
/// A link is refused, not followed: the save renames a new file over the path, which would
/// turn the link into a file and leave the file it names stale (and the lock would have been
/// taken on the other file's sidecar).
pub fn check_target(path: &Path, what: &str) -> Result<PathBuf> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let to = match std::fs::read_link(path) {
            Ok(t) => format!(" ({})", t.display()),
            Err(_) => String::new(),
        };
        return Err(Error::usage(format!(
            "{what} {} is a symbolic link; the tools never follow or replace a link",
            path.display()
        ))
        .with_hint(format!(
            "pass the real path of the file it points to{to} instead"
        )));
    }
    let resolved = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(parent).map_err(|e| {
                Error::usage(format!(
                    "{what} {}: its folder {} cannot be used ({e})",
                    path.display(),
                    parent.display()
                ))
                .with_hint("create the folder first, or give a path in an existing folder")
            })?;
            if !dir.is_dir() {
                return Err(Error::usage(format!(
                    "{what} {}: {} is not a folder",
                    path.display(),
                    parent.display()
                )));
            }
            let name = path.file_name().ok_or_else(|| {
                Error::usage(format!("{what} {} is not a file path", path.display()))
            })?;
            return Ok(dir.join(name));
        }
        Err(e) => {
            return Err(Error::usage(format!(
                "{what} {} cannot be used ({e})",
                path.display()
            )));
        }
    };
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| Error::usage(format!("{what} {} cannot be used ({e})", path.display())))?;
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{what} {} is not a regular file (a folder, device, pipe or socket); the tool only replaces regular files",
            path.display()
        ))
        .with_hint("give the path of a regular file (it is created if missing)"));
    }
    Ok(resolved)
}

impl StateLock {
    /// Locks the (resolved) state file's sidecar, waiting up to `wait` for another tool.
    pub fn acquire(resolved: &Path, wait: Duration, report: &Reporter) -> Result<StateLock> {
        let dir = resolved.parent().unwrap_or(Path::new("."));
        let name = resolved
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock_path = dir.join(format!(".{name}.lock"));
        let start = Instant::now();
        let mut said = false;
        let mut file = open_lock_file(&lock_path)?;
        loop {
            match file.try_lock() {
                Ok(()) if names_same_file(&file, &lock_path) => {
                    return Ok(StateLock {
                        file,
                        path: lock_path,
                    });
                }
                // The holder we waited for removed the sidecar on release (or it was
                // replaced): this lock excludes nobody. Lock what the path names now.
                Ok(()) => {
                    file = open_lock_file(&lock_path)?;
                    continue;
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(Error::internal(format!(
                        "cannot lock {} ({e})",
                        lock_path.display()
                    )));
                }
            }
            if start.elapsed() >= wait {
                return Err(Error::timeout(format!(
                    "another marketo-s2s tool is still working on {} after {} s",
                    resolved.display(),
                    wait.as_secs()
                ))
                .with_hint(
                    "run the tools on one state file one after the other; re-run this one when the other has finished",
                ));
            }
            if crate::interrupt::signalled().is_some() {
                return Err(crate::interrupt::error("waiting for the --state lock"));
            }
            if !said {
                report.say(&format!(
                    "waiting for another tool to finish with {}",
                    resolved.display()
                ));
                said = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Opens (creating it if needed) the sidecar, never through a symbolic link.
fn open_lock_file(lock_path: &Path) -> Result<File> {
    if std::fs::symlink_metadata(lock_path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::usage(format!(
            "the lock file {} for --state is a symbolic link; a lock file is never followed",
            lock_path.display()
        ))
        .with_hint("remove that link (the tools create the lock file themselves), then re-run"));
    }
    open_no_follow(lock_path).map_err(|e| {
        Error::usage(format!(
            "cannot create the lock file {} for --state ({e})",
            lock_path.display()
        ))
        .with_hint("the folder of the --state file must be writable")
    })
}

/// Whether `path` still names the file `file` has open (not removed or replaced since).
#[cfg(unix)]
fn names_same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn names_same_file(_file: &File, path: &Path) -> bool {
    path.is_file()
}

#[cfg(unix)]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("the lock file is not a regular file"));
    }
    Ok(f)
}

#[cfg(not(unix))]
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The state file a tool uses when it is given neither `--state` nor a document on stdin, as
/// terraform finds its state: on a terminal (stdin and stdout both), `./marketo-s2s.state.json`
/// if it exists (and it says so); otherwise it starts from nothing and names the `*.state.json`
/// files it sees here. In a pipeline (stdout not a terminal) nothing is assumed: the document
/// goes to the next tool.
pub fn default_for_terminal(report: &Reporter) -> Option<PathBuf> {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return None;
    }
    let default = Path::new(DEFAULT_STATE_FILE);
    if default.is_file() {
        report.say(&format!(
            "using ./{DEFAULT_STATE_FILE} from this folder (no --state given and nothing on stdin)"
        ));
        return Some(default.to_path_buf());
    }
    let here = state_files_near(Path::new(DEFAULT_STATE_FILE));
    if !here.is_empty() {
        report.say(&format!(
            "no --state given and nothing on stdin: starting from an empty document; state files here: {} (pass --state FILE to use one)",
            here.join(", ")
        ));
    }
    None
}

/// The file the runbooks and a terminal run use by default.
pub const DEFAULT_STATE_FILE: &str = "marketo-s2s.state.json";

/// The `*.state.json` files in the folder of `path` (at most ten, sorted), for an error about a
/// state file that is not there.
pub fn state_files_near(path: &Path) -> Vec<String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".state.json") && !n.starts_with('.'))
                .map(|n| crate::output::sanitize(&n).into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.truncate(10);
    names
}

/// Where relative paths in the document live: the folder of `--state`, or the current folder
/// for a document on a pipe.
pub fn base_dir(state_file: Option<&Path>) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match state_file.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd,
    }
}

/// A path from the document or a flag, made absolute: relative document paths are relative to
/// [`base_dir`]; flags are relative to the current folder, as every command line reads.
///
/// A path the document recorded on the other operating system (see [`foreign_path`]) resolves
/// as what it can only mean here: the file of that name beside the state file.
pub fn resolve_doc_path(state_file: Option<&Path>, p: &Path) -> PathBuf {
    if let Some(here) = p.to_str().and_then(foreign_path) {
        return base_dir(state_file).join(here);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir(state_file).join(p)
    }
}

/// A document path written on the other operating system, as a path relative to the state
/// file's folder (a customer's folder set up on Windows and checked on Linux, or the
/// reverse). On Unix, a Windows path: an absolute one (`C:\…`, `\\server\…`, `\…`) gives its
/// file name, a relative one (`secrets\x.secret`) the same path with `/`. On Windows, an
/// absolute Unix path (`/home/…`; not `//server/…`, a UNC path) gives its file name; a
/// relative `a/b` needs nothing, Windows reads `/` as a separator. `None` for a native path.
pub fn foreign_path(text: &str) -> Option<PathBuf> {
    let last = |t: &str| {
        t.rsplit(['/', '\\'])
            .find(|c| !c.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(windows) {
        return (text.starts_with('/') && !text.starts_with("//"))
            .then(|| last(text))
            .flatten();
    }
    let b = text.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    if drive || text.starts_with('\\') {
        return last(text);
    }
    text.contains('\\')
        .then(|| PathBuf::from(text.replace('\\', "/")))
}

/// How a path is recorded in the document: just the file name when it sits beside the
/// `--state` file (so the folder can be moved), else absolute (so a re-run from another folder
/// finds the same file).
pub fn doc_path_text(state_file: Option<&Path>, p: &Path) -> String {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if state_file.is_some() {
        let base = base_dir(state_file);
        let same = |a: &Path, b: &Path| {
            std::fs::canonicalize(a)
                .ok()
                .is_some_and(|x| std::fs::canonicalize(b).ok() == Some(x))
        };
        if let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) {
            if parent == base || same(parent, &base) {
                return name.to_string_lossy().into_owned();
            }
        }
    }
    abs.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.json");
        assert_eq!(
            check_target(&f, "--state").unwrap().file_name(),
            f.file_name()
        );
        std::fs::write(&f, "{}").unwrap();
        assert!(check_target(&f, "--state").is_ok());
        assert_eq!(
            check_target(dir.path(), "--state").unwrap_err().kind.code(),
            2
        );
        assert_eq!(
            check_target(Path::new("/dev/null"), "--state")
                .unwrap_err()
                .kind
                .code(),
            2
        );
        let e = check_target(&dir.path().join("no/such/x.json"), "--state").unwrap_err();
        assert_eq!(e.kind.code(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_refused_whether_it_names_a_file_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "{}").unwrap();
        for (name, to) in [
            ("link.json", real.clone()),
            ("dangling.json", dir.path().join("gone")),
        ] {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(&to, &link).unwrap();
            let e = check_target(&link, "--state").unwrap_err();
            assert_eq!(e.kind.code(), 2, "{name}");
            assert!(e.message.contains("symbolic link"), "{name}: {e}");
            assert!(e.hint.as_deref().unwrap().contains("real path"), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_lock_file_is_removed_on_release_and_a_waiter_locks_the_path_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.json");
        let lock = dir.path().join(".s.json.lock");
        let r = Reporter::new("t", true, 0);
        let first = StateLock::acquire(&f, Duration::ZERO, &r).unwrap();
        assert!(lock.is_file());
        // A second tool waits on the first one's sidecar...
        let waiter = std::thread::spawn(move || {
            let r = Reporter::new("t", true, 0);
            StateLock::acquire(&f, Duration::from_secs(5), &r).map(|l| l.path.clone())
        });
        std::thread::sleep(Duration::from_millis(200));
        // ...which is removed on release; the waiter then holds a lock on what the path names.
        drop(first);
        let got = waiter.join().unwrap().unwrap();
        assert_eq!(got, lock);
        assert!(!lock.exists(), "released, so removed again");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_file_is_refused_and_nothing_is_created_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("created-by-the-lock");
        std::os::unix::fs::symlink(&victim, dir.path().join(".s.json.lock")).unwrap();
        let r = Reporter::new("t", true, 0);
        let e = StateLock::acquire(&dir.path().join("s.json"), Duration::ZERO, &r).unwrap_err();
        assert_eq!(e.kind.code(), 2, "{e}");
        assert!(!victim.exists());
    }

    #[test]
    fn second_lock_waits_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.json");
        let r = Reporter::new("t", true, 0);
        let first = StateLock::acquire(&f, Duration::ZERO, &r).unwrap();
        let e = StateLock::acquire(&f, Duration::from_millis(120), &r).unwrap_err();
        assert_eq!(e.kind.code(), 5);
        drop(first);
        assert!(StateLock::acquire(&f, Duration::ZERO, &r).is_ok());
    }

    #[test]
    fn paths_beside_the_state_file_are_recorded_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.json");
        let secret = dir.path().join("x.secret");
        assert_eq!(doc_path_text(Some(&state), &secret), "x.secret");
        assert_eq!(
            resolve_doc_path(Some(&state), Path::new("x.secret")),
            secret
        );
        // Recorded on the other OS beside the state file: found beside it here.
        #[cfg(unix)]
        let foreign = [
            (r"C:\Users\me\contoso\x.secret", "x.secret"),
            (r"\\server\share\contoso\x.secret", "x.secret"),
            (r"secrets\x.secret", "secrets/x.secret"),
        ];
        #[cfg(windows)]
        let foreign = [
            ("/home/me/contoso/x.secret", "x.secret"),
            ("/x.secret", "x.secret"),
        ];
        for (recorded, here) in foreign {
            assert_eq!(
                resolve_doc_path(Some(&state), Path::new(recorded)),
                dir.path().join(here),
                "{recorded}"
            );
        }
        for native in ["x.secret", "a/b.secret"] {
            assert_eq!(foreign_path(native), None, "{native}");
        }
        let elsewhere = std::env::temp_dir().join("elsewhere.secret");
        assert!(Path::new(&doc_path_text(Some(&state), &elsewhere)).is_absolute());
        assert!(Path::new(&doc_path_text(None, &secret)).is_absolute());
    }
}
