//! Every key of the state document that the tools read or write, typed: a key is named once,
//! here, and read and written through [`StateDoc::get`] and [`StateDoc::set`], so a key cannot be
//! misspelt in one tool, read as a string in one place and as a GUID in another, or be left out
//! of the README (a test below checks that every key is documented there).
//!
//! A tool declares what it reads and writes (`Tool::READS`, `Tool::WRITES`) with these constants;
//! the harness type-checks the keys it reads before the step runs, and `--help` lists both. Keys
//! inside one key's value (the fields of `dynamics.roles[]`, `secret.pending`, `sign_in`) are the
//! owning tool's; `steps.<tool>` and `plan` are the harness's.
//!
//! [`StateDoc::get`]: crate::state::StateDoc::get
//! [`StateDoc::set`]: crate::state::StateDoc::set

use std::marker::PhantomData;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What a key holds, as the harness checks it before a tool runs (a wrong type is exit 2 naming
/// the key, before any request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Str,
    /// A GUID (8-4-4-4-12 hex digits; braces and upper case accepted, read back normalised).
    Guid,
    /// An https URL (http on loopback), checked as `--dynamics-url` is.
    Url,
    Bool,
    Object,
    Array,
}

/// A key of the state document whose value is a `T` ([`Str`], [`Guid`], [`Url`], [`Bool`],
/// [`Object`], [`Array`]). Only this module makes them: every key is one of the constants below.
#[derive(Debug)]
pub struct DocKey<T> {
    path: &'static str,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for DocKey<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for DocKey<T> {}

impl<T: KeyType> DocKey<T> {
    const fn new(path: &'static str) -> Self {
        DocKey {
            path,
            kind: PhantomData,
        }
    }

    /// The dotted path, `"app.client_id"`: for messages and the untyped [`StateDoc`](crate::state::StateDoc) calls.
    pub const fn path(self) -> &'static str {
        self.path
    }

    /// The key with its type as a value, for lists of keys of different types (`Tool::READS`).
    pub const fn any(self) -> AnyKey {
        AnyKey {
            path: self.path,
            kind: T::KIND,
        }
    }
}

impl<T> std::fmt::Display for DocKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.path)
    }
}

/// A key of any type: what a list of keys holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnyKey {
    pub path: &'static str,
    pub kind: KeyKind,
}

impl KeyKind {
    /// Checks a key's value (present, not null) as the typed read would: exit 2 naming the key
    /// for a value of the wrong type; a URL key is also checked as `--dynamics-url` is.
    pub fn check(self, value: &Value, path: &str) -> Result<()> {
        match self {
            KeyKind::Str => Str::from_json(value, path).map(drop),
            KeyKind::Guid => Guid::from_json(value, path).map(drop),
            KeyKind::Bool => Bool::from_json(value, path).map(drop),
            KeyKind::Object => Object::from_json(value, path).map(drop),
            KeyKind::Array => Array::from_json(value, path).map(drop),
            KeyKind::Url => {
                let u = Url::from_json(value, path)?;
                crate::urls::check_url(u, &format!("state document key {path}")).map(drop)
            }
        }
    }
}

/// The type of a key's value: how it is read from the document.
pub trait KeyType {
    const KIND: KeyKind;
    /// What a read returns.
    type Value<'a>;
    /// The value from what the document holds at `path` (present, not null); a value of another
    /// type is bad input (exit 2) naming the key.
    fn from_json<'a>(value: &'a Value, path: &str) -> Result<Self::Value<'a>>;
}

/// A string.
#[derive(Debug)]
pub enum Str {}
/// A GUID, read back lower-cased without braces.
#[derive(Debug)]
pub enum Guid {}
/// A URL; read as its text (the harness has checked it by then, see [`KeyKind::Url`]).
#[derive(Debug)]
pub enum Url {}
/// `true` or `false`.
#[derive(Debug)]
pub enum Bool {}
/// A JSON object.
#[derive(Debug)]
pub enum Object {}
/// A JSON array.
#[derive(Debug)]
pub enum Array {}

