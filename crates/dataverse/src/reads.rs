//! Reads that only tell people about the org (verify-sync's checks and its target line), kept
//! apart from `client.rs`, which holds the setup's own calls: the org's friendly name and who
//! holds a security role.

use s2s_core::Result;
use s2s_core::odata::{query, quote};

use crate::client::{Dataverse, guid};
use crate::model::{Role, SystemUser};

impl Dataverse<'_> {
    /// The org's own description, its friendly name among it: `RetrieveCurrentOrganization`
    /// (learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/retrievecurrentorganization),
    /// the Web API form of the organization service's request of the same name.
    pub async fn current_organization(&self) -> Result<crate::model::OrganizationDetail> {
        let answer: crate::model::CurrentOrganization = self
            .get(
                "RetrieveCurrentOrganization(AccessType=Microsoft.Dynamics.CRM.EndpointAccessType'Default')",
                "the org's details",
            )
            .await?;
        Ok(answer.detail)
    }

    /// Every role named `name`, in every business unit (each business unit has its own copy of
    /// a solution's role, reference §2).
    pub async fn roles_named(&self, name: &str) -> Result<Vec<Role>> {
        let q = query(&[
            ("$select", Self::ROLE_SELECT),
            ("$filter", &format!("name eq {}", quote(name))),
        ]);
        self.list(&format!("roles?{q}"), "roles").await
    }

    /// The users who hold a role directly: the N:N `systemuserroles_association` read from the
    /// role's side ("Associate and disassociate table rows using the Web API",
    /// learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api).
    pub async fn role_holders(&self, role_id: &str) -> Result<Vec<SystemUser>> {
        let id = guid(role_id, "role id")?;
        let q = query(&[(
            "$select",
            "systemuserid,applicationid,fullname,internalemailaddress,isdisabled",
        )]);
        self.list(
            &format!("roles({id})/systemuserroles_association?{q}"),
            "holders of the role",
        )
        .await
    }
}
