//! The Azure CLI's sign-in (`az` in `--auth`): `az account get-access-token`, when `az` is on
//! PATH, within what is left of `--timeout`.

use secrecy::SecretString;
use serde_json::Value;

use super::endpoint::Login;
use crate::error::{Error, Result};

pub(super) async fn from_az(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = login.config();
    // On Windows the Azure CLI is `az.cmd`, which Command does not find by "az" (it applies no
    // PATHEXT); a found batch file is run through cmd.exe by std, with its arguments escaped.
    #[cfg(windows)]
    let az = crate::win::find_program("az").unwrap_or_else(|| "az".into());
    #[cfg(not(windows))]
    let az = "az";
    let mut cmd = tokio::process::Command::new(az);
    cmd.args([
        "account",
        "get-access-token",
        "--output",
        "json",
        "--scope",
        &format!("{resource}/.default"),
        "--tenant",
        cfg.tenant()?,
    ])
    .stdin(std::process::Stdio::null())
    // Dropped on timeout (below) or when the tool stops: the child is killed, not orphaned.
    .kill_on_drop(true);
    // `az` can hang (a proxy, a prompt, a broken install): it gets what is left of --timeout,
    // like every other wait.
    let remaining = cfg.remaining();
    let out = match tokio::time::timeout(remaining, cmd.output()).await {
        Err(_) => {
            return Err(Error::timeout(format!(
                "the Azure CLI (az account get-access-token) did not answer within --timeout \
                 ({:.0} s left); it was stopped",
                remaining.as_secs_f64()
            ))
            .with_hint(
                "run `az account get-access-token` by hand to see what it waits for, or pass \
                 --auth env / --auth device-code",
            ));
        }
        Ok(Ok(o)) => o,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            if explicit {
                return Err(Error::auth("--auth az: the Azure CLI (az) is not on PATH"));
            }
            return Ok(None);
        }
        Ok(Err(e)) => return Err(Error::auth(format!("cannot run az: {e}"))),
    };
    if !out.status.success() {
        if explicit {
            let msg = String::from_utf8_lossy(&out.stderr);
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            return Err(
                Error::auth(format!("the Azure CLI could not get a token: {first}"))
                    .with_hint("run `az login --tenant <tenant>` first"),
            );
        }
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| Error::auth("the Azure CLI printed something that is not JSON"))?;
    let t = v["accessToken"]
        .as_str()
        .ok_or_else(|| Error::auth("the Azure CLI answered without accessToken"))?;
    Ok(Some((SecretString::from(t.to_string()), 3000)))
}
