//! The client tools use, [`Http`] (`ctx.http`): the transport ([`crate::http`]) with the
//! credential chain ([`crate::auth`]) supplying the bearer tokens its requests name. It is the
//! one place that knows both, so imports point one way: `api` → `auth` → `http`.
//!
//! Typed clients (graph, dataverse) build [`Request`]s and send them here; they never print.

use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;
use serde_json::Value;

use crate::auth::{Login, TokenProvider, jwt};
use crate::config::Config;
use crate::error::{Caller, Result};
use crate::http::{Auth, Request, Response, Settings, TokenSource, Transport};
use crate::output::Reporter;

/// One per process (one per document in `verify-sync --fleet`).
pub struct Http {
    cfg: Config,
    transport: Transport,
    tokens: TokenProvider,
}

impl TokenSource for Http {
    async fn token_for(&self, resource: &str) -> Result<SecretString> {
        self.tokens.token(&self.login(), resource).await
    }
}

impl Http {
    pub fn new(cfg: Config, report: Arc<Reporter>) -> Self {
        let settings = Settings {
            tool: cfg.tool,
            ca_file: cfg.ca_file.clone(),
            ca_file_source: cfg.ca_file_source,
            timeout: cfg.timeout,
            deadline: cfg.deadline,
        };
        Http {
            cfg,
            transport: Transport::new(settings, report),
            tokens: TokenProvider::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn reporter(&self) -> &Reporter {
        self.transport.reporter()
    }
    pub fn deadline(&self) -> Instant {
        self.cfg.deadline
    }
    /// What a credential source signs in through.
    fn login(&self) -> Login<'_> {
        Login::new(&self.transport, &self.cfg)
    }

    /// A bearer token for `resource` (e.g. `https://graph.microsoft.com`) from the chain.
    pub async fn token(&self, resource: &str) -> Result<SecretString> {
        self.tokens.token(&self.login(), resource).await
    }

    /// Client credentials for any app (verify-sync's test of the Marketo app's own secret):
    /// the token for `resource` and its lifetime; errors name `who`.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &SecretString,
        resource: &str,
        who: &str,
    ) -> Result<(SecretString, u64)> {
        crate::auth::client_credentials(&self.login(), client_id, secret, resource, who).await
    }

    /// Writes that succeeded: `steps.<tool>.changed` is true exactly when this is non-zero.
    pub fn writes(&self) -> usize {
        self.transport.ledger().writes()
    }
    /// Writes sent or planned, successful or not.
    pub fn attempted_writes(&self) -> usize {
        self.transport.ledger().attempted_writes()
    }
    /// Successful (or, in a dry run, planned) writes to the Dynamics org.
    pub fn dataverse_writes(&self) -> usize {
        self.transport.ledger().dataverse_writes()
    }
    /// Counts a change made outside HTTP (teardown deleting the local secret file), so
    /// `steps.<tool>.changed` tells the truth. Never call it in `--dry-run`.
    pub fn count_local_write(&self) {
        self.transport.ledger().count_local_write();
    }
    pub fn request_count(&self) -> usize {
        self.transport.ledger().request_count()
    }
    pub fn take_plan(&self) -> Vec<Value> {
        self.transport.ledger().take_plan()
    }

    /// The tenant id (`tid` claim) of the Graph token this run signs in with: how a tenant given
    /// as a domain is compared with a document's tenant id before any write. `None` when the
    /// token is not a JWT with a `tid` (Entra's access tokens are, but they are not a contract).
    pub async fn signed_in_tenant_id(&self) -> Result<Option<String>> {
        let token = self.token(&crate::urls::base(&self.cfg.graph)).await?;
        Ok(jwt::claim(&token, "tid"))
    }

    /// A write: in `--dry-run` it is added to the plan and `None` is returned; otherwise it is
    /// sent like any request.
    pub async fn write(&self, req: Request) -> Result<Option<Response>> {
        if self.cfg.dry_run {
            self.transport.plan(&req);
            return Ok(None);
        }
        self.send(req).await.map(Some)
    }

    /// Sends with retries until success, a non-retryable answer, or the deadline. A 403 names
    /// who the token said the caller was, so the hint can name what is missing.
    pub async fn send(&self, req: Request) -> Result<Response> {
        let auth = req.auth.clone();
        let mut result = self.transport.send(req, self).await;
        if let Err(e) = &mut result {
            if e.status() == Some(403) {
                let caller = self.caller_of(&auth).await;
                if let Some(se) = e.service_mut() {
                    se.caller = caller;
                }
            }
        }
        result
    }

    /// The claims of the token a request was sent with (already cached: it was just used).
    async fn caller_of(&self, auth: &Auth) -> Option<Caller> {
        let token = match auth {
            Auth::None => return None,
            Auth::Resource(r) => self.token(r).await.ok()?,
            Auth::Token(t) => t.clone(),
        };
        jwt::caller(&token)
    }
}
