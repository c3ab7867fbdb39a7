//! Windows path text, as pure functions over UTF-16 code units, so they are tested on every
//! platform; `win.rs` (Windows only) uses them. A leaf: it imports nothing of this crate.
#![cfg_attr(not(windows), allow(dead_code))]

/// The `\\?\` form of an absolute Windows path (as UTF-16 code units), which the wide Win32
/// file calls take beyond `MAX_PATH` (260 characters: a secret file in a deep OneDrive or
/// Documents folder): `C:\a` becomes `\\?\C:\a`, `\\server\share\a` becomes
/// `\\?\UNC\server\share\a`. A path already in a `\\?\` or `\\.\` form, or not absolute, is
/// returned as it is. Learn: "Maximum Path Length Limitation"
/// (learn.microsoft.com/windows/win32/fileio/maximum-file-path-limitation). Pure, so it is
/// tested on every platform; `win.rs` uses it.
pub(crate) fn windows_verbatim(path: &[u16]) -> Vec<u16> {
    let w = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
    let sep = |c: u16| c == u16::from(b'\\') || c == u16::from(b'/');
    let starts = |p: &str| {
        let p = w(p);
        path.len() >= p.len() && path[..p.len()] == p[..]
    };
    if starts(r"\\?\") || starts(r"\\.\") {
        return path.to_vec();
    }
    let drive = path.len() >= 3
        && path[0] < 128
        && (path[0] as u8).is_ascii_alphabetic()
        && path[1] == u16::from(b':')
        && sep(path[2]);
    if drive {
        return [w(r"\\?\"), path.to_vec()].concat();
    }
    if path.len() > 2 && sep(path[0]) && sep(path[1]) {
        return [w(r"\\?\UNC\"), path[2..].to_vec()].concat();
    }
    path.to_vec()
}

#[cfg(test)]
mod tests {
    use super::windows_verbatim;

    fn v(p: &str) -> String {
        String::from_utf16(&windows_verbatim(&p.encode_utf16().collect::<Vec<_>>())).unwrap()
    }

    #[test]
    fn windows_paths_get_the_verbatim_form_the_wide_calls_take_beyond_max_path() {
        assert_eq!(v(r"C:\Users\a\x.secret"), r"\\?\C:\Users\a\x.secret");
        assert_eq!(v(r"\\server\share\x.json"), r"\\?\UNC\server\share\x.json");
        assert_eq!(v(r"\\?\C:\x"), r"\\?\C:\x");
        assert_eq!(v(r"\\.\pipe\x"), r"\\.\pipe\x");
        assert_eq!(v(r"relative\x"), r"relative\x");
        assert_eq!(v(""), "");
    }
}
