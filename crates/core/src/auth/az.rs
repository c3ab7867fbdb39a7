//! The Azure CLI's sign-in (`az` in `--auth`): `az account get-access-token`, when `az` is on
//! PATH, within what is left of `--timeout`. The token lives until az's `expires_on`.

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
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    // Dropped on timeout (below) or when the tool stops: the child is killed, not orphaned.
    .kill_on_drop(true);
    // `az` is a launcher (a shell script, or az.cmd) that runs Python as its own child: on Unix
    // it gets a process group of its own, and the whole group is killed when the wait ends
    // early, so the Python doing the work is not left running.
    #[cfg(unix)]
    cmd.process_group(0);
    // `az` can hang (a proxy, a prompt, a broken install): it gets what is left of --timeout,
    // like every other wait.
    let remaining = cfg.remaining();
    let spawned = cmd.spawn();
    #[cfg(unix)]
    let mut group = KillGroup(spawned.as_ref().ok().and_then(|c| c.id()));
    let waited = match spawned {
        Ok(child) => tokio::time::timeout(remaining, child.wait_with_output()).await,
        Err(e) => Ok(Err(e)),
    };
    #[cfg(unix)]
    if matches!(waited, Ok(Ok(_))) {
        // Ended by itself (and reaped): its id may be reused, so nothing is killed later.
        group.0 = None;
    }
    let out = match waited {
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    az_token(&v, now).map(Some)
}

/// How long a token of an Azure CLI without `expires_on` is believed to live: a little less
/// than the shortest lifetime Entra gives an access token (60 minutes).
const ASSUMED_LIFETIME: u64 = 3000;

/// The token and its lifetime in seconds from `az account get-access-token`'s answer, read at
/// `now` (seconds since the epoch). The lifetime is from `expires_on` (seconds since the epoch,
/// printed since Azure CLI 2.54; a number, or a number in a string) when there is one — a token
/// az had cached may have minutes left, not fifty —, else [`ASSUMED_LIFETIME`] (`expiresOn` is
/// a local time without a zone). A date in the past is 0; a huge one is clamped where the
/// lifetime becomes an instant (`endpoint::expiry`), as for every token.
fn az_token(v: &Value, now: u64) -> Result<(SecretString, u64)> {
    let t = v["accessToken"]
        .as_str()
        .ok_or_else(|| Error::auth("the Azure CLI answered without accessToken"))?;
    let expires_on = v["expires_on"]
        .as_u64()
        .or_else(|| v["expires_on"].as_str().and_then(|s| s.trim().parse().ok()));
    let lifetime = expires_on.map_or(ASSUMED_LIFETIME, |on| on.saturating_sub(now));
    Ok((SecretString::from(t.to_string()), lifetime))
}

/// Kills the process group of `az` (its id, as `process_group(0)` made it) when dropped while
/// set: after a timeout, or when the tool stops mid-wait (a signal drops the future).
#[cfg(unix)]
struct KillGroup(Option<u32>);

#[cfg(unix)]
impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            crate::unix::kill_process_group(pid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn the_lifetime_is_read_from_expires_on_when_az_prints_it() {
        let now = 1_700_000_000;
        let life = |v: Value| az_token(&v, now).unwrap().1;
        let token = |extra: Value| {
            let mut v = json!({"accessToken": "t", "expiresOn": "2023-11-14 22:13:20.000000"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(life(token(json!({"expires_on": now + 120}))), 120);
        assert_eq!(
            life(token(json!({"expires_on": (now + 600).to_string()}))),
            600
        );
        // Already past: no lifetime (the chain asks az again), never an underflow.
        assert_eq!(life(token(json!({"expires_on": now - 5}))), 0);
        assert_eq!(life(token(json!({"expires_on": u64::MAX}))), u64::MAX - now);
        // Without it (an older az), or unreadable: the assumption.
        assert_eq!(life(token(json!({}))), ASSUMED_LIFETIME);
        assert_eq!(life(token(json!({"expires_on": "soon"}))), ASSUMED_LIFETIME);
        assert_eq!(life(token(json!({"expires_on": -1}))), ASSUMED_LIFETIME);
        assert_eq!(
            az_token(&token(json!({})), now).unwrap().0.expose_secret(),
            "t"
        );
        assert!(az_token(&json!({"expires_on": now}), now).is_err());
    }
}
