//! The fewest requests each tool can send and still do what the design asks (design.md:
//! idempotency keys, "reads first, writes only what differs", the re-run writes nothing), on the
//! benchmark's tenant: tenant-sim `--federated`, the Dynamics CRM service principal present, the
//! Marketo solution installed, `tenant.id` a guid (so no `GET /organization`), no replication lag.

use crate::results::{Floor, MinimumEntry};

pub struct Minimum {
    pub tool: &'static str,
    /// Fresh tenant: (reads, writes, sign-ins).
    pub fresh: (i64, i64, i64),
    /// Re-run on the finished setup: (reads, sign-ins); writes are 0 by definition.
    pub rerun: (i64, i64),
    pub why: &'static str,
}

impl Minimum {
    pub fn fresh_api(&self) -> i64 {
        self.fresh.0 + self.fresh.1
    }
    pub fn fresh_cell(&self) -> String {
        format!("{} / {} / {}", self.fresh.0, self.fresh.1, self.fresh.2)
    }
    pub fn rerun_cell(&self) -> String {
        format!("{} / 0 / {}", self.rerun.0, self.rerun.1)
    }
    /// As `benchmarks.json` has it.
    pub fn entry(&self) -> MinimumEntry {
        MinimumEntry {
            fresh: Floor {
                reads: self.fresh.0,
                writes: self.fresh.1,
                login: self.fresh.2,
            },
            rerun: Floor {
                reads: self.rerun.0,
                writes: 0,
                login: self.rerun.1,
            },
            why: self.why.to_string(),
        }
    }
}

pub const PREAMBLE: &str = "Each tool gets one token per resource it calls (client credentials from the environment in the benchmark), \
so sign-ins are 1 per Graph or Dataverse audience, plus verify-sync's sign-in with the app's own secret. \
The floor assumes what the design requires: read before write (a re-run writes nothing), keys instead of display names, \
names discovered from metadata rather than hard-coded (`--marketo-prefix`), and the state document trusted only for ids it is the key of.";