impl KeyType for Str {
    const KIND: KeyKind = KeyKind::Str;
    type Value<'a> = &'a str;
    fn from_json<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(path, "a string", other)),
        }
    }
}
impl KeyType for Guid {
    const KIND: KeyKind = KeyKind::Guid;
    type Value<'a> = String;
    fn from_json(value: &Value, path: &str) -> Result<String> {
        let s = Str::from_json(value, path)?;
        crate::guid::parse(s)
            .map_err(|_| Error::usage(format!("state document key {path} is not a GUID: {s:?}")))
    }
}
impl KeyType for Url {
    const KIND: KeyKind = KeyKind::Url;
    type Value<'a> = &'a str;
    fn from_json<'a>(value: &'a Value, path: &str) -> Result<&'a str> {
        Str::from_json(value, path)
    }
}
impl KeyType for Bool {
    const KIND: KeyKind = KeyKind::Bool;
    type Value<'a> = bool;
    fn from_json(value: &Value, path: &str) -> Result<bool> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(wrong_type(path, "true or false", other)),
        }
    }
}
impl KeyType for Object {
    const KIND: KeyKind = KeyKind::Object;
    type Value<'a> = &'a Map<String, Value>;
    fn from_json<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
        match value {
            Value::Object(m) => Ok(m),
            other => Err(wrong_type(path, "an object", other)),
        }
    }
}
impl KeyType for Array {
    const KIND: KeyKind = KeyKind::Array;
    type Value<'a> = &'a Vec<Value>;
    fn from_json<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
        match value {
            Value::Array(a) => Ok(a),
            other => Err(wrong_type(path, "an array", other)),
        }
    }
}

/// A value that may be written to a key of type `T`: text to a string, GUID or URL key, a bool to
/// a bool key, an object or array to those. `None` writes JSON `null` (a key the tool clears on
/// purpose, which reads back as absent).
pub trait ValueFor<T> {
    fn into_value(self) -> Value;
}

macro_rules! text_values {
    ($($ty:ident),*) => {$(
        impl ValueFor<$ty> for &str {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
        impl ValueFor<$ty> for String {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
        impl ValueFor<$ty> for &String {
            fn into_value(self) -> Value {
                Value::from(self.as_str())
            }
        }
    )*};
}
text_values!(Str, Guid, Url);

impl ValueFor<Bool> for bool {
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}
impl ValueFor<Array> for Vec<Value> {
    fn into_value(self) -> Value {
        Value::Array(self)
    }
}
impl ValueFor<Object> for Map<String, Value> {
    fn into_value(self) -> Value {
        Value::Object(self)
    }
}
/// A `json!({...})` or `json!([...])` built in place; anything but an object or array there is
/// a bug, caught by the tests (debug builds).
impl ValueFor<Object> for Value {
    fn into_value(self) -> Value {
        debug_assert!(self.is_object(), "an object key set to {self}");
        self
    }
}
impl ValueFor<Array> for Value {
    fn into_value(self) -> Value {
        debug_assert!(self.is_array(), "an array key set to {self}");
        self
    }
}
impl<T, V: ValueFor<T>> ValueFor<T> for Option<V> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, V::into_value)
    }
}

/// A path the untyped calls accept: a key constant or a dotted path built at run time
/// (`steps.<tool>`).
pub trait DocPath {
    fn doc_path(&self) -> &str;
}
impl DocPath for &str {
    fn doc_path(&self) -> &str {
        self
    }
}
impl DocPath for String {
    fn doc_path(&self) -> &str {
        self
    }
}
impl DocPath for &String {
    fn doc_path(&self) -> &str {
        self
    }
}
impl<T> DocPath for DocKey<T> {
    fn doc_path(&self) -> &str {
        self.path
    }
}
impl DocPath for AnyKey {
    fn doc_path(&self) -> &str {
        self.path
    }
}

