//! Which app registration or service principal a step works on — named by a flag or by the
//! state document — and reading it right after `register-app` made it, while it replicates.
//!
//! grant-consent and set-hrd-policy work on the app's service principal, make-secret on the app
//! registration. Each accepts either the object id or the application (client) id, flags before
//! the document, and waits a bounded time for a replica to show the object (graph.md §7.4)
//! before concluding it is not there (exit 4: run register-app first).

use s2s_core::config::missing;
use s2s_core::keys;
use s2s_core::retry::{REPLICATION_WINDOW, visible_within};
use s2s_core::{Error, Result, StateDoc};

use crate::{Application, Graph, ServicePrincipal};

/// The app's service principal, by its object id or by the app's client id.
#[derive(Debug, Clone, PartialEq)]
pub enum SpRef {
    /// Object id of the service principal (`app.service_principal_id`).
    Id(String),
    /// Application (client) id of the app (`app.client_id`).
    AppId(String),
}

impl SpRef {
    /// Flags first (`--service-principal-id`, then `--client-id`), then the document
    /// (`app.service_principal_id`, then `app.client_id`); exit 2 naming the flag and the key
    /// when none is there.
    pub fn from_flags_or_doc(
        service_principal_id: Option<&str>,
        client_id: Option<&str>,
        doc: &StateDoc,
    ) -> Result<SpRef> {
        if let Some(id) = service_principal_id {
            return Ok(SpRef::Id(id.to_string()));
        }
        if let Some(c) = client_id {
            return Ok(SpRef::AppId(c.to_string()));
        }
        if let Some(id) = doc.get(keys::APP_SERVICE_PRINCIPAL_ID)? {
            return Ok(SpRef::Id(id));
        }
        if let Some(c) = doc.get(keys::APP_CLIENT_ID)? {
            return Ok(SpRef::AppId(c));
        }
        Err(missing(
            "the app's service principal",
            "--service-principal-id",
            keys::APP_SERVICE_PRINCIPAL_ID.path(),
        ))
    }

    /// Exit 4: the service principal is not in the tenant (after waiting out replication).
    fn not_found(&self) -> Error {
        Error::refused(format!("no {} in this tenant", self.describe())).with_hint(
            "run register-app first and pipe its output here, or check --service-principal-id and --tenant",
        )
    }

    fn describe(&self) -> String {
        match self {
            SpRef::Id(id) => format!("service principal {id}"),
            SpRef::AppId(a) => format!("service principal for client id {a}"),
        }
    }
}

/// The app registration, by its object id or by its client id.
#[derive(Debug, Clone, PartialEq)]
pub enum AppRef {
    /// Object id of the application (`app.object_id`).
    ObjectId(String),
    /// Application (client) id (`app.client_id`).
    ClientId(String),
}

impl AppRef {
    /// Flags first (`--object-id`, then `--client-id`), then the document (`app.object_id`,
    /// then `app.client_id`); exit 2 naming the flags and the keys when none is there.
    pub fn from_flags_or_doc(
        object_id: Option<&str>,
        client_id: Option<&str>,
        doc: &StateDoc,
    ) -> Result<AppRef> {
        if let Some(o) = object_id {
            return Ok(AppRef::ObjectId(o.to_string()));
        }
        if let Some(c) = client_id {
            return Ok(AppRef::ClientId(c.to_string()));
        }
        if let Some(o) = doc.get(keys::APP_OBJECT_ID)? {
            return Ok(AppRef::ObjectId(o));
        }
        if let Some(c) = doc.get(keys::APP_CLIENT_ID)? {
            return Ok(AppRef::ClientId(c));
        }
        Err(missing(
            "the app registration",
            "--object-id or --client-id",
            &format!("{} (or {})", keys::APP_OBJECT_ID, keys::APP_CLIENT_ID),
        ))
    }

    fn describe(&self) -> String {
        match self {
            AppRef::ObjectId(id) => format!("object id {id}"),
            AppRef::ClientId(c) => format!("client id {c}"),
        }
    }
}

