//! The Dataverse rows and metadata the tools read, as the Web API v9.2 returns them
//! (reference/dataverse.md §1.4, §4, §5.3, §9). Every field a tool does not strictly need is
//! optional, so an org that omits a column (or a newer API that adds some) does not break parsing.

use serde::Deserialize;

/// `GET WhoAmI` (reference §4, fixture §9.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WhoAmI {
    pub business_unit_id: String,
    pub user_id: String,
    pub organization_id: String,
}

/// `RetrieveCurrentOrganizationResponse`: its `Detail`.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrentOrganization {
    #[serde(rename = "Detail")]
    pub detail: OrganizationDetail,
}

/// `OrganizationDetail` (the complex type of the Web API reference): the parts the tools show.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrganizationDetail {
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The org's display name, as the admin center and the app switcher show it.
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub unique_name: Option<String>,
}

/// A `solutions` row (reference §4, fixture §9.9).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Solution {
    pub solutionid: String,
    pub uniquename: String,
    #[serde(default)]
    pub friendlyname: Option<String>,
    /// A 4-part version string such as `5.0.2.1`; compare with [`crate::compare_versions`].
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub ismanaged: Option<bool>,
}

/// A `businessunits` row (reference §1.5).
#[derive(Debug, Clone, Deserialize)]
pub struct BusinessUnit {
    pub businessunitid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "_parentbusinessunitid_value")]
    pub parent_id: Option<String>,
}

/// A `roles` row; roles are per business unit (reference §2).
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    pub roleid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "_businessunitid_value")]
    pub business_unit_id: Option<String>,
}

/// A `systemusers` row with the columns Microsoft's Terraform provider reads for application
/// users (reference §1.4, fixture §9.3).
#[derive(Debug, Clone, Deserialize)]
pub struct SystemUser {
    pub systemuserid: String,
    #[serde(default)]
    pub applicationid: Option<String>,
    #[serde(default)]
    pub fullname: Option<String>,
    /// "Primary Email": the username Marketo's step 3 asks for (reference §1.1).
    #[serde(default)]
    pub internalemailaddress: Option<String>,
    #[serde(default)]
    pub domainname: Option<String>,
    #[serde(default)]
    pub isdisabled: Option<bool>,
    /// Non-zero on a soft-deleted row, which must be ignored (reference §1.4).
    #[serde(default)]
    pub deletedstate: Option<i64>,
    #[serde(default, rename = "_businessunitid_value")]
    pub business_unit_id: Option<String>,
    /// Present when the query expanded the user's roles.
    #[serde(default)]
    pub systemuserroles_association: Option<Vec<Role>>,
}

impl SystemUser {
    pub fn is_soft_deleted(&self) -> bool {
        self.deletedstate.is_some_and(|d| d != 0)
    }
    pub fn is_disabled(&self) -> bool {
        self.isdisabled.unwrap_or(false)
    }

    /// An application user (bound to an Entra app by `applicationid`), not a person.
    pub fn is_application_user(&self) -> bool {
        self.applicationid.as_deref().is_some_and(|a| !a.is_empty())
    }

