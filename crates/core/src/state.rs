//! The state document: one JSON object read from stdin or `--state FILE`, enriched by each tool
//! and written back. Keys a tool does not own pass through untouched (design.md, "The state
//! document").

use std::io::{IsTerminal, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::{self, AnyKey, DocKey, DocPath, KeyType, ValueFor, type_name, wrong_type};

/// Larger documents are refused: the contract is a few kilobytes, and reading an unbounded
/// stdin into memory is how a mistaken `cat big.log |` takes a machine down.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDoc {
    root: Map<String, Value>,
}

impl StateDoc {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a document. Empty input (only whitespace) is the empty document here; whether
    /// empty input is acceptable at all is decided by [`StateDoc::load`].
    ///
    /// Numbers keep their exact value and digits (serde_json's `arbitrary_precision`), so a key
    /// the tools do not own passes through unchanged (a 30-digit integer stays exact, `-0` and
    /// `1.50` keep their text; only an exponent gains its sign, `1e2` → `1e+2`), and
    /// a key that appears twice in one object is refused: JSON parsers disagree on which of the
    /// two wins, so the document is ambiguous.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        if let Err(e) = serde_json::from_str::<dupcheck::NoDuplicateKeys>(text) {
            if e.is_data() {
                return Err(Error::usage(format!(
                    "the state document on {source} is ambiguous: {e}"
                ))
                .with_hint("remove one of the two entries with that key, then re-run"));
            }
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(root)) => Ok(StateDoc { root }),
            Ok(other) => Err(Error::usage(format!(
                "the state document on {source} must be a JSON object, found {}",
                type_name(&other)
            ))
            .with_hint("pipe the output of the previous tool, or pass --state FILE")),
            Err(e) => Err(Error::usage(format!(
                "the state document on {source} is not valid JSON ({e})"
            ))
            .with_hint("pipe the unchanged output of the previous tool, or start with no input")),
        }
    }

    /// Reads the document from `--state FILE` (a missing file is the empty document) or from
    /// stdin when stdin is not a terminal.
    ///
    /// Empty input means "start from nothing" only when it cannot be a failed step's output:
    /// a terminal, `< /dev/null` (a character device; `< NUL` on Windows) or a missing
    /// `--state` file. Zero bytes
    /// from a pipe or a regular file are what a pipeline hands on when its previous step failed,
    /// so a tool that continues a setup (`starts_setup == false`) refuses them (exit 2) rather
    /// than acting on an org with no document — `printf '' | publish-customizations` would
    /// otherwise publish every customization of the org.
    pub fn load(state_file: Option<&Path>, starts_setup: bool) -> Result<Self> {
        match state_file {
            Some(path) => match std::fs::File::open(path) {
                Ok(f) => {
                    let source = format!("--state {}", path.display());
                    let text = read_bounded(f, &source)?;
                    if text.trim().is_empty() && !starts_setup {
                        return Err(empty_input(&source));
                    }
                    Self::parse(&text, &source)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
                Err(e) => Err(Error::usage(format!(
                    "cannot read --state {}: {e}",
                    path.display()
                ))),
            },
            None => {
                let stdin = std::io::stdin();
                if stdin.is_terminal() {
                    return Ok(Self::default());
                }
                let text = read_bounded(stdin.lock(), "stdin")?;
                if text.trim().is_empty() && !starts_setup && !stdin_is_null_device() {
                    return Err(empty_input("stdin"));
                }
                Self::parse(&text, "stdin")
            }
        }
    }

    /// Reads a state file that must exist and hold a document: one of `verify-sync --fleet`'s
    /// files. Unlike `--state` (whose target is checked before it is locked), nothing has looked
    /// at the path yet, so it is read with [`crate::fsutil::read_regular`]: opened without
    /// blocking and read only if it is a regular file, up to [`MAX_DOCUMENT_BYTES`]. A FIFO, a
    /// pipe (`/dev/stdin`) or a device is refused at once instead of blocking the run — and
    /// every other file of the fleet with it — past `--timeout`. Every failure is exit 2.
    pub fn load_existing(path: &Path) -> Result<Self> {
        let source = path.display().to_string();
        let bytes =
            crate::fsutil::read_regular(path, MAX_DOCUMENT_BYTES as u64).map_err(|e| match e
                .kind()
            {
                std::io::ErrorKind::NotFound => Error::usage(format!("{source} does not exist")),
                std::io::ErrorKind::InvalidInput => Error::usage(e.to_string()).with_hint(
                    "give the path of a state file; a FIFO, pipe or device is not read as one",
                ),
                std::io::ErrorKind::InvalidData => Error::usage(format!(
                    "the state document in {source} is larger than {} MiB; is this a state file of the marketo-s2s tools?",
                    MAX_DOCUMENT_BYTES / (1024 * 1024)
                )),
                _ => Error::usage(format!("cannot read {source}: {e}")),
            })?;
        let text = decode(bytes, &format!("in {source}"))?;
        if text.trim().is_empty() {
            // Not "the previous step produced no document": no pipeline is involved here.
            return Err(
                Error::usage(format!("the state file {source} is empty")).with_hint(
                    "a state file holds the document the setup wrote; restore it, or leave it out",
                ),
            );
        }
        Self::parse(&text, &source)
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.root.clone())
    }

    pub fn root(&self) -> &Map<String, Value> {
        &self.root
    }

    /// The value of a key, typed: `doc.get(keys::APP_CLIENT_ID)?` is the app's client id as a
    /// normalised GUID, if present and not null; a value of another type is bad input (exit 2)
    /// naming the key.
    pub fn get<T: KeyType>(&self, key: DocKey<T>) -> Result<Option<T::Value<'_>>> {
        self.typed::<T>(key.path())
    }

    /// Sets a key to a value of its type, creating (or replacing non-object) parents.
    pub fn set<T: KeyType>(&mut self, key: DocKey<T>, value: impl ValueFor<T>) {
        self.set_value(key.path(), value.into_value());
    }

    /// The value at a dotted path (`"steps.register-app"`), if present and not null, whatever
    /// its type.
    pub fn get_value(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut cur = self.root.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        (!cur.is_null()).then_some(cur)
    }

    /// A string at `path`; a value of another type is bad input (exit 2) naming the key.
    pub fn get_str(&self, path: &str) -> Result<Option<&str>> {
        self.typed::<keys::Str>(path)
    }

    pub fn get_bool(&self, path: &str) -> Result<Option<bool>> {
        self.typed::<keys::Bool>(path)
    }

    pub fn get_object(&self, path: &str) -> Result<Option<&Map<String, Value>>> {
        self.typed::<keys::Object>(path)
    }

    pub fn get_array(&self, path: &str) -> Result<Option<&Vec<Value>>> {
        self.typed::<keys::Array>(path)
    }

    /// The value at `path` read as a `T`, if present and not null.
    fn typed<T: KeyType>(&self, path: &str) -> Result<Option<T::Value<'_>>> {
        self.check_parents(path)?;
        self.get_value(path)
            .map(|v| T::from_json(v, path))
            .transpose()
    }

    /// Checks every key of `keys` that is present, as the typed read would (see
    /// [`keys::KeyKind::check`]): the harness does this before a step runs, so a wrong type is
    /// exit 2 naming the key before any request.
    pub fn check_keys(&self, keys: &[AnyKey]) -> Result<()> {
        keys.iter().try_for_each(|k| {
            self.check_parents(k.path)?;
            match self.get_value(k.path) {
                Some(v) => k.kind.check(v, k.path),
                None => Ok(()),
            }
        })
    }

    /// The text of a key for people (a status line, a table): its string, or `None` when it is
    /// absent or holds anything else. Never bad input: what only shows the document cannot fail.
    pub fn text(&self, key: impl DocPath) -> Option<&str> {
        self.get_str(key.doc_path()).ok().flatten()
    }

    /// A GUID at `path`, checked for shape.
    pub fn get_guid(&self, path: &str) -> Result<Option<String>> {
        self.typed::<keys::Guid>(path)
    }

    /// Every parent on the path that exists must be an object: `{"app": "x"}` is bad input for
    /// `app.client_id`, not "missing".
    fn check_parents(&self, path: &str) -> Result<()> {
        let parts: Vec<&str> = path.split('.').collect();
        let mut cur: &Map<String, Value> = &self.root;
        for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
            match cur.get(*p) {
                None | Some(Value::Null) => return Ok(()),
                Some(Value::Object(m)) => cur = m,
                Some(other) => {
                    let key = parts[..=i].join(".");
                    return Err(wrong_type(&key, "an object", other));
                }
            }
        }
        Ok(())
    }

    /// Sets the value at a dotted path built at run time (`steps.<tool>`), creating (or
    /// replacing non-object) parents. Keys of [`crate::keys`] are set with [`StateDoc::set`].
    pub fn set_value(&mut self, path: &str, value: impl Into<Value>) {
        let parts: Vec<&str> = path.split('.').collect();
        let mut cur = &mut self.root;
        for p in &parts[..parts.len() - 1] {
            let entry = cur
                .entry((*p).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            cur = entry.as_object_mut().expect("just made an object");
        }
        cur.insert(parts[parts.len() - 1].to_string(), value.into());
    }

    /// Removes a key (a constant of [`crate::keys`] or a dotted path), if present.
    pub fn remove(&mut self, key: impl DocPath) {
        let parts: Vec<&str> = key.doc_path().split('.').collect();
        let mut cur = &mut self.root;
        for p in &parts[..parts.len() - 1] {
            match cur.get_mut(*p).and_then(Value::as_object_mut) {
                Some(m) => cur = m,
                None => return,
            }
        }
        // shift_remove, not remove (a swap_remove): the keys after it keep their order, so a
        // document a tool removed keys from still reads top-down as the runbook wrote it.
        cur.shift_remove(parts[parts.len() - 1]);
    }

    /// Serialises the document: pretty for a person, compact for a pipe.
    pub fn to_text(&self, pretty: bool) -> String {
        let v = Value::Object(self.root.clone());
        let mut s = if pretty {
            serde_json::to_string_pretty(&v)
        } else {
            serde_json::to_string(&v)
        }
        .expect("a JSON value always serialises");
        s.push('\n');
        s
    }

    /// Rewrites `--state FILE` atomically (mode 0600: the document can hold a revealed secret).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, self.to_text(true).as_bytes(), 0o600)
            .map_err(|e| Error::internal(format!("cannot write --state {}: {e}", path.display())))
    }
}

