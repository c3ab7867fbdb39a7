//! The emulator's options: what kind of tenant and org it starts with and how it misbehaves.
//! The CLI's flags and the tests build them; the tenant's state and the services read them, so
//! they sit below both.

use std::path::PathBuf;

use crate::permissions;

/// Emulator options. `Options::default()` is a fault-free tenant without replication lag.
#[derive(Debug, Clone)]
pub struct Options {
    /// New directory objects stay invisible to reads (and to login/Dataverse) for this long.
    pub replication_lag_ms: u64,
    /// A federated domain exists besides the managed initial domain.
    pub federated: bool,
    /// Version of the installed Marketo solution; `None` = not installed.
    pub marketo_version: Option<String>,
    /// Publisher/schema prefix of the Marketo solution.
    pub marketo_prefix: String,
    /// App-management policy: longest allowed password lifetime in days.
    pub max_secret_days: Option<u32>,
    /// How long a publish takes.
    pub publish_ms: u64,
    pub fault_rate: f64,
    pub fault_seed: u64,
    /// Retry-After (seconds, fractional allowed) of random 429s.
    pub retry_after_secs: f64,
    /// Delay added to every API response.
    pub latency_ms: u64,
    /// The N-th logged API request (1-based) never gets an answer.
    pub stall_at: Option<u64>,
    /// Serve https on both listeners with a generated CA (see [`TestServer::ca_file`]).
    ///
    /// [`TestServer::ca_file`]: crate::TestServer::ca_file
    pub tls: bool,
    /// Load the tenant from this file at start (if it exists) and save it after every write.
    pub state_file: Option<PathBuf>,
    /// Start without the Dynamics CRM (Dataverse) service principal.
    pub no_dynamics_sp: bool,
    /// Extra attributes to seed: (entity logical name, attribute logical name, AttributeType).
    pub seed_attributes: Vec<(String, String, String)>,
    /// The admin as a multi-tenant app: this client id and secret (tests of a consultant's
    /// fleet of tenants use one for several emulators). `None`: a fresh one per tenant.
    pub shared_admin: Option<(String, String)>,
    /// Microsoft Graph application permissions (app roles) in the admin's app-only token.
    /// Default: what the setup tools need ([`permissions::default_admin_permissions`]).
    pub admin_permissions: Vec<String>,
    /// Entra directory roles of the seeded admin user (for delegated, device-code tokens).
    pub admin_directory_roles: Vec<String>,
    /// The security role of the admin app's application user in the org; `None`: the admin's
    /// app is not an application user, and Dataverse refuses its tokens (403 `0x80072560`).
    pub admin_dataverse_role: Option<String>,
    /// Display name of the Marketo solution's configuration entity.
    pub marketo_config_label: String,
    /// Display name of the configuration entity's lookup to the sync user.
    pub marketo_user_label: String,
    /// Serve the managed-identity endpoints on the main listener: the App Service protocol at
    /// `/msi/token` (see [`TestServer::identity_endpoint`]) and the VM metadata protocol at
    /// `/metadata/identity/oauth2/token`; both issue tokens for the admin's service principal.
    ///
    /// [`TestServer::identity_endpoint`]: crate::TestServer::identity_endpoint
    pub managed_identity: bool,
    /// The admin's own app registration (its application object) is in this tenant, as for a
    /// single-tenant automation app registered there (Learn: "Application and service principal
    /// objects in Microsoft Entra ID": the application object lives in its home tenant). Off by
    /// default, so a fresh tenant lists no application.
    pub admin_app_in_tenant: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            replication_lag_ms: 0,
            federated: false,
            marketo_version: Some("5.0.2.1".into()),
            marketo_prefix: "mkto".into(),
            max_secret_days: None,
            publish_ms: 50,
            fault_rate: 0.0,
            fault_seed: 0,
            retry_after_secs: 0.05,
            latency_ms: 0,
            stall_at: None,
            tls: false,
            state_file: None,
            no_dynamics_sp: false,
            seed_attributes: Vec::new(),
            shared_admin: None,
            admin_permissions: permissions::default_admin_permissions(),
            admin_directory_roles: vec!["Global Administrator".into()],
            admin_dataverse_role: Some("System Administrator".into()),
            marketo_config_label: "Marketo Config".into(),
            marketo_user_label: "Marketo User".into(),
            managed_identity: false,
            admin_app_in_tenant: false,
        }
    }
}