    /// Whether both users act for the same Entra app (the same connection's users).
    pub fn same_app_as(&self, other: &SystemUser) -> bool {
        match (&self.applicationid, &other.applicationid) {
            (Some(a), Some(b)) => !a.is_empty() && a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    /// Who the user is, for people and for the state document: the full name, then the app's
    /// client id for an application user (Power Platform names an application user after its
    /// app), or the e-mail address for a person; the user id; "disabled" when it is. Text from
    /// the org is not escaped here: printing goes through `output::sanitize`.
    pub fn label(&self) -> String {
        let name = self.fullname.as_deref().unwrap_or("(no name)");
        let mut s = match &self.applicationid {
            Some(app) if !app.is_empty() => format!(
                "\"{name}\", the application user of the app with client id {app} (user {})",
                self.systemuserid
            ),
            _ => format!(
                "\"{name}\" <{}>, a person (user {})",
                self.internalemailaddress
                    .as_deref()
                    .or(self.domainname.as_deref())
                    .unwrap_or("no e-mail"),
                self.systemuserid
            ),
        };
        if self.is_disabled() {
            s.push_str(", disabled");
        }
        s
    }
}

/// A `solutioncomponents` row: `objectid` is the component's MetadataId (reference §5.3 step 2).
#[derive(Debug, Clone, Deserialize)]
pub struct SolutionComponent {
    pub objectid: String,
    pub componenttype: i64,
}

/// `componenttype` of an entity in `solutioncomponents` (reference §5.3).
pub const COMPONENT_ENTITY: i64 = 1;

/// One language's text of a metadata label.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocalizedLabel {
    pub label: String,
    #[serde(default)]
    pub language_code: Option<i64>,
}

/// A metadata `Label` (`DisplayName`, `Description`). Labels cannot be filtered server-side, so
/// they are matched here (reference §5.3 step 3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    #[serde(default)]
    pub localized_labels: Vec<LocalizedLabel>,
    #[serde(default)]
    pub user_localized_label: Option<LocalizedLabel>,
}

impl Label {
    /// The label in the caller's language, else the first one.
    pub fn text(&self) -> Option<&str> {
        self.user_localized_label
            .as_ref()
            .or_else(|| self.localized_labels.first())
            .map(|l| l.label.as_str())
    }

    /// True when any language's text equals `want` (trimmed, case-insensitive): the Marketo
    /// solution is labelled in English, but the caller's language may be another.
    pub fn matches(&self, want: &str) -> bool {
        let want = want.trim();
        self.user_localized_label
            .iter()
            .chain(self.localized_labels.iter())
            .any(|l| l.label.trim().eq_ignore_ascii_case(want))
    }
}

/// An `EntityDefinitions` item (reference §5.3 step 3, fixture §9.10).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntityDefinition {
    #[serde(default)]
    pub metadata_id: Option<String>,
    pub logical_name: String,
    #[serde(default)]
    pub schema_name: Option<String>,
    #[serde(default)]
    pub entity_set_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<Label>,
    #[serde(default)]
    pub primary_id_attribute: Option<String>,
    #[serde(default)]
    pub primary_name_attribute: Option<String>,
}

impl EntityDefinition {
    pub fn label(&self) -> &str {
        self.display_name
            .as_ref()
            .and_then(Label::text)
            .unwrap_or("(no label)")
    }
}

/// A `ManyToOneRelationships` item: a lookup seen from the entity that holds it (reference §5.3
/// step 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Relationship {
    #[serde(default)]
    pub schema_name: Option<String>,
    /// The lookup attribute's logical name.
    pub referencing_attribute: String,
    /// The single-valued navigation property to use in `@odata.bind` (case-sensitive).
    #[serde(default)]
    pub referencing_entity_navigation_property_name: Option<String>,
    #[serde(default)]
    pub referenced_entity: Option<String>,
    #[serde(default)]
    pub referencing_entity: Option<String>,
}

/// An `Attributes` item (reference §5.3 step 4, §5.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attribute {
    #[serde(default)]
    pub metadata_id: Option<String>,
    pub logical_name: String,
    #[serde(default)]
    pub schema_name: Option<String>,
    /// `Boolean`, `Lookup`, `String`, `Picklist`, ...
    #[serde(default)]
    pub attribute_type: Option<String>,
    /// `#Microsoft.Dynamics.CRM.BooleanAttributeMetadata`, ...
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub display_name: Option<Label>,
    /// The column's description; add-sync-filter puts the setup's ownership mark here
    /// (`s2s_core::setup::SetupId::description_mark`).
    #[serde(default)]
    pub description: Option<Label>,
}

impl Attribute {
    /// A Two Options column, by either of the two ways the metadata says so.
    pub fn is_boolean(&self) -> bool {
        self.attribute_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Boolean"))
            || self
                .odata_type
                .as_deref()
                .is_some_and(|t| t.ends_with("BooleanAttributeMetadata"))
    }

