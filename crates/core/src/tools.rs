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

/// Where a tool stands in the runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the setup: read-only checks that it can succeed (preflight).
    Check,
    /// A step of Marketo's "Step 2 of 3", run every time (register-app … verify-sync).
    Step,
    /// A step the runbooks run only when asked (add-sync-filter, with `--sync-filter`).
    OptionalStep,
    /// Not part of the setup: it undoes one (teardown).
    Undo,
}

/// One tool of the product.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfo {
    /// The binary's name.
    pub name: &'static str,
    /// What it does, in one line.
    pub about: &'static str,
    /// Where it stands in the runbook.
    pub stage: Stage,
    /// Where its writes go.
    pub writes: Writes,
    /// The section of the state document it owns (`app` for register-app): the tool to run
    /// when one of its keys is missing.
    pub section: &'static str,
    /// Its record (`steps.<tool>`) describes the Dynamics org: `--retarget` to another org
    /// drops it.
    pub org_scoped: bool,
}

impl ToolInfo {
    /// One of the runbook's setup steps (the runbooks run these, in this order).
    pub const fn setup_step(&self) -> bool {
        !matches!(self.stage, Stage::Undo)
    }
}

/// Every tool the product ships (tenant-sim, the emulator, aside), in runbook order; teardown last.
pub const TOOLS: &[ToolInfo] = &[
    ToolInfo {
        name: "preflight",
        about: "checks, before any write, that this admin can do the whole setup",
        stage: Stage::Check,
        writes: Writes::Nothing,
        section: "preflight",
        org_scoped: false,
    },
    ToolInfo {
        name: "register-app",
        about: "ensures the app registration and its service principal",
        stage: Stage::Step,
        writes: Writes::Entra,
        section: "app",
        org_scoped: false,
    },
    ToolInfo {
        name: "grant-consent",
        about: "ensures tenant-wide admin consent for Dynamics CRM user_impersonation",
        stage: Stage::Step,
        writes: Writes::Entra,
        section: "consent",
        org_scoped: false,
    },
    ToolInfo {
        name: "make-secret",
        about: "ensures a valid client secret, saved in a private file",
        stage: Stage::Step,
        writes: Writes::Entra,
        section: "secret",
        org_scoped: false,
    },
    ToolInfo {
        name: "set-hrd-policy",
        about: "ensures the Home Realm Discovery policy for AD FS-federated tenants",
        stage: Stage::Step,
        writes: Writes::Entra,
        section: "hrd_policy",
        org_scoped: false,
    },
    ToolInfo {
        name: "assign-role",
        about: "ensures the application user and its Marketo Sync User role",
        stage: Stage::Step,
        writes: Writes::Dataverse,
        section: "dynamics",
        org_scoped: true,
    },
    ToolInfo {
        name: "configure-marketo",
        about: "points Marketo Config > Default > Marketo User at the application user",
        stage: Stage::Step,
        writes: Writes::Dataverse,
        section: "marketo_config",
        org_scoped: true,
    },
    ToolInfo {
        name: "publish-customizations",
        about: "publishes all customizations (when a step changed the org)",
        stage: Stage::Step,
        writes: Writes::Dataverse,
        section: "publish",
        org_scoped: true,
    },
    ToolInfo {
        name: "add-sync-filter",
        about: "ensures Marketo's optional new_synctomkto sync-filter column",
        stage: Stage::OptionalStep,
        writes: Writes::Dataverse,
        section: "sync_filter",
        org_scoped: true,
    },
    ToolInfo {
        name: "verify-sync",
        about: "checks every step, and signs in as the app as Marketo will",
        stage: Stage::Step,
        writes: Writes::Nothing,
        section: "verify",
        org_scoped: true,
    },
    ToolInfo {
        name: "teardown",
        about: "removes what this setup created, and only that",
        stage: Stage::Undo,
        writes: Writes::Both,
        section: "teardown",
        org_scoped: false,
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

/// How many tools stand at one of `stages`: the length of [`names_at`]'s array.
pub const fn count_at(stages: &[Stage]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < TOOLS.len() {
        if at(&TOOLS[i], stages) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The names of the tools at one of `stages`, in runbook order, as a constant array:
/// `const CHAIN: [&str; count_at(&[Stage::Step])] = names_at(&[Stage::Step]);` (a length other
/// than [`count_at`]'s fails the build).
pub const fn names_at<const N: usize>(stages: &[Stage]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    let mut i = 0;
    while i < TOOLS.len() {
        if at(&TOOLS[i], stages) {
            out[n] = TOOLS[i].name;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "names_at: N is not count_at(stages)");
    out
}

const fn at(tool: &ToolInfo, stages: &[Stage]) -> bool {
    let mut j = 0;
    while j < stages.len() {
        if tool.stage as u8 == stages[j] as u8 {
            return true;
        }
        j += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sections_and_stages() {
        for (i, t) in TOOLS.iter().enumerate() {
            assert!(
                TOOLS[i + 1..]
                    .iter()
                    .all(|o| o.name != t.name && o.section != t.section)
            );
        }
        const CHAIN: [&str; count_at(&[Stage::Step])] = names_at(&[Stage::Step]);
        assert_eq!(CHAIN.len(), 8);
        assert_eq!(CHAIN[0], "register-app");
        assert_eq!(CHAIN[7], "verify-sync");
        assert_eq!(names().last(), Some("teardown"));
        assert!(!tool("teardown").is_some_and(ToolInfo::setup_step));
    }
}