/// `keys! { /// doc \n NAME: Type = "path"; ... }`: the constants, and [`ALL`] with each of them.
macro_rules! keys {
    ($( $(#[$doc:meta])* $name:ident: $ty:ident = $path:literal; )*) => {
        $( $(#[$doc])* pub const $name: DocKey<$ty> = DocKey::new($path); )*
        /// Every key above, in order: what the README must document.
        pub const ALL: &[AnyKey] = &[$($name.any()),*];
    };
}

keys! {
    /// This connection's id, minted by register-app (see [`crate::setup`]).
    SETUP_ID: Guid = "setup.id";

    /// The tenant's id (a domain is resolved to it).
    TENANT_ID: Str = "tenant.id";
    /// The domain the tenant was named by, once a run with it succeeded.
    TENANT_DOMAIN: Str = "tenant.domain";
    TENANT_CLOUD: Str = "tenant.cloud";

    /// How to sign in to this customer's tenant (never a secret; see [`crate::auth::signin`]).
    SIGN_IN: Object = "sign_in";

    APP_DISPLAY_NAME: Str = "app.display_name";
    /// The application's `uniqueName`; `null` for an app adopted by client id that has none.
    APP_UNIQUE_NAME: Str = "app.unique_name";
    APP_CLIENT_ID: Guid = "app.client_id";
    APP_OBJECT_ID: Guid = "app.object_id";
    APP_SERVICE_PRINCIPAL_ID: Guid = "app.service_principal_id";
    /// The app was adopted with `--client-id` (made in the portal): teardown keeps it.
    APP_ADOPTED: Bool = "app.adopted";

    CONSENT: Object = "consent";
    /// An `oauth2PermissionGrant` id (not a GUID).
    CONSENT_GRANT_ID: Str = "consent.grant_id";
    CONSENT_RESOURCE_SERVICE_PRINCIPAL_ID: Guid = "consent.resource_service_principal_id";
    CONSENT_SCOPE: Str = "consent.scope";
    /// This setup created the grant (a grant carries no mark).
    CONSENT_CREATED: Bool = "consent.created";
    /// grant-consent is creating the grant: saved to `--state` before the POST and removed when
    /// the run ends, so a re-run after a kill knows the grant it finds is the setup's.
    CONSENT_PENDING_CREATE: Bool = "consent.pending_create";

    SECRET: Object = "secret";
    SECRET_KEY_ID: Guid = "secret.key_id";
    SECRET_HINT: Str = "secret.hint";
    SECRET_EXPIRES_AT: Str = "secret.expires_at";
    SECRET_DISPLAY_NAME: Str = "secret.display_name";
    /// The file holding the secret, by name when beside the `--state` file.
    SECRET_FILE: Str = "secret.file";
    /// The SHA-256 of the saved secret (never the secret).
    SECRET_SHA256: Str = "secret.sha256";
    /// The lifetime new secrets are made with (`24mo`).
    SECRET_LIFETIME: Str = "secret.lifetime";
    /// The credential Marketo may still use after `--rotate`, until `--retire-old`.
    SECRET_PREVIOUS_KEY_ID: Guid = "secret.previous_key_id";
    /// `external` after `--forget-file`: the secret lives in a vault, not a file.
    SECRET_STORAGE: Str = "secret.storage";
    /// The journal of an `addPassword` in flight (make-secret's own fields).
    SECRET_PENDING: Object = "secret.pending";
    /// The secret's value: only with `make-secret --reveal`.
    SECRET_VALUE: Str = "secret.value";

    HRD_POLICY: Object = "hrd_policy";
    HRD_POLICY_STATUS: Str = "hrd_policy.status";
    HRD_POLICY_POLICY_ID: Guid = "hrd_policy.policy_id";
    HRD_POLICY_DISPLAY_NAME: Str = "hrd_policy.display_name";
    /// The policies `--replace` unassigned.
    HRD_POLICY_REPLACED: Array = "hrd_policy.replaced";

    /// The Dynamics 365 org.
    DYNAMICS_URL: Url = "dynamics.url";
    /// The org's friendly name, for messages.
    DYNAMICS_ORG_NAME: Str = "dynamics.org_name";
    DYNAMICS_APPLICATION_USER_ID: Guid = "dynamics.application_user_id";
    /// The application user's e-mail: the username Marketo's step 3 asks for.
    DYNAMICS_USERNAME: Str = "dynamics.username";
    DYNAMICS_BUSINESS_UNIT_ID: Guid = "dynamics.business_unit_id";
    /// This setup created the application user (a user carries no mark).
    DYNAMICS_APPLICATION_USER_CREATED: Bool = "dynamics.application_user_created";
    /// teardown disabled the application user.
    DYNAMICS_APPLICATION_USER_DISABLED: Bool = "dynamics.application_user_disabled";
    /// `[{id, name, added}]`: `added` when this setup gave the role.
    DYNAMICS_ROLES: Array = "dynamics.roles";
    /// The Marketo solution found in the org (`unique_name`, `version`).
    DYNAMICS_SOLUTION: Object = "dynamics.solution";

    MARKETO_CONFIG: Object = "marketo_config";
    MARKETO_CONFIG_ENTITY_SET: Str = "marketo_config.entity_set";
    MARKETO_CONFIG_ENTITY: Str = "marketo_config.entity";
    MARKETO_CONFIG_RECORD_ID: Guid = "marketo_config.record_id";
    MARKETO_CONFIG_RECORD_NAME: Str = "marketo_config.record_name";
    MARKETO_CONFIG_USER_LOOKUP: Str = "marketo_config.user_lookup";
    MARKETO_CONFIG_NAV_PROPERTY: Str = "marketo_config.nav_property";
    MARKETO_CONFIG_SYNC_USER_ID: Guid = "marketo_config.sync_user_id";
    /// Whom `--replace-sync-user` replaced, so teardown can put it back.
    MARKETO_CONFIG_PREVIOUS_USER_ID: Guid = "marketo_config.previous_user_id";
    MARKETO_CONFIG_PREVIOUS_USER: Str = "marketo_config.previous_user";

    PUBLISH: Object = "publish";
    /// `published`, `skipped-unchanged`, `planned`, or `pending` while a publish is owed.
    PUBLISH_STATUS: Str = "publish.status";
    PUBLISH_AT: Str = "publish.at";
    PUBLISH_MODE: Str = "publish.mode";
    PUBLISH_ASYNC_OPERATION_ID: Guid = "publish.async_operation_id";
    PUBLISH_LAST_PUBLISHED_AT: Str = "publish.last_published_at";

    SYNC_FILTER: Object = "sync_filter";
    SYNC_FILTER_FIELD: Str = "sync_filter.field";
    /// `[{entity, status}]`: `created` is this setup's column.
    SYNC_FILTER_ENTITIES: Array = "sync_filter.entities";
    SYNC_FILTER_PUBLISHED: Array = "sync_filter.published";
    SYNC_FILTER_DEFAULT: Str = "sync_filter.default";
    /// The columns still to publish: a re-run publishes them.
    SYNC_FILTER_PUBLISH_PENDING: Array = "sync_filter.publish_pending";

    PREFLIGHT_OK: Bool = "preflight.ok";
    PREFLIGHT_AT: Str = "preflight.at";
    PREFLIGHT_CHECKS: Array = "preflight.checks";

    VERIFY: Object = "verify";
    VERIFY_OK: Bool = "verify.ok";
    VERIFY_AT: Str = "verify.at";
    VERIFY_CHECKS: Array = "verify.checks";
    /// The values Marketo's step 3 asks for (never the secret).
    VERIFY_MARKETO_STEP3: Object = "verify.marketo_step3";

    /// What teardown removed, for a re-run and for people.
    TEARDOWN_CLIENT_ID: Guid = "teardown.client_id";
    TEARDOWN_APPLICATION_OBJECT_ID: Guid = "teardown.application_object_id";
    TEARDOWN_SERVICE_PRINCIPAL_ID: Guid = "teardown.service_principal_id";
    /// The commands that restore the deleted app and service principal (30 days).
    TEARDOWN_RESTORE_COMMAND: Str = "teardown.restore_command";
    TEARDOWN_REMOVED: Array = "teardown.removed";

    /// `steps.<tool>`: what each tool's last run did (the harness's).
    STEPS: Object = "steps";
    /// A dry run's would-be writes (the harness's).
    PLAN: Array = "plan";
}

/// The three keys a checklist is recorded in (`ok`, `at`, `checks`).
#[derive(Debug, Clone, Copy)]
pub struct ChecklistKeys {
    pub ok: DocKey<Bool>,
    pub at: DocKey<Str>,
    pub checks: DocKey<Array>,
}

/// preflight's checklist.
pub const PREFLIGHT_CHECKLIST: ChecklistKeys = ChecklistKeys {
    ok: PREFLIGHT_OK,
    at: PREFLIGHT_AT,
    checks: PREFLIGHT_CHECKS,
};

/// verify-sync's checklist.
pub const VERIFY_CHECKLIST: ChecklistKeys = ChecklistKeys {
    ok: VERIFY_OK,
    at: VERIFY_AT,
    checks: VERIFY_CHECKS,
};

/// What belongs to one tenant: `--retarget` to another tenant drops it (names and settings stay,
/// so every step finds or creates its objects in the new tenant).
pub const TENANT_SCOPED: &[AnyKey] = &[
    APP_CLIENT_ID.any(),
    APP_OBJECT_ID.any(),
    APP_SERVICE_PRINCIPAL_ID.any(),
    TENANT_DOMAIN.any(),
    CONSENT.any(),
    SECRET.any(),
    HRD_POLICY.any(),
    DYNAMICS_APPLICATION_USER_ID.any(),
    DYNAMICS_USERNAME.any(),
    DYNAMICS_ROLES.any(),
    MARKETO_CONFIG.any(),
    PUBLISH.any(),
    VERIFY.any(),
    STEPS.any(),
];

/// What belongs to one Dynamics org: `--retarget` to another org drops it, with the
/// `steps.<tool>` of the tools whose record is the org's ([`crate::tools::ToolInfo::org_scoped`]).
pub const ORG_SCOPED: &[AnyKey] = &[
    DYNAMICS_APPLICATION_USER_ID.any(),
    DYNAMICS_USERNAME.any(),
    DYNAMICS_BUSINESS_UNIT_ID.any(),
    DYNAMICS_ROLES.any(),
    DYNAMICS_SOLUTION.any(),
    DYNAMICS_ORG_NAME.any(),
    MARKETO_CONFIG.any(),
    PUBLISH.any(),
    SYNC_FILTER.any(),
    VERIFY.any(),
];

/// The keys core's configuration reads for every tool (when no flag or environment variable
/// overrides them), checked even when a flag makes them unused: a document with a wrong type
/// there is broken for the next tool too.
pub const COMMON_READS: &[AnyKey] = &[
    TENANT_ID.any(),
    TENANT_DOMAIN.any(),
    TENANT_CLOUD.any(),
    DYNAMICS_URL.any(),
    DYNAMICS_ORG_NAME.any(),
    SIGN_IN.any(),
];

/// The JSON type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error for a key (or a parent on its path) holding a value of another type.
pub(crate) fn wrong_type(path: &str, want: &str, got: &Value) -> Error {
    Error::usage(format!(
        "state document key {path} must be {want}, found {}",
        type_name(got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_named_once() {
        for (i, k) in ALL.iter().enumerate() {
            assert!(
                ALL[i + 1..].iter().all(|o| o.path != k.path),
                "{} twice",
                k.path
            );
            assert!(
                k.path.split('.').all(|p| !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())),
                "{}",
                k.path
            );
        }
        for list in [TENANT_SCOPED, ORG_SCOPED, COMMON_READS] {
            for k in list {
                assert!(ALL.contains(k), "{}", k.path);
            }
        }
    }

    /// Every key is documented in the README: in the example document of "The state document",
    /// or by its full name (`app.client_id`, in backticks) in that section or the tools table.
    #[test]
    fn every_key_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        let section = |title: &str| {
            let start = readme
                .find(title)
                .unwrap_or_else(|| panic!("README has no {title}"));
            let rest = &readme[start + title.len()..];
            &rest[..rest.find("\n## ").unwrap_or(rest.len())]
        };
        let state = section("\n## The state document\n");
        let tools = section("\n## The tools\n");
        let example = state
            .split("```json\n")
            .nth(1)
            .and_then(|s| s.split("\n```").next())
            .expect("the state document section has a JSON example");
        let example: Value = serde_json::from_str(example).expect("the example is JSON");
        let in_example = |path: &str| {
            path.split('.')
                .try_fold(&example, |v, p| v.get(p))
                .is_some()
        };
        let named = |path: &str| {
            let quoted = format!("`{path}`");
            state.contains(&quoted) || tools.contains(&quoted)
        };
        let missing: Vec<&str> = ALL
            .iter()
            .map(|k| k.path)
            .filter(|p| !in_example(p) && !named(p))
            .collect();
        assert!(
            missing.is_empty(),
            "state keys the README does not document (add them to the example document in \
             \"The state document\" or name them in the tools table): {missing:?}"
        );
    }
}