    /// The type as a person would name it (`Boolean`, `String`, ...).
    pub fn type_name(&self) -> &str {
        if let Some(t) = self.attribute_type.as_deref() {
            return t;
        }
        self.odata_type
            .as_deref()
            .map(|t| {
                t.rsplit('.')
                    .next()
                    .unwrap_or(t)
                    .trim_end_matches("AttributeMetadata")
            })
            .unwrap_or("unknown")
    }

    pub fn label(&self) -> Option<&str> {
        self.display_name.as_ref().and_then(Label::text)
    }

    /// Every localized text of the description, joined (a mark may be in any language's label).
    pub fn description_text(&self) -> String {
        self.description
            .as_ref()
            .map(|d| {
                d.localized_labels
                    .iter()
                    .map(|l| l.label.as_str())
                    .chain(d.user_localized_label.as_ref().map(|l| l.label.as_str()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    }
}

/// An `asyncoperations` row (reference §3): the system job behind `PublishAllXmlAsync`.
#[derive(Debug, Clone, Deserialize)]
pub struct AsyncOperation {
    #[serde(default)]
    pub asyncoperationid: Option<String>,
    /// 0 Ready, 1 Suspended, 2 Locked, 3 Completed.
    #[serde(default)]
    pub statecode: Option<i64>,
    /// 0 WaitingForResources, 10 Waiting, 20 InProgress, 21 Pausing, 22 Canceling,
    /// 30 Succeeded, 31 Failed, 32 Canceled.
    #[serde(default)]
    pub statuscode: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub friendlymessage: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub createdon: Option<String>,
}

/// What a system job's `statuscode` means for the caller (reference §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl AsyncOperation {
    pub fn state(&self) -> JobState {
        match self.statuscode {
            Some(30) => JobState::Succeeded,
            Some(31) => JobState::Failed,
            Some(32) => JobState::Canceled,
            _ => JobState::Running,
        }
    }

    /// The status as Dataverse names it, for progress lines.
    pub fn status_name(&self) -> &'static str {
        match self.statuscode {
            Some(0) => "waiting for resources",
            Some(10) => "waiting",
            Some(20) => "in progress",
            Some(21) => "pausing",
            Some(22) => "canceling",
            Some(30) => "succeeded",
            Some(31) => "failed",
            Some(32) => "canceled",
            _ => "unknown status",
        }
    }

    /// The job's own explanation, if it gave one.
    pub fn explanation(&self) -> Option<&str> {
        self.friendlymessage
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .or(self.message.as_deref().filter(|m| !m.trim().is_empty()))
    }
}

/// A collection page (reference §7.5).
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    pub value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}

/// The answer of `PublishAllXmlAsync` (reference §3, §9.11).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PublishAllXmlAsyncResponse {
    pub async_operation_id: String,
}

#[cfg(test)]
mod user_tests {
    use super::SystemUser;

    fn user(id: &str, app: Option<&str>, name: &str, mail: &str) -> SystemUser {
        SystemUser {
            systemuserid: id.into(),
            applicationid: app.map(str::to_string),
            fullname: Some(name.into()),
            internalemailaddress: Some(mail.into()),
            domainname: None,
            isdisabled: Some(false),
            deletedstate: None,
            business_unit_id: None,
            systemuserroles_association: None,
        }
    }

    #[test]
    fn a_person_and_an_application_user_are_told_apart_and_named() {
        let person = user("u1", None, "Legacy Sync", "sync@contoso.com");
        let app = user("u2", Some("a1"), "# Other", "a1@contoso.com");
        let same = user("u3", Some("A1"), "# Other again", "x@contoso.com");
        assert!(!person.is_application_user() && app.is_application_user());
        assert!(app.same_app_as(&same) && !app.same_app_as(&person));
        assert!(!person.same_app_as(&person), "two persons are not one app");
        assert_eq!(
            person.label(),
            "\"Legacy Sync\" <sync@contoso.com>, a person (user u1)"
        );
        assert!(app.label().contains("client id a1") && app.label().contains("# Other"));
    }
}
