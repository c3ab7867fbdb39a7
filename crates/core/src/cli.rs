//! The flags every tool shares. Each tool flattens [`CommonArgs`] into its own clap derive, so a
//! flag means the same thing everywhere; values are resolved (flag, environment, state document,
//! cloud default) in one place, [`crate::config::Config::resolve`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    /// Global Azure (login.microsoftonline.com, graph.microsoft.com, *.crm.dynamics.com).
    Public,
    /// US Government GCC: public Entra ID and Graph, Dynamics on *.crm9.dynamics.com.
    Usgov,
    /// US Government GCC High (login.microsoftonline.us, graph.microsoft.us).
    Usgovhigh,
    /// US Government DoD (login.microsoftonline.us, dod-graph.microsoft.us).
    Usgovdod,
    /// Azure operated by 21Vianet (login.chinacloudapi.cn, microsoftgraph.chinacloudapi.cn).
    China,
}

impl Cloud {
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::Usgov => "usgov",
            Cloud::Usgovhigh => "usgovhigh",
            Cloud::Usgovdod => "usgovdod",
            Cloud::China => "china",
        }
    }
    pub fn from_name(s: &str) -> Option<Cloud> {
        Cloud::from_str(s, true).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthSource {
    /// A service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET.
    Env,
    /// A service principal's certificate: AZURE_CLIENT_CERTIFICATE_PATH (PEM with the
    /// certificate and its RSA private key), AZURE_CLIENT_ID, AZURE_TENANT_ID.
    Certificate,
    /// Workload identity federation (GitHub Actions, AKS): the token in
    /// AZURE_FEDERATED_TOKEN_FILE, read at each sign-in, with AZURE_CLIENT_ID, AZURE_TENANT_ID.
    WorkloadIdentity,
    /// A managed identity: IDENTITY_ENDPOINT and IDENTITY_HEADER (App Service, Functions,
    /// Container Apps), else the VM metadata endpoint (only when asked for with this value).
    ManagedIdentity,
    /// The refresh token saved by an earlier device-code sign-in.
    Cache,
    /// The Azure CLI's login (`az account get-access-token`).
    Az,
    /// Device-code sign-in on this terminal.
    DeviceCode,
}

/// `--color`: when stderr gets colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set (and not empty) or TERM is dumb.
    Auto,
    /// Always, even into a file or pipe.
    Always,
    /// Never: no escape byte on stderr.
    Never,
}

/// `--generate`: what a binary can write about itself, so an installed tool needs no source
/// tree for its completions and man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    CompletionsBash,
    CompletionsZsh,
    CompletionsFish,
    CompletionsPowershell,
    CompletionsElvish,
    Man,
}

