//! Device-code sign-in (`device-code` in `--auth`): only when stderr is a terminal, with the
//! login client (`--login-client-id`); the refresh token it returns is cached for the next tools.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;

use super::cache::save_refresh_token;
use super::endpoint::{Login, expiry, login_error, token_from, token_url};
use crate::error::{Error, Result};
use crate::http::{Method, Request, Service, parse_service_error};
use crate::urls::base;

pub(super) async fn from_device_code(
    login: &Login<'_>,
    resource: &str,
    explicit: bool,
    keep: &Mutex<Option<SecretString>>,
) -> Result<Option<(SecretString, u64)>> {
    let cfg = login.config();
    let rep = login.reporter();
    if !rep.is_terminal() {
        if explicit {
            return Err(Error::auth(
                "--auth device-code needs stderr on a terminal to show the sign-in code",
            ));
        }
        return Ok(None);
    }
    let url = format!(
        "{}/{}/oauth2/v2.0/devicecode",
        base(&cfg.authority),
        crate::odata::encode(cfg.tenant()?)
    );
    let resp = login
        .send(Request::new(Method::Post, Service::Login, url).form(vec![
            ("client_id".into(), cfg.login_client_id.clone()),
            (
                "scope".into(),
                format!("{resource}/.default offline_access"),
            ),
        ]))
        .await
        .map_err(|e| login_error(e, "device-code sign-in"))?;
    let v = resp.json()?;
    let device_code = v["device_code"]
        .as_str()
        .ok_or_else(|| Error::auth("the device-code endpoint answered without a device_code"))?
        .to_string();
    let message = v["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}",
                v["verification_uri"].as_str().unwrap_or("the sign-in page"),
                v["user_code"].as_str().unwrap_or("?")
            )
        });
    rep.warn(&message);
    // Both numbers come from the wire: clamp them (an interval of 2^64-1 s or an expiry past
    // `Instant`'s range would panic on the additions below).
    let mut interval = Duration::from_secs(v["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    let expires = expiry(Instant::now(), v["expires_in"].as_u64().unwrap_or(900));
    let start = Instant::now();
    loop {
        let req = Request::new(Method::Post, Service::Login, token_url(cfg)?)
            .form(vec![
                (
                    "grant_type".into(),
                    "urn:ietf:params:oauth:grant-type:device_code".into(),
                ),
                ("client_id".into(), cfg.login_client_id.clone()),
                ("device_code".into(), device_code.clone()),
            ])
            .accept(400);
        let resp = login.send(req).await?;
        let v = resp.json()?;
        if resp.status == 200 {
            rep.clear_progress();
            if let Some(r) = v["refresh_token"].as_str() {
                save_refresh_token(cfg, r)?;
                *keep.lock().await = Some(SecretString::from(r.to_string()));
            }
            return token_from(&v).map(Some);
        }
        match v["error"].as_str().unwrap_or_default() {
            "authorization_pending" => {}
            "slow_down" => {
                interval = (interval + Duration::from_secs(5)).min(Duration::from_secs(60))
            }
            other => {
                let se = parse_service_error(Service::Login, &resp);
                return Err(login_error(
                    Error::from_service(format!("device-code sign-in ({other})"), se),
                    "device-code sign-in",
                ));
            }
        }
        if Instant::now()
            .checked_add(interval)
            .is_none_or(|t| t > expires.min(cfg.deadline))
        {
            return Err(Error::auth("device-code sign-in was not completed in time")
                .with_hint("run the tool again and complete the sign-in in the browser"));
        }
        rep.progress("waiting for the device-code sign-in", start.elapsed());
        tokio::time::sleep(interval).await;
    }
}