pub const TABLE: &[Minimum] = &[
    Minimum {
        tool: "register-app",
        fresh: (2, 2, 1),
        rerun: (3, 1),
        why: "GET `servicePrincipals(appId='00000007-…')` (the `user_impersonation` scope id is read, never hard-coded); \
GET `applications(uniqueName=…)` (read first, so a re-run writes nothing); PATCH `applications(uniqueName=…)` with `Prefer: create-if-missing`; \
PATCH `servicePrincipals(appId=…)` create-if-missing (an app created a moment ago cannot have a service principal, so no GET first). \
Re-run: the two GETs plus GET `servicePrincipals(appId=…)` for the app's own service principal.",
    },
    Minimum {
        tool: "grant-consent",
        fresh: (2, 1, 1),
        rerun: (2, 1),
        why: "GET `servicePrincipals(appId='00000007-…')` (the grant's resourceId, not in the document before this step); \
GET `oauth2PermissionGrants?$filter=clientId … and consentType eq 'AllPrincipals' and resourceId …` (the idempotency key); POST `oauth2PermissionGrants`. \
The client service principal's id is register-app's output; a GET of it only re-checks what the POST would refuse anyway. Re-run: the two GETs.",
    },
    Minimum {
        tool: "make-secret",
        fresh: (1, 1, 1),
        rerun: (1, 1),
        why: "GET `applications/{id}` (passwordCredentials: is the document's key id still on the app and valid long enough, which others exist); \
POST `applications/{id}/addPassword` (its answer holds the new credential, so no read-back). Re-run: the GET; the 0600 file is checked locally.",
    },
    Minimum {
        tool: "set-hrd-policy",
        fresh: (3, 2, 1),
        rerun: (2, 1),
        why: "GET `domains` (any federated? on a managed-only tenant this is the only request); \
GET `servicePrincipals/{id}/homeRealmDiscoveryPolicies` (the idempotency key); GET `policies/homeRealmDiscoveryPolicies` (reuse our policy left unassigned by an interrupted run instead of adding another); \
POST `policies/homeRealmDiscoveryPolicies`; POST `servicePrincipals/{id}/homeRealmDiscoveryPolicies/$ref` (a not-yet-replicated policy answers 404, which is retried with backoff, so no GET in between). \
Re-run: domains and the assigned policies.",
    },
    Minimum {
        tool: "assign-role",
        fresh: (4, 2, 1),
        rerun: (3, 1),
        why: "GET `solutions?$filter=friendlyname eq 'Marketo Lead Management'` (step 1 done, version known); \
GET `systemusers?$filter=applicationid eq …` (the key; with `$expand=systemuserroles_association`); GET the root `businessunits` (the new user's unit, name included); \
GET `roles?$filter=name eq 'Marketo Sync User' and _businessunitid_value eq …`; POST `systemusers` (with `Prefer: return=representation`, so no read-back); \
POST `systemusers(…)/systemuserroles_association/$ref` (a user created a moment ago holds no role, so no check first). Re-run: solution, user with its roles, role.",
    },
    Minimum {
        tool: "configure-marketo",
        fresh: (6, 1, 1),
        rerun: (1, 1),
        why: "Names are discovered from labels, not assumed (`--marketo-prefix`): GET the Marketo `solutions` row; GET its entity `solutioncomponents`; \
GET those entities' definitions (label \"Marketo Config\") in one `EntityDefinitions?$filter=MetadataId eq … or …`, not one request per entity; \
GET the configuration entity's `ManyToOneRelationships` to `systemuser` (lookup attribute and navigation property for `@odata.bind`); \
GET those lookups' labels in one `Attributes?$filter=LogicalName eq … or …` query (label \"Marketo User\", system lookups excluded), not one per lookup; \
GET the record \"Default\" with the lookup's current value; PATCH the record. \
Re-run: the document's `marketo_config` already names the entity set, record and lookup, so one GET `<set>(<record id>)?$select=_<lookup>_value` \
(discovery again only if that answer says the names are wrong).",
    },
    Minimum {
        tool: "publish-customizations",
        fresh: (0, 1, 1),
        rerun: (0, 0),
        why: "POST `PublishAllXml`. With `--if-changed` and nothing changed upstream in the document, a re-run sends nothing, not even a sign-in.",
    },
    Minimum {
        tool: "add-sync-filter",
        fresh: (2, 3, 1),
        rerun: (2, 1),
        why: "Per entity (lead, contact): GET `EntityDefinitions(LogicalName=…)/Attributes(LogicalName=…)` (a 404 for a missing entity is told apart only when it happens); \
POST the Boolean attribute; then one POST `PublishXml` for both entities. Re-run: the two GETs. (Optional step; measured alone after the chain.)",
    },
    Minimum {
        tool: "verify-sync",
        fresh: (13, 0, 3),
        rerun: (12, 3),
        why: "Graph: GET the application (signInAudience, requiredResourceAccess, passwordCredentials), GET its service principal, GET the grant, \
GET `domains`, GET the service principal's HRD policies; Dataverse: GET the solution, GET the application user with its roles (`$expand`), \
GET the configuration record's lookup, and `WhoAmI` with the app's own token; for the check that nobody else holds Marketo Sync User \
(Marketo's step 2 asks that only the sync user hold it), GET the role by name and GET the holders of each business unit's copy of it \
(Dataverse copies a role into every business unit: two in the emulator); fresh only, `RetrieveCurrentOrganization` once while the \
document has no `dynamics.org_name` (the org's friendly name every target line shows; preflight records it in a runbook). \
Sign-ins: admin for Graph, admin for Dataverse, the app's own secret for Dataverse.",
    },
];

pub fn get(tool: &str) -> Option<&'static Minimum> {
    TABLE.iter().find(|m| m.tool == tool)
}

#[cfg(test)]
mod tests {
    /// Every measured tool has its documented floor, in the table's order, and nothing else.
    #[test]
    fn one_minimum_per_measured_tool() {
        let tools: Vec<&str> = super::TABLE.iter().map(|m| m.tool).collect();
        assert_eq!(tools, crate::TOOLS);
    }
}
