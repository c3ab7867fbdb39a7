//! The closing part of every tool's `--help` (and so of its man page), rendered from the code:
//! the examples the tool gives, what else it has to say, the state-document keys it reads and
//! writes (`Tool::READS`, `Tool::WRITES`) and its exit codes (core's one table, with what a code
//! means for this tool). A tool's clap struct says `#[command(after_help =
//! s2s_core::help::after_help::<Cli>())]`.

use crate::keys::AnyKey;
use crate::run::Tool;

/// `Examples:`, the notes, `Reads:`/`Writes:` and `Exit codes:`, blank lines between them.
pub fn after_help<C: Tool>() -> String {
    // Every tool is in the one table the docs, tests and bench loop over (caught by each tool's
    // `cli_is_well_formed` test, which builds this).
    debug_assert!(
        crate::tools::tool(C::NAME).is_some(),
        "{} is not in s2s_core::tools::TOOLS",
        C::NAME
    );
    let mut parts = vec![examples(C::EXAMPLES)];
    if !C::HELP_NOTES.trim().is_empty() {
        parts.push(C::HELP_NOTES.trim().to_string());
    }
    parts.push(format!(
        "Reads:  {}\nWrites: {}",
        key_list(C::READS),
        key_list(C::WRITES)
    ));
    parts.push(crate::exit_codes::help(C::READ_ONLY, C::EXIT_NOTES));
    parts.join("\n\n")
}

/// The examples, each line indented under the heading.
fn examples(text: &str) -> String {
    let mut out = String::from("Examples:");
    for line in text.trim_matches('\n').lines() {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

/// `a.b, c.d`, or `nothing` for an empty list.
fn key_list(keys: &[AnyKey]) -> String {
    if keys.is_empty() {
        return "nothing".to_string();
    }
    keys.iter().map(|k| k.path).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    #[derive(Debug, clap::Parser)]
    #[command(name = "grant-consent", after_help = after_help::<Demo>())]
    struct Demo {
        #[command(flatten)]
        common: crate::CommonArgs,
    }

    impl Tool for Demo {
        // A name of the table (the renderer checks it); the rest is this test's.
        const NAME: &'static str = "grant-consent";
        const READS: &'static [AnyKey] = &[keys::APP_CLIENT_ID.any(), keys::SECRET_FILE.any()];
        const WRITES: &'static [AnyKey] = &[keys::CONSENT_GRANT_ID.any()];
        const EXAMPLES: &'static str = "demo --state s.json\n# with a pipe:\n... | demo";
        const HELP_NOTES: &'static str = "A re-run sends no write.";
        const EXIT_NOTES: &'static [(u8, &'static str)] = &[(4, "e.g. no role")];
        fn common(&self) -> &crate::CommonArgs {
            &self.common
        }
    }

    #[test]
    fn examples_notes_keys_and_exit_codes_in_order() {
        let h = after_help::<Demo>();
        assert!(
            h.starts_with(
                "Examples:\n  demo --state s.json\n  # with a pipe:\n  ... | demo\n\n\
                 A re-run sends no write.\n\n\
                 Reads:  app.client_id, secret.file\nWrites: consent.grant_id\n\n\
                 Exit codes:\n  0  "
            ),
            "{h}"
        );
        assert!(h.contains("; here: e.g. no role"), "{h}");
        assert!(!h.contains("\n  6  "), "{h}");
        use clap::CommandFactory;
        Demo::command().debug_assert();
    }
}