fn empty_input(source: &str) -> Error {
    Error::usage(format!(
        "the previous step produced no document: {source} is empty"
    ))
    .with_hint(
        "look at the previous step's error above; to start from nothing on purpose, pass `< /dev/null` or a document of `{}`",
    )
}

/// Is stdin a character device such as `/dev/null` (an explicit "no document"), rather than a
/// pipe, socket or file that came up empty?
#[cfg(unix)]
fn stdin_is_null_device() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_char_device())
}

/// On Windows `< NUL` is a character device too (a console also is, but a console is a
/// terminal, handled before this is asked).
#[cfg(windows)]
fn stdin_is_null_device() -> bool {
    crate::win::stdin_is_char_device()
}

#[cfg(not(any(unix, windows)))]
fn stdin_is_null_device() -> bool {
    false
}

/// A walk over a JSON text that fails on the first object holding one key twice. serde_json's
/// `Value` keeps the last of them silently.
mod dupcheck {
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    pub struct NoDuplicateKeys;

    impl<'de> Deserialize<'de> for NoDuplicateKeys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Walk)
        }
    }

    struct Walk;

    impl<'de> Visitor<'de> for Walk {
        type Value = NoDuplicateKeys;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(NoDuplicateKeys)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
            Ok(NoDuplicateKeys)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                // With arbitrary_precision a number arrives as a one-key map of serde_json's
                // own; its value is the number's text.
                if key == "$serde_json::private::Number" {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                if !seen.insert(key.clone()) {
                    return Err(de::Error::custom(format!(
                        "the key {key:?} appears twice in one object"
                    )));
                }
                map.next_value::<NoDuplicateKeys>()?;
            }
            Ok(NoDuplicateKeys)
        }
    }
}

