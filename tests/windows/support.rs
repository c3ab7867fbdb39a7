//! Running a tool as Windows runs it: the `.exe` beside this test's folder, an environment with
//! what Windows itself needs and nothing of the developer's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use test_support::{Run, Sim};

/// `target\<triple>\debug\<tool>.exe`: this test binary lives in `debug\deps`.
pub fn exe(tool: &str) -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    me.parent()
        .and_then(Path::parent)
        .expect("target folder")
        .join(format!("{tool}.exe"))
}

/// A command for `tool` signed in as the emulator's admin. The environment is cleared, then
/// given what a Windows process needs (`SystemRoot`, `windir`, `ComSpec`, `PATHEXT`, `TEMP`;
/// Winsock does not start without `SystemRoot`), `PATH` = system32 only, and `LOCALAPPDATA` /
/// `USERPROFILE` inside the test's folder, so no test touches the developer's token cache.
pub fn cmd(sim: &Sim, tool: &str) -> Command {
    let mut c = Command::new(exe(tool));
    c.env_clear();
    for k in [
        "SystemRoot",
        "windir",
        "SystemDrive",
        "ComSpec",
        "PATHEXT",
        "TEMP",
        "TMP",
    ] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c.env("PATH", system_path())
        .env("LOCALAPPDATA", sim.path("AppData").join("Local"))
        .env("USERPROFILE", sim.dir())
        .envs(sim.env())
        .current_dir(sim.dir())
        .stdin(Stdio::null());
    c
}

/// `%SystemRoot%\system32;%SystemRoot%` (cmd.exe for a batch file is found there).
pub fn system_path() -> String {
    let root = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
    format!(r"{root}\system32;{root}")
}

/// Runs `c`; `stdin` None keeps what `c` has (the NUL device unless set), Some(bytes) pipes
/// them.
pub fn run(mut c: Command, stdin: Option<&[u8]>) -> Run {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c.spawn().expect("spawn tool");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(bytes).expect("write stdin");
    }
    Run::from_output(child.wait_with_output().expect("wait tool"))
}

/// `tool --state <state> args…` with stdin from NUL.
pub fn on_state(sim: &Sim, tool: &str, state: &Path, args: &[&str]) -> Run {
    let mut c = cmd(sim, tool);
    c.arg("--state").arg(state).args(args);
    run(c, None)
}

/// The first steps of the chain on `state`, up to make-secret with `secret`.
pub fn setup_to_secret(sim: &Sim, state: &Path, secret: &Path) {
    on_state(sim, "register-app", state, &[]).ok();
    on_state(sim, "grant-consent", state, &[]).ok();
    on_state(
        sim,
        "make-secret",
        state,
        &["--secret-file", secret.to_str().expect("path")],
    )
    .ok();
}

/// The state file's document.
pub fn doc(state: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state).expect("state file")).expect("JSON")
}

/// Under Wine rather than Windows: Wine keeps no DACL on disk. It turns a DACL into Unix mode
/// bits and shows a DACL made from those (SYSTEM, the owner, Everyone when others have bits),
/// so only the effect can be checked there; the exact descriptor the tools ask for is checked
/// by core's unit tests (`win::tests`).
pub fn under_wine() -> bool {
    let root = std::env::var("SystemRoot").unwrap_or_default();
    Path::new(&root)
        .join("system32")
        .join("winecfg.exe")
        .is_file()
}

/// The file is private as make-secret makes it: on Windows a protected DACL (nothing
/// inherited) whose one entry gives the current user, who owns the file, full control; under
/// Wine, what Wine can show of that (see [`under_wine`]). Either way nothing for Everyone,
/// Users or anyone else, and core's check agrees.
#[track_caller]
pub fn assert_owner_only(p: &Path) {
    const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
    const SYSTEM: &str = "S-1-5-18";
    let me = s2s_core::win::current_user_sid().expect("user SID");
    let d = s2s_core::win::dacl_of(p).expect("read the DACL");
    let entries = d.entries.clone().expect("a DACL, not a NULL one");
    assert_eq!(d.owner, me, "{}", p.display());
    assert_eq!(s2s_core::fsutil::check_private(p), Ok(()), "{d:?}");
    if under_wine() {
        let who: Vec<&str> = entries.iter().map(|e| e.sid.as_str()).collect();
        assert!(
            who.iter().all(|s| *s == me || *s == SYSTEM),
            "{}: {d:?}",
            p.display()
        );
        assert!(who.contains(&me.as_str()), "{d:?}");
        return;
    }
    assert!(
        d.protected,
        "{}: inherits from its folder: {d:?}",
        p.display()
    );
    assert_eq!(entries.len(), 1, "{}: {entries:?}", p.display());
    let e = &entries[0];
    assert_eq!(
        (e.kind.as_str(), e.sid.as_str()),
        ("A", me.as_str()),
        "{e:?}"
    );
    assert!(!e.inherited && !e.inherit_only, "{e:?}");
    assert_eq!(e.mask & FILE_ALL_ACCESS, FILE_ALL_ACCESS, "{e:?}");
}

/// A file written without the tools, in the same folder, is *not* what [`assert_owner_only`]
/// accepts — so that assertion proves the tools' doing. Under Wine such a file is mode 0644
/// (Everyone may read it); on Windows it inherits its folder's entries.
#[track_caller]
pub fn assert_plain_file_is_not_owner_only(dir: &Path) {
    let plain = dir.join("written-by-the-test.txt");
    std::fs::write(&plain, "x").unwrap();
    let d = s2s_core::win::dacl_of(&plain).unwrap();
    if under_wine() {
        let why = s2s_core::fsutil::check_private(&plain).unwrap_err();
        assert!(why.contains("Everyone"), "{why}");
    } else {
        assert!(!d.protected, "{d:?}");
    }
    std::fs::remove_file(&plain).unwrap();
}