impl Graph<'_> {
    /// One read of the service principal `r` names; `None` on 404.
    pub async fn service_principal_at(&self, r: &SpRef) -> Result<Option<ServicePrincipal>> {
        match r {
            SpRef::Id(id) => self.service_principal(id).await,
            SpRef::AppId(a) => self.service_principal_by_app_id(a).await,
        }
    }

    /// One read of the app registration `r` names; `None` on 404.
    pub async fn application_at(&self, r: &AppRef) -> Result<Option<Application>> {
        match r {
            AppRef::ObjectId(id) => self.application(id).await,
            AppRef::ClientId(c) => self.application_by_app_id(c).await,
        }
    }

    /// The app's service principal, waiting out replication right after `register-app` created
    /// it (graph.md §7.4: a write naming an object the replica does not know is refused). Still
    /// missing after [`REPLICATION_WINDOW`]: exit 4, "run register-app first".
    pub async fn wait_for_service_principal(&self, r: &SpRef) -> Result<ServicePrincipal> {
        let found = visible_within(
            self.http.deadline(),
            REPLICATION_WINDOW,
            "reading the app's service principal",
            self.http.reporter(),
            || self.service_principal_at(r),
        )
        .await?;
        found.ok_or_else(|| r.not_found())
    }

    /// The HRD policies assigned to the service principal with object id `id`, waiting out
    /// replication as [`Graph::wait_for_service_principal`] does: the list answers 404 while the
    /// service principal is not visible. So one request both proves the service principal exists
    /// and reads its policies; still 404 after [`REPLICATION_WINDOW`]: exit 4, "run register-app
    /// first".
    pub async fn wait_for_hrd_policies_of(&self, id: &str) -> Result<Vec<crate::HrdPolicy>> {
        let found = visible_within(
            self.http.deadline(),
            REPLICATION_WINDOW,
            "reading the app's service principal",
            self.http.reporter(),
            || async {
                match self.hrd_policies_of(id).await {
                    Ok(p) => Ok(Some(p)),
                    Err(e) if e.status() == Some(404) && crate::is_replication_lag(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            },
        )
        .await?;
        found.ok_or_else(|| SpRef::Id(id.to_string()).not_found())
    }

    /// The app registration, waiting out replication as [`Graph::wait_for_service_principal`]
    /// does; still missing after [`REPLICATION_WINDOW`]: exit 4, "run register-app first".
    pub async fn wait_for_application(&self, r: &AppRef) -> Result<Application> {
        let found = visible_within(
            self.http.deadline(),
            REPLICATION_WINDOW,
            "reading the app registration",
            self.http.reporter(),
            || self.application_at(r),
        )
        .await?;
        found.ok_or_else(|| {
            Error::refused(format!("no app registration with {} in this tenant", r.describe()))
                .with_hint("run register-app first and pipe its output here, or check --object-id / --client-id and --tenant")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s2s_core::Kind;

    const SP: &str = "22222222-2222-2222-2222-222222222222";
    const CLIENT: &str = "11111111-1111-1111-1111-111111111111";

    #[test]
    fn the_service_principal_comes_from_flags_then_the_document() {
        let doc = StateDoc::parse(
            &format!(r#"{{"app":{{"client_id":"{CLIENT}","service_principal_id":"{SP}"}}}}"#),
            "t",
        )
        .unwrap();
        assert_eq!(
            SpRef::from_flags_or_doc(None, None, &doc).unwrap(),
            SpRef::Id(SP.into())
        );
        assert_eq!(
            SpRef::from_flags_or_doc(None, Some("c"), &doc).unwrap(),
            SpRef::AppId("c".into())
        );
        let only_client =
            StateDoc::parse(&format!(r#"{{"app":{{"client_id":"{CLIENT}"}}}}"#), "t").unwrap();
        assert_eq!(
            SpRef::from_flags_or_doc(None, None, &only_client).unwrap(),
            SpRef::AppId(CLIENT.into())
        );
        let e = SpRef::from_flags_or_doc(None, None, &StateDoc::new()).unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert!(
            e.message.contains("--service-principal-id")
                && e.message.contains("app.service_principal_id")
        );
    }

    #[test]
    fn the_app_comes_from_flags_then_the_document() {
        let doc =
            StateDoc::parse(&format!(r#"{{"app":{{"client_id":"{CLIENT}"}}}}"#), "t").unwrap();
        assert_eq!(
            AppRef::from_flags_or_doc(None, None, &doc).unwrap(),
            AppRef::ClientId(CLIENT.into())
        );
        assert_eq!(
            AppRef::from_flags_or_doc(Some("o"), Some("c"), &doc).unwrap(),
            AppRef::ObjectId("o".into())
        );
        let e = AppRef::from_flags_or_doc(None, None, &StateDoc::new()).unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert!(
            e.message.contains("--object-id") && e.message.contains("app.object_id"),
            "{e}"
        );
        let bad = StateDoc::parse(r#"{"app":{"object_id":"nope"}}"#, "t").unwrap();
        assert_eq!(
            AppRef::from_flags_or_doc(None, None, &bad)
                .unwrap_err()
                .kind,
            Kind::Usage
        );
    }
}