fn read_bounded(r: impl Read, source: &str) -> Result<String> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::usage(format!("cannot read the state document from {source}: {e}")))?;
    if n > MAX_DOCUMENT_BYTES {
        return Err(Error::usage(format!(
            "the state document on {source} is larger than {} MiB; is this the output of a marketo-s2s tool?",
            MAX_DOCUMENT_BYTES / (1024 * 1024)
        )));
    }
    decode(buf, &format!("on {source}"))
}

/// The document's text as Windows tools hand it over too: a UTF-8 byte order mark
/// (PowerShell with `$OutputEncoding = [Text.Encoding]::UTF8`, Notepad, `Out-File -Encoding
/// utf8`) is dropped, and UTF-16 with its byte order mark (Windows PowerShell 5.1's `>` and
/// `Out-File`) is decoded. CRLF line ends need nothing: `\r` is JSON white space. `place` is
/// "on stdin" or "in FILE", for the error.
fn decode(bytes: Vec<u8>, place: &str) -> Result<String> {
    let not_text = || {
        Error::usage(format!(
            "the state document {place} is not UTF-8 (or UTF-16 with a byte order mark) text"
        ))
    };
    let utf16 = |bytes: &[u8], unit: fn([u8; 2]) -> u16| {
        if !bytes.len().is_multiple_of(2) {
            return Err(not_text());
        }
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| not_text())
    };
    match bytes.as_slice() {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8(rest.to_vec()).map_err(|_| not_text()),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes).map_err(|_| not_text()),
    }
}

