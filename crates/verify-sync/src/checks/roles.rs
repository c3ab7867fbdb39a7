//! The checks about Marketo's solution and its role (Marketo's step 2): the solution's version,
//! the application user's roles, and who else holds Marketo Sync User.

use s2s_core::Result;
use s2s_core::checklist::Check;
use s2s_dataverse::{
    MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE, MARKETO_SOLUTION, MARKETO_SYNC_ROLE, compare_versions,
};

use super::{Env, Rows, Shared};
use crate::soft;

/// `marketo-solution`: installed. Before 4.0.0.14 it works but every user who syncs needs the
/// Marketo Sync User role (Marketo's step 2): a warning that says so and how to update.
pub(super) async fn marketo_solution(env: &Env<'_>, shared: &Shared) -> Result<Option<Check>> {
    let Some(solution) = shared.solution(env).await? else {
        return Ok(None);
    };
    let (id, name) = ("marketo-solution", "Marketo solution installed");
    Ok(Some(match solution {
        Ok(None) => Check::fail(
            id,
            name,
            format!("{MARKETO_SOLUTION:?} is not installed"),
            format!(
                "import the Marketo solution (Marketo step 1), then {}",
                env.run("verify-sync")
            ),
        ),
        Ok(Some(s)) => {
            let v = s.version.clone().unwrap_or_default();
            if at_least_role_only_version(&v) {
                Check::pass(id, name, format!("{} {v}", s.uniquename))
            } else {
                Check::warn(
                    id,
                    name,
                    format!(
                        "{} {v} is older than {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE}: with it every Dynamics user who syncs with Marketo needs the {MARKETO_SYNC_ROLE} role, not only the sync user",
                        s.uniquename
                    ),
                    Some(format!(
                        "update the solution: download the current Marketo Lead Management solution from Marketo (Admin > CRM > Microsoft Dynamics), import it in Power Apps (Solutions > Import, choose Upgrade), then {}",
                        env.run("verify-sync")
                    )),
                )
            }
        }
        Err(e) => Check::fail(
            id,
            name,
            e.clone(),
            "import the Marketo solution (Marketo step 1)",
        ),
    }))
}

/// The solution version from which the role is for the sync user alone.
fn at_least_role_only_version(v: &str) -> bool {
    compare_versions(v, MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE).is_some_and(|o| o.is_ge())
}

/// `role-holders`: Marketo's step 2 (solution 4.0.0.14 and later) says to assign the Marketo
/// Sync User role only to the Marketo sync user: a warning naming anyone else who holds it. With
/// an older solution every user needs it, so the check does not apply (`skip`, saying why).
pub(super) async fn role_holders(env: &Env<'_>, shared: &Shared) -> Result<Option<Check>> {
    let (id, name) = (
        "role-holders",
        "only the Marketo sync user holds Marketo Sync User",
    );
    let Some(user) = shared.app_user(env).await? else {
        return Ok(None);
    };
    let Some(Ok(Some(solution))) = shared.solution(env).await? else {
        return Ok(None);
    };
    let version = solution.version.clone().unwrap_or_default();
    if !at_least_role_only_version(&version) {
        return Ok(Some(Check::skip(
            id,
            name,
            format!(
                "the solution {version} is older than {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE}: every user who syncs needs the role, so other holders are expected"
            ),
        )));
    }
    let unreadable = |e: String| {
        Ok(Some(Check::skip(
            id,
            name,
            format!("not readable with this sign-in: {e}"),
        )))
    };
    let roles = match soft(env.dv.roles_named(MARKETO_SYNC_ROLE).await)? {
        Ok(r) => r,
        Err(e) => return unreadable(e),
    };
    let mut others: Vec<String> = Vec::new();
    for role in &roles {
        let holders = match soft(env.dv.role_holders(&role.roleid).await)? {
            Ok(h) => h,
            Err(e) => return unreadable(e),
        };
        for h in holders {
            if h.systemuserid.eq_ignore_ascii_case(&user.systemuserid) {
                continue;
            }
            let who = match (&h.fullname, &h.internalemailaddress) {
                (Some(n), Some(m)) => format!("{n} <{m}>"),
                (Some(n), None) => n.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => h.systemuserid.clone(),
            };
            if !others.contains(&who) {
                others.push(who);
            }
        }
    }
    Ok(Some(if others.is_empty() {
        Check::pass(id, name, "no other user holds it")
    } else {
        Check::warn(
            id,
            name,
            format!(
                "{} other user(s) hold it: {} (Marketo: assign it only to the Marketo sync user, solution {MARKETO_ROLE_ONLY_FOR_SYNC_USER_SINCE} and later)",
                others.len(),
                others.join(", ")
            ),
            Some(format!(
                "remove {MARKETO_SYNC_ROLE} from them: Power Platform admin center > Environments > {} > Settings > Users > the user > Manage security roles",
                env.dv.org()
            )),
        )
    }))
}

/// `sync-role`: the application user holds each `--role` (Marketo Sync User); one row per role.
pub(super) async fn sync_role(env: &Env<'_>, shared: &Shared) -> Result<Rows> {
    let id = "sync-role";
    let role_name = |r: &String| format!("application user holds {r}");
    let Some(Ok(users)) = shared.app_users(env).await? else {
        return Ok(Vec::new());
    };
    let Some(user) = users.first() else {
        return Ok(env
            .roles
            .iter()
            .map(|r| Check::fail(id, &role_name(r), "no application user", env.assign_roles()))
            .collect());
    };
    let mut rows = Vec::new();
    let held: Vec<String> = match &user.systemuserroles_association {
        Some(r) => r.iter().filter_map(|r| r.name.clone()).collect(),
        None => match soft(env.dv.user_roles(&user.systemuserid).await)? {
            Ok(r) => r.into_iter().filter_map(|r| r.name).collect(),
            Err(e) => {
                rows.push(Check::fail(
                    id,
                    "application user roles",
                    e,
                    env.assign_roles(),
                ));
                Vec::new()
            }
        },
    };
    for r in env.roles {
        // Role names are matched as assign-role finds them: Dataverse compares names without
        // regard to case.
        rows.push(if held.iter().any(|h| h.eq_ignore_ascii_case(r)) {
            Check::pass(id, &role_name(r), "role assigned")
        } else {
            Check::fail(
                id,
                &role_name(r),
                format!(
                    "the user holds: {}",
                    if held.is_empty() {
                        "no role".to_string()
                    } else {
                        held.join(", ")
                    }
                ),
                env.assign_roles(),
            )
        });
    }
    Ok(rows)
}
