//! Commands a tool prints for people to paste — a resume, a fix, "once Marketo uses the new one,
//! run …". Each carries the flags this run was given on its command line that pick the target and
//! the sign-in (`--tenant`, `--cloud`, `--auth`, …) and the `--state` file, so that pasted into
//! the same shell it acts on the same customer as the run that printed it.

use std::sync::OnceLock;

use clap::ArgMatches;
use clap::parser::ValueSource;

/// The common flags that choose *where* and *as whom* a tool acts, by clap id and flag.
const CARRIED: &[(&str, &str)] = &[
    ("tenant", "--tenant"),
    ("cloud", "--cloud"),
    ("authority_host", "--authority-host"),
    ("graph_url", "--graph-url"),
    ("dynamics_url", "--dynamics-url"),
    ("auth", "--auth"),
    ("login_client_id", "--login-client-id"),
    ("ca_file", "--ca-file"),
    ("timeout", "--timeout"),
];

static GIVEN: OnceLock<Vec<String>> = OnceLock::new();
/// The `--state` file of this run (given, or found by default on a terminal), for the hints of
/// code that has no [`crate::Ctx`] at hand (a missing key, a timeout, a confirmation).
static STATE: OnceLock<std::path::PathBuf> = OnceLock::new();
/// The command line as typed (the tool's name and its arguments), for "run the same again".
static ARGV: OnceLock<(String, Vec<String>)> = OnceLock::new();

/// The clap ids of the common flags whose value came from an environment variable, so a guard
/// can say where a conflicting value came from ("from AZURE_TENANT_ID in the environment").
static FROM_ENV: OnceLock<Vec<&'static str>> = OnceLock::new();

/// Whether the common flag `id` took its value from its environment variable.
pub fn came_from_env(id: &str) -> bool {
    FROM_ENV.get().is_some_and(|ids| ids.contains(&id))
}

/// Where the value of the common flag `id` came from, for messages: `--tenant`, or
/// `AZURE_TENANT_ID in the environment` (`flag` and `var` name the two).
pub fn origin(id: &str, flag: &str, var: &str) -> String {
    let from_env = came_from_env(id);
    let on_line = GIVEN.get().is_some_and(|w| w.iter().any(|x| x == flag));
    match (from_env, on_line) {
        (true, _) => format!("{var} in the environment"),
        (false, true) => flag.to_string(),
        (false, false) => format!("{flag} (or {var})"),
    }
}

/// Records, once per process, the carried flags given on the command line (not those that came
/// from the environment: the same environment is there when the hint is pasted).
pub(crate) fn remember(matches: &ArgMatches) {
    let mut words = Vec::new();
    for (id, flag) in CARRIED {
        if matches.try_contains_id(id).unwrap_or(false)
            && matches.value_source(id) == Some(ValueSource::CommandLine)
        {
            if let Ok(Some(values)) = matches.try_get_raw(id) {
                for v in values {
                    words.push(flag.to_string());
                    words.push(shell_word(&v.to_string_lossy()));
                }
            }
        }
    }
    let _ = GIVEN.set(words);
    let from_env = CARRIED
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| {
            matches.try_contains_id(id).unwrap_or(false)
                && matches.value_source(id) == Some(ValueSource::EnvVariable)
        })
        .collect();
    let _ = FROM_ENV.set(from_env);
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let tool = args
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let _ = ARGV.set((tool, args.collect()));
}

/// Records the run's `--state` file for [`command_here`] and [`same_command`] (once).
pub(crate) fn remember_state(path: &std::path::Path) {
    let _ = STATE.set(path.to_path_buf());
}

/// [`command`] with this run's `--state` file.
pub fn command_here(tool: &str, args: &[&str]) -> String {
    command(tool, STATE.get().map(|p| p.as_path()), args)
}

/// This run's own command line, quoted, for "run it again": with `--state` when the run used a
/// state file it was not given on the command line (found by default on a terminal).
pub fn same_command() -> String {
    let Some((tool, args)) = ARGV.get() else {
        return String::new();
    };
    let mut words = vec![tool.clone()];
    let named = args
        .iter()
        .any(|a| a == "--state" || a.starts_with("--state="));
    if let (false, Some(p)) = (named, STATE.get()) {
        words.push("--state".into());
        words.push(shell_word(&p.to_string_lossy()));
    }
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

/// `tool [--state FILE] [the carried flags] args…`, each word quoted for a POSIX shell (and
/// PowerShell) where it needs it. `args` are written as given: pass them already quoted.
pub fn command(tool: &str, state_file: Option<&std::path::Path>, args: &[&str]) -> String {
    let mut words = vec![tool.to_string()];
    if let Some(p) = state_file {
        words.push("--state".into());
        words.push(shell_word(&p.to_string_lossy()));
    }
    words.extend(GIVEN.get().into_iter().flatten().cloned());
    words.extend(args.iter().map(|a| a.to_string()));
    words.join(" ")
}

/// One word for a shell: as it is when it holds only characters no shell treats specially,
/// otherwise in single quotes (which POSIX shells and PowerShell both read literally; a quote
/// inside is written the POSIX way).
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-+:@,=%".contains(&b));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_need_quotes_get_them() {
        assert_eq!(shell_word("contoso.state.json"), "contoso.state.json");
        assert_eq!(shell_word("my state.json"), "'my state.json'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn a_command_names_the_state_file_first() {
        let c = command(
            "make-secret",
            Some(std::path::Path::new("a b/s.json")),
            &["--retire-old", "--yes"],
        );
        assert!(c.starts_with("make-secret --state 'a b/s.json'"), "{c}");
        assert!(c.ends_with("--retire-old --yes"), "{c}");
    }
}