/// Now, as RFC 3339 UTC with milliseconds: `steps.<tool>.at` values are compared with each
/// other (publish-customizations --if-changed), and a whole chain fits in one second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_pass_through_and_set_creates_parents() {
        let mut d = StateDoc::parse(r#"{"x":{"y":1},"app":{"client_id":"a"}}"#, "t").unwrap();
        d.set(crate::keys::APP_OBJECT_ID, "b");
        d.set_value("steps.register-app.changed", true);
        assert_eq!(
            d.as_value(),
            json!({"x":{"y":1},"app":{"client_id":"a","object_id":"b"},"steps":{"register-app":{"changed":true}}})
        );
    }

    #[test]
    fn wrong_types_are_usage_errors_naming_the_key() {
        let d = StateDoc::parse(r#"{"app":{"client_id":5},"tenant":"x"}"#, "t").unwrap();
        let e = d.get(crate::keys::APP_CLIENT_ID).unwrap_err();
        assert_eq!(e.kind.code(), 2);
        assert!(e.message.contains("app.client_id"));
        let e = d.get_str("tenant.id").unwrap_err();
        assert!(e.message.contains("tenant"), "{e}");
    }

    #[test]
    fn numbers_keep_their_text_and_duplicate_keys_are_refused() {
        let text = r#"{"u":123456789012345678901234567890,"e":1e+2,"z":-0,"f":1.50,"a":[{"x":1}]}"#;
        let d = StateDoc::parse(text, "t").unwrap();
        assert_eq!(d.to_text(false).trim_end(), text);
        // `1e2` keeps its value; serde_json writes the exponent with its sign.
        let d = StateDoc::parse(r#"{"e":1e2}"#, "t").unwrap();
        assert_eq!(d.to_text(false).trim_end(), r#"{"e":1e+2}"#);
        let e = StateDoc::parse(r#"{"a":1,"a":2}"#, "t").unwrap_err();
        assert_eq!(e.kind.code(), 2);
        assert!(e.message.contains("\"a\" appears twice"), "{e}");
        let e = StateDoc::parse(r#"{"x":{"deep":[{"k":1,"k":1}]}}"#, "t").unwrap_err();
        assert!(e.message.contains("\"k\""), "{e}");
        // The same key in two different objects is fine.
        assert!(StateDoc::parse(r#"{"a":{"k":1},"b":{"k":1}}"#, "t").is_ok());
    }

    #[test]
    fn removing_a_key_keeps_the_order_of_the_others() {
        let mut d = StateDoc::parse(r#"{"a":1,"b":2,"c":3,"d":{"x":1,"y":2,"z":3}}"#, "t").unwrap();
        d.remove("b");
        d.remove("d.x");
        assert_eq!(
            d.to_text(false),
            "{\"a\":1,\"c\":3,\"d\":{\"y\":2,\"z\":3}}\n"
        );
    }

    #[test]
    fn empty_and_non_objects() {
        assert_eq!(StateDoc::parse("  \n", "t").unwrap(), StateDoc::default());
        assert_eq!(StateDoc::parse("[1]", "t").unwrap_err().kind.code(), 2);
        assert_eq!(StateDoc::parse("{\"a\":", "t").unwrap_err().kind.code(), 2);
    }

    /// What PowerShell and Notepad hand over: a UTF-8 BOM, CRLF line ends, UTF-16
    /// with a BOM; anything else that is not UTF-8 is exit 2.
    #[test]
    fn a_bom_crlf_and_utf16_documents_are_read_as_the_same_document() {
        let want = json!({"app": {"display_name": "Marketo Intégration"}});
        let pretty = serde_json::to_string_pretty(&want)
            .unwrap()
            .replace('\n', "\r\n")
            + "\r\n";
        let utf8_bom = [&[0xEF, 0xBB, 0xBF][..], pretty.as_bytes()].concat();
        let mut utf16le = vec![0xFF, 0xFE];
        let mut utf16be = vec![0xFE, 0xFF];
        for u in pretty.encode_utf16() {
            utf16le.extend(u.to_le_bytes());
            utf16be.extend(u.to_be_bytes());
        }
        for bytes in [utf8_bom, utf16le, utf16be] {
            let text = read_bounded(&bytes[..], "stdin").unwrap();
            assert_eq!(StateDoc::parse(&text, "stdin").unwrap().as_value(), want);
        }
        // A BOM alone is an empty document, as empty input is.
        assert!(
            read_bounded(&[0xEF, 0xBB, 0xBF][..], "stdin")
                .unwrap()
                .is_empty()
        );
        for bad in [
            &[0xFF, 0xFE, 0x41][..],
            &[0xC3, 0x28][..],
            &[0xEF, 0xBB, 0xBF, 0xFF][..],
        ] {
            let e = read_bounded(bad, "stdin").unwrap_err();
            assert_eq!(e.kind.code(), 2);
            assert!(e.message.contains("not UTF-8"), "{e}");
        }
    }

    #[test]
    fn typed_reads_and_writes() {
        let mut doc = StateDoc::parse(
            r#"{"app":{"client_id":"{0D9F3C5E-1111-2222-3333-444455556666}","adopted":"yes"}}"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            doc.get(APP_CLIENT_ID).unwrap().as_deref(),
            Some("0d9f3c5e-1111-2222-3333-444455556666")
        );
        let e = doc.get(APP_ADOPTED).unwrap_err();
        assert_eq!(e.kind.code(), 2);
        assert!(e.message.contains("app.adopted"), "{e}");
        assert_eq!(
            doc.check_keys(&[APP_ADOPTED.any()])
                .unwrap_err()
                .kind
                .code(),
            2
        );
        doc.set(APP_ADOPTED, true);
        doc.set(APP_UNIQUE_NAME, None::<&str>);
        doc.set(SECRET_FILE, "x.secret");
        assert_eq!(doc.get(APP_ADOPTED).unwrap(), Some(true));
        assert_eq!(doc.get(APP_UNIQUE_NAME).unwrap(), None);
        assert_eq!(doc.get(SECRET_FILE).unwrap(), Some("x.secret"));
        assert!(doc.get_value("app.unique_name").is_none());
        assert!(
            doc.root()["app"]
                .get("unique_name")
                .is_some_and(Value::is_null)
        );
        let bad = StateDoc::parse(r#"{"dynamics":{"url":"ftp://x"}}"#, "t").unwrap();
        assert_eq!(bad.check_keys(COMMON_READS).unwrap_err().kind.code(), 2);
    }
}
