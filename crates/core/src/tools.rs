//! The one list of the tools the product ships, in runbook order, with what the harness, the
//! docs generator, the integration tests and the benchmark need to know of each. A new tool is
//! added here (and as a crate and a `[[bin]]`); everything that loops over tools reads this.

/// Which service a tool writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// Sends no write anywhere (preflight, verify-sync).
    Nothing,
    /// Microsoft Graph (Entra ID) only.
    Entra,
    /// The Dynamics 365 org (Dataverse) only.
    Dataverse,
    /// Both (teardown).
    Both,
}

/// One tool of the product.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    /// The binary's name.
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// Whether it is one of the runbook's setup steps (the runbooks run these, in this order).
    pub setup_step: bool,
    /// Where its writes go.
    pub writes: Writes,
}

/// Every tool the product ships (tenant-sim, the emulator, aside), in runbook order; teardown last.
pub const TOOLS: &[ToolInfo] = &[
    ToolInfo {
        name: "preflight",
        about: "checks, before any write, that this admin can do the whole setup",
        setup_step: true,
        writes: Writes::Nothing,
    },
    ToolInfo {
        name: "register-app",
        about: "ensures the app registration and its service principal",
        setup_step: true,
        writes: Writes::Entra,
    },
    ToolInfo {
        name: "grant-consent",
        about: "ensures tenant-wide admin consent for Dynamics CRM user_impersonation",
        setup_step: true,
        writes: Writes::Entra,
    },
    ToolInfo {
        name: "make-secret",
        about: "ensures a valid client secret, saved in a private file",
        setup_step: true,
        writes: Writes::Entra,
    },
    ToolInfo {
        name: "set-hrd-policy",
        about: "ensures the Home Realm Discovery policy for AD FS-federated tenants",
        setup_step: true,
        writes: Writes::Entra,
    },
    ToolInfo {
        name: "assign-role",
        about: "ensures the application user and its Marketo Sync User role",
        setup_step: true,
        writes: Writes::Dataverse,
    },
    ToolInfo {
        name: "configure-marketo",
        about: "points Marketo Config > Default > Marketo User at the application user",
        setup_step: true,
        writes: Writes::Dataverse,
    },
    ToolInfo {
        name: "publish-customizations",
        about: "publishes all customizations (when a step changed the org)",
        setup_step: true,
        writes: Writes::Dataverse,
    },
    ToolInfo {
        name: "add-sync-filter",
        about: "ensures Marketo's optional new_synctomkto sync-filter column",
        setup_step: true,
        writes: Writes::Dataverse,
    },
    ToolInfo {
        name: "verify-sync",
        about: "checks every step, and signs in as the app as Marketo will",
        setup_step: true,
        writes: Writes::Nothing,
    },
    ToolInfo {
        name: "teardown",
        about: "removes what this setup created, and only that",
        setup_step: false,
        writes: Writes::Both,
    },
];

/// The tool of this name.
pub fn tool(name: &str) -> Option<&'static ToolInfo> {
    TOOLS.iter().find(|t| t.name == name)
}

/// The names of every tool, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TOOLS.iter().map(|t| t.name)
}
