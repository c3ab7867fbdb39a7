//! Generates man pages and shell completions for every tool from its clap definition:
//!
//! ```text
//! cargo run --example gen-docs -- [OUT_DIR]      # default target/docs
//! ```
//!
//! Writes `OUT_DIR/man/<tool>.1` and `OUT_DIR/completions/{bash,zsh,fish,powershell}/<tool>...`.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn commands() -> Vec<clap::Command> {
    vec![
        preflight::Cli::command(),
        register_app::Cli::command(),
        grant_consent::Cli::command(),
        make_secret::Cli::command(),
        set_hrd_policy::Cli::command(),
        assign_role::Cli::command(),
        configure_marketo::Cli::command(),
        publish_customizations::Cli::command(),
        add_sync_filter::Cli::command(),
        verify_sync::Cli::command(),
        teardown::Cli::command(),
        tenant_sim::Cli::command(),
    ]
}

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    for mut cmd in commands() {
        let name = cmd.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
        std::fs::write(man.join(format!("{name}.1")), page)?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let dir = out.join("completions").join(shell.to_string());
            std::fs::create_dir_all(&dir)?;
            clap_complete::generate_to(shell, &mut cmd, &name, &dir)?;
        }
    }
    eprintln!(
        "gen-docs: man pages and completions written to {}",
        out.display()
    );
    Ok(())
}
