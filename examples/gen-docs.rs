//! Generates man pages and shell completions for every tool from its clap definition, all at
//! once into one folder (each installed binary writes its own with `--generate`, through the
//! same `s2s_core::cli::generate`):
//!
//! ```text
//! cargo run --example gen-docs -- [OUT_DIR]      # default target/docs
//! ```
//!
//! Writes `OUT_DIR/man/<tool>.1` and `OUT_DIR/completions/{bash,zsh,fish,powershell}/<tool>...`.

use std::path::PathBuf;

use s2s_core::cli::Generate;

/// The clap command of a binary by its name (`tests/it/clis.rs`, shared with the tests).
#[path = "../tests/it/clis.rs"]
mod clis;
use clis::command;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    for name in s2s_core::tools::names().chain(["tenant-sim"]) {
        let mut cmd = command(name).ok_or_else(|| {
            std::io::Error::other(format!(
                "{name} is in s2s_core::tools::TOOLS but not in gen-docs' command()"
            ))
        })?;
        let mut page = Vec::new();
        s2s_core::cli::generate(Generate::Man, &mut cmd, &mut page)?;
        std::fs::write(man.join(format!("{name}.1")), page)?;
        // The file names clap_complete's generate_to used: bash `<tool>.bash`, zsh `_<tool>`,
        // fish `<tool>.fish`, PowerShell `_<tool>.ps1`.
        for (what, shell, file) in [
            (Generate::CompletionsBash, "bash", format!("{name}.bash")),
            (Generate::CompletionsZsh, "zsh", format!("_{name}")),
            (Generate::CompletionsFish, "fish", format!("{name}.fish")),
            (
                Generate::CompletionsPowershell,
                "powershell",
                format!("_{name}.ps1"),
            ),
        ] {
            let dir = out.join("completions").join(shell);
            std::fs::create_dir_all(&dir)?;
            let mut text = Vec::new();
            s2s_core::cli::generate(what, &mut cmd, &mut text)?;
            std::fs::write(dir.join(file), text)?;
        }
    }
    eprintln!(
        "gen-docs: man pages and completions written to {}",
        out.display()
    );
    Ok(())
}
