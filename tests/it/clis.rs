//! Each binary's clap definition by its name: the tools of `s2s_core::tools::TOOLS` and
//! tenant-sim. The root package depends on every tool crate, so its tests (`command_line.rs`)
//! and its `gen-docs` example (which includes this file by path) read the one list; a tool added
//! to the table but not here fails both.

use clap::CommandFactory;

/// The clap command of `name`, or `None` for a name no binary has.
pub fn command(name: &str) -> Option<clap::Command> {
    Some(match name {
        "preflight" => preflight::Cli::command(),
        "register-app" => register_app::Cli::command(),
        "grant-consent" => grant_consent::Cli::command(),
        "make-secret" => make_secret::Cli::command(),
        "set-hrd-policy" => set_hrd_policy::Cli::command(),
        "assign-role" => assign_role::Cli::command(),
        "configure-marketo" => configure_marketo::Cli::command(),
        "publish-customizations" => publish_customizations::Cli::command(),
        "add-sync-filter" => add_sync_filter::Cli::command(),
        "verify-sync" => verify_sync::Cli::command(),
        "teardown" => teardown::Cli::command(),
        "tenant-sim" => tenant_sim::Cli::command(),
        _ => return None,
    })
}
