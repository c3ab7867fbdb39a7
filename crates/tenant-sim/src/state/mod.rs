//! The tenant: directory objects (Graph), the Dataverse org, and the runtime state around them
//! (request log, faults, device codes, refresh tokens, publish lock). Everything persisted by
//! `--state` is in [`Tenant`]; secrets appear there only as SHA-256 hashes.
//!
//! | file | part of the state |
//! | --- | --- |
//! | `mod.rs` | the running emulator ([`Sim`]): the tenant under a lock and the runtime state |
//! | `tenant.rs` | the persisted tenant: directory objects, the admin, the first-party apps |
//! | `org.rs` | the Dataverse org's data: tables, columns, rows |
//! | `seed.rs` | the tenant a fresh emulator starts with, directory and org |
//! | `trust.rs` | the certificates and the federated credential the tenant trusts for sign-in |
//!
//! The services (`graph/`, `dataverse/`, the sign-in endpoints) import from here; nothing here
//! imports a service.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{Value, json};

use crate::faults::ScriptedFault;
use crate::options::Options;
use crate::util::{lock, new_guid, now_ms, random_secret, sha256_hex};

pub mod org;
mod seed;
mod tenant;
mod trust;

pub use tenant::{
    AZURE_CLI_APP_ID, Assignment, DYNAMICS_APP_ID, GRAPH_APP_ID, Obj, SecretRec, Tenant,
    first_party_sp,
};
pub use trust::{EXCHANGE_AUDIENCE, Federation, TrustedCert};

/// Where the two listeners are.
#[derive(Debug, Clone, Default)]
pub struct Urls {
    pub main: String,
    pub dynamics: String,
}

/// A refresh token's grant (keyed by the token's hash).
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_oid: String,
    pub offline: bool,
}

/// A device code handed out by `/devicecode`: for whom and what, and whether it was polled.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub client_id: String,
    /// The scope of the `/devicecode` request: Entra issues the tokens for it when the poll
    /// (which carries no scope) succeeds.
    pub scope: String,
    pub polled: bool,
}

/// The running emulator.
pub struct Sim {
    pub opts: Options,
    pub key: [u8; 32],
    pub tenant: Mutex<Tenant>,
    pub admin_secret: Mutex<String>,
    pub log: Mutex<Vec<Value>>,
    pub seq: AtomicU64,
    pub faults: Mutex<Vec<ScriptedFault>>,
    pub urls: RwLock<Urls>,
    /// Pending device codes (keyed by the code's hash).
    pub device_codes: Mutex<HashMap<String, DeviceCode>>,
    pub refresh: Mutex<HashMap<String, RefreshGrant>>,
    /// Publish running until this `now_ms()`, if any.
    pub publish_until: Mutex<Option<u64>>,
    /// The message the next `PublishAllXmlAsync` system job fails with (`POST
    /// /_sim/fail-next-publish`), as a job that hits a solution error does (statuscode 31).
    pub fail_next_publish: Mutex<Option<String>>,
    pub rate: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Certificates trusted for client assertions (the admin's, once generated).
    pub trusted_certs: Mutex<Vec<TrustedCert>>,
    /// The admin's federated identity credential (set once the listener's URL is known).
    pub federation: Mutex<Option<Federation>>,
    /// With `Options::managed_identity`: the `IDENTITY_HEADER` value the managed-identity
    /// endpoint expects.
    pub identity_header: Option<String>,
}

/// Shared handle passed to the router.
pub type SharedState = Arc<Sim>;

impl Sim {
    pub fn new(opts: Options) -> Sim {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let (mut tenant, mut secret) = Tenant::seed(&opts);
        if let Some(path) = &opts.state_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(t) = serde_json::from_str::<Tenant>(&text) {
                    tenant = t;
                    if tenant.admin.sp_oid.is_empty() {
                        tenant.admin.sp_oid = new_guid();
                    }
                    // the old admin secret is not stored in clear: issue a new one
                    secret = random_secret(40);
                    tenant.admin.secret_sha256 = sha256_hex(&secret);
                }
            }
        }
        let identity_header = opts.managed_identity.then(|| random_secret(32));
        Sim {
            opts,
            key,
            tenant: Mutex::new(tenant),
            admin_secret: Mutex::new(secret),
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            faults: Mutex::new(Vec::new()),
            urls: RwLock::new(Urls::default()),
            device_codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            publish_until: Mutex::new(None),
            fail_next_publish: Mutex::new(None),
            rate: Mutex::new(HashMap::new()),
            trusted_certs: Mutex::new(Vec::new()),
            federation: Mutex::new(None),
            identity_header,
        }
    }

    pub fn urls(&self) -> Urls {
        self.urls.read().map(|u| u.clone()).unwrap_or_default()
    }

    /// Is an object created at `created_ms` visible to reads yet?
    pub fn visible(&self, created_ms: u64) -> bool {
        now_ms().saturating_sub(created_ms) >= self.opts.replication_lag_ms
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Back to a freshly seeded tenant (same admin credentials and tenant id so clients keep
    /// working), empty log, no faults.
    pub fn reset(&self) {
        let (mut fresh, _) = Tenant::seed(&self.opts);
        {
            let mut t = lock(&self.tenant);
            fresh.tenant_id = t.tenant_id.clone();
            fresh.admin = t.admin.clone();
            fresh.dataverse = seed::seed(&self.opts, &fresh.admin);
            *t = fresh;
        }
        lock(&self.log).clear();
        lock(&self.faults).clear();
        lock(&self.device_codes).clear();
        lock(&self.refresh).clear();
        *lock(&self.publish_until) = None;
        lock(&self.rate).clear();
        self.seq.store(0, Ordering::SeqCst);
        self.save();
    }

    /// Persist the tenant (atomically: temp file + rename) when `--state` is set.
    pub fn save(&self) {
        let Some(path) = &self.opts.state_file else {
            return;
        };
        let text = {
            let t = lock(&self.tenant);
            serde_json::to_string_pretty(&*t).unwrap_or_default()
        };
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// The whole tenant as `/_sim/state` shows it (secrets as hashes only).
    pub fn state_json(&self) -> Value {
        let t = lock(&self.tenant);
        let mut v = serde_json::to_value(&*t).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "publish_running".into(),
                json!(lock(&self.publish_until).is_some_and(|u| u > now_ms())),
            );
        }
        v
    }
}
