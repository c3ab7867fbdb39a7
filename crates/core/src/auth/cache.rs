//! The token cache (`cache` in `--auth`): the refresh token an earlier device-code sign-in saved,
//! 0600 and written atomically, keyed by authority, tenant and login client; redeemed for any
//! resource, one redeem at a time per key in the process (Entra rotates it).

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::endpoint::{Login, login_error, token_from, token_url};
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::fsutil::MAX_SMALL_FILE;
use crate::http::{Method, Request, Service};
use crate::urls::base;

pub(super) fn cache_key(cfg: &Config) -> Result<String> {
    Ok(format!(
        "{}|{}|{}",
        base(&cfg.authority),
        cfg.tenant()?,
        cfg.login_client_id
    ))
}

pub(super) fn read_cache(path: &Path) -> serde_json::Map<String, Value> {
    // A FIFO or device named by MKTO_S2S_TOKEN_CACHE must not block the tool: read regular
    // files only.
    crate::fsutil::read_regular(path, MAX_SMALL_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

pub(super) fn save_refresh_token(cfg: &Config, refresh: &str) -> Result<()> {
    let Some(path) = &cfg.cache_file else {
        return Ok(());
    };
    let mut all = read_cache(path);
    all.insert(cache_key(cfg)?, json!({"refresh_token": refresh}));
    if let Some(dir) = path.parent() {
        // Only directories created here are made private; an existing one (the user's cache
        // directory, or `/tmp` for `MKTO_S2S_TOKEN_CACHE=/tmp/x`) is not ours to chmod. The
        // file itself is 0600 either way.
        crate::fsutil::create_private_dir_all(dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the token cache directory {}: {e}",
                crate::output::sanitize(&dir.display().to_string())
            ))
        })?;
    }
    let text = serde_json::to_vec(&Value::Object(all)).expect("JSON serialises");
    crate::fsutil::write_file(path, &text, 0o600, "the token cache (MKTO_S2S_TOKEN_CACHE)")
}

/// One refresh at a time per cache key in this process (a fleet run's documents share the
/// user's cache): the holder reads the cache after the previous holder saved its rotated token.
pub(super) async fn refresh_lock(cfg: &Config) -> tokio::sync::OwnedMutexGuard<()> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let key = cache_key(cfg).unwrap_or_default();
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default()
        .clone();
    lock.lock_owned().await
}

/// Redeems `refresh` for a token for `resource` with the login client: the access token, its
/// lifetime and the rotated refresh token, if one came back.
pub(super) async fn redeem_refresh(
    login: &Login<'_>,
    resource: &str,
    refresh: &str,
) -> Result<(SecretString, u64, Option<SecretString>)> {
    let cfg = login.config();
    let req = Request::new(Method::Post, Service::Login, token_url(cfg)?).form(vec![
        ("grant_type".into(), "refresh_token".into()),
        ("client_id".into(), cfg.login_client_id.clone()),
        ("refresh_token".into(), refresh.to_string()),
        (
            "scope".into(),
            format!("{resource}/.default offline_access"),
        ),
    ]);
    let v = login.send(req).await?.json()?;
    let next = v["refresh_token"]
        .as_str()
        .map(|r| SecretString::from(r.to_string()));
    let (token, expires) = token_from(&v)?;
    Ok((token, expires, next))
}

pub(super) async fn from_cache(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
    keep: &Mutex<Option<SecretString>>,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = login.config();
    // Read under the lock: another document of a fleet run may have just rotated it.
    let _one = refresh_lock(cfg).await;
    let refresh = cfg.cache_file.as_deref().map(read_cache).and_then(|m| {
        m.get(&cache_key(cfg).ok()?)?["refresh_token"]
            .as_str()
            .map(str::to_string)
    });
    let Some(refresh) = refresh else {
        if explicit {
            return Err(
                Error::auth("--auth cache: no cached sign-in for this tenant")
                    .with_hint("sign in once with --auth device-code on a terminal"),
            );
        }
        return Ok(None);
    };
    match redeem_refresh(login, resource, &refresh).await {
        Ok((token, expires, next)) => {
            if let Some(next) = next {
                save_refresh_token(cfg, next.expose_secret())?;
                *keep.lock().await = Some(next);
            }
            Ok(Some((token, expires)))
        }
        // An expired or revoked refresh token: fall through to the next source.
        Err(e) if !explicit && e.kind != Kind::Timeout => {
            login
                .reporter()
                .trace(1, &format!("cached sign-in no longer works ({e})"));
            Ok(None)
        }
        Err(e) => Err(login_error(e, "the cached sign-in")),
    }
}