/// Flags shared by every tool.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Entra ID tenant: its id or a domain such as contoso.onmicrosoft.com
    /// [state: tenant.id]
    #[arg(
        long,
        env = "AZURE_TENANT_ID",
        value_name = "TENANT",
        help_heading = "Connection"
    )]
    pub tenant: Option<String>,

    /// Azure cloud whose sign-in, Graph and Dynamics hosts to use [state: tenant.cloud] [default: public]
    #[arg(long, env = "MKTO_S2S_CLOUD", value_enum, help_heading = "Connection")]
    pub cloud: Option<Cloud>,

    /// Sign-in authority, overriding the cloud's (https, or http on loopback only)
    #[arg(
        long,
        env = "AZURE_AUTHORITY_HOST",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub authority_host: Option<String>,

    /// Microsoft Graph root, overriding the cloud's (https, or http on loopback only)
    #[arg(
        long,
        env = "MKTO_S2S_GRAPH_URL",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub graph_url: Option<String>,

    /// Dynamics 365 org URL, e.g. https://contoso.crm.dynamics.com [state: dynamics.url]
    #[arg(
        long,
        env = "MKTO_S2S_DYNAMICS_URL",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub dynamics_url: Option<String>,

    /// Use only this credential source. By default the first that is set up is used, in this
    /// order: env (client secret), certificate, workload-identity, managed-identity (only with
    /// IDENTITY_ENDPOINT set; the VM metadata endpoint is never tried unasked), cache, az,
    /// device-code
    #[arg(long, env = "MKTO_S2S_AUTH", value_enum, help_heading = "Connection")]
    pub auth: Option<AuthSource>,

    /// Public client id for device-code sign-in [default: the Azure CLI's, 04b07795-8ddb-461a-bbee-02f9e1bf7b46]
    #[arg(long, env = "MKTO_S2S_LOGIN_CLIENT_ID", value_name = "GUID", value_parser = crate::guid::clap_parser, help_heading = "Connection")]
    pub login_client_id: Option<String>,

    /// Extra root certificate (PEM) to trust, e.g. a TLS-inspecting proxy's [default: the file
    /// named by REQUESTS_CA_BUNDLE, else SSL_CERT_FILE]
    #[arg(
        long,
        env = "MKTO_S2S_CA_FILE",
        value_name = "FILE",
        help_heading = "Connection"
    )]
    pub ca_file: Option<PathBuf>,

    /// Give up after this long, retries and replication waits included (e.g. 90s, 10m)
    /// [default: 10m; 30m for publish-customizations]
    #[arg(long, env = "MKTO_S2S_TIMEOUT", value_name = "DURATION", value_parser = parse_duration, help_heading = "Run")]
    pub timeout: Option<Duration>,

    /// Do every read, send no write, and print the would-be document with its `plan` of writes
    /// on stdout (or to --plan FILE); a --state file is never written by a dry run
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,

    /// With --dry-run: write the would-be document and its plan to FILE instead of stdout
    #[arg(long, value_name = "FILE", requires = "dry_run", help_heading = "Run")]
    pub plan: Option<PathBuf>,

    /// Read the state document from FILE and rewrite it there atomically, instead of stdin/stdout;
    /// the file is locked while the tool runs
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub state: Option<PathBuf>,

    /// Move the document to the tenant or Dynamics org given by --tenant / --dynamics-url (or
    /// their environment variables) when it differs from tenant.id / dynamics.url; the ids that
    /// belong to the old target are dropped from the document
    #[arg(long, help_heading = "Connection")]
    pub retarget: bool,

    /// Print only what needs you on stderr: errors, warnings, failed checks and the result
    /// (the Marketo step-3 values); no per-action lines, no progress
    #[arg(short, long, help_heading = "Run", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Colour on stderr: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorChoice::Auto,
        help_heading = "Run"
    )]
    pub color: ColorChoice,

    /// Print this tool's shell completions or man page on stdout and exit (for packagers:
    /// `verify-sync --generate completions-bash > /usr/share/bash-completion/completions/verify-sync`)
    #[arg(long, value_enum, value_name = "WHAT", hide = true)]
    pub generate: Option<Generate>,

    /// Trace requests on stderr (-v), with headers and bodies, secrets redacted (-vv)
    #[arg(short, long, action = clap::ArgAction::Count, help_heading = "Run")]
    pub verbose: u8,
}

/// Writes what `--generate` asks for about `cmd` (a tool's clap command) to `out`.
pub fn generate(
    what: Generate,
    cmd: &mut clap::Command,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap_complete::Shell;
    let name = cmd.get_name().to_string();
    let shell = match what {
        Generate::Man => return clap_mangen::Man::new(cmd.clone()).render(out),
        Generate::CompletionsBash => Shell::Bash,
        Generate::CompletionsZsh => Shell::Zsh,
        Generate::CompletionsFish => Shell::Fish,
        Generate::CompletionsPowershell => Shell::PowerShell,
        Generate::CompletionsElvish => Shell::Elvish,
    };
    clap_complete::generate(shell, cmd, name, out);
    Ok(())
}

/// `90`, `90s`, `1500ms`, `10m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 90s, 10m or 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?} has an unknown unit (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 86_400.0 * 7.0) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// As [`parse_duration`], but `0` (or `0s`) is allowed: "do not wait".
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    let t = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if t.parse::<f64>().is_ok_and(|n| n == 0.0) {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
