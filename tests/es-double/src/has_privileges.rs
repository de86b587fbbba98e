//! `GET|POST /_security/user/_has_privileges` (and `/_security/user/{user}/_has_privileges`):
//! which of the named privileges the caller holds.
//!
//! The request and answer have the real API's shape:
//!
//! ```text
//! {"cluster": ["manage_security"], "index": [{"names": ["a*"], "privileges": ["read"]}]}
//! → {"username": "elastic", "has_all_requested": true,
//!    "cluster": {"manage_security": true}, "index": {"a*": {"read": true}}, "application": {}}
//! ```
//!
//! A named cluster privilege is held when every action of the double that it
//! grants is allowed to the caller (for privileges that grant none of the
//! double's actions, when a role names it or `all`); an action pattern
//! (`cluster:admin/...`) is held when the action is allowed. A caller may
//! only ask about itself: another user's name in the path is refused, as
//! Elasticsearch does.

use crate::error::EsError;
use crate::store::{ActionContext, CLUSTER_PRIVILEGE_NAMES};
use serde_json::{json, Map, Value};

/// The caller, as far as this API needs it.
pub(crate) struct Subject<'a> {
    pub username: &'a str,
    #[allow(clippy::type_complexity)]
    pub allows_cluster: Box<dyn Fn(&str, &ActionContext) -> bool + 'a>,
    #[allow(clippy::type_complexity)]
    pub allows_index: Box<dyn Fn(&str, &str) -> bool + 'a>,
    pub names_cluster_privilege: Box<dyn Fn(&str) -> bool + 'a>,
}

/// Every cluster action the double knows of: what a named privilege is
/// checked against.
const ACTIONS: &[&str] = &[
    "cluster:monitor/main",
    "cluster:monitor/health",
    "cluster:monitor/state",
    "cluster:monitor/nodes/liveness",
    "cluster:monitor/xpack/info",
    "cluster:admin/xpack/security/user/get",
    "cluster:admin/xpack/security/user/put",
    "cluster:admin/xpack/security/user/delete",
    "cluster:admin/xpack/security/user/change_password",
    "cluster:admin/xpack/security/user/set_enabled",
    "cluster:admin/xpack/security/user/has_privileges",
    "cluster:admin/xpack/security/user/list_privileges",
    "cluster:admin/xpack/security/role/get",
    "cluster:admin/xpack/security/role/put",
    "cluster:admin/xpack/security/role/delete",
    "cluster:admin/xpack/security/role_mapping/get",
    "cluster:admin/xpack/security/privilege/get",
    "cluster:admin/xpack/security/api_key/create",
    "cluster:admin/xpack/security/api_key/get",
    "cluster:admin/xpack/security/api_key/invalidate",
    "cluster:admin/xpack/security/api_key/query",
];

/// A representative index action per index privilege.
fn index_action(privilege: &str) -> Option<&'static str> {
    Some(match privilege {
        "all" | "manage" => "indices:admin/create",
        "create_index" => "indices:admin/create",
        "delete_index" => "indices:admin/delete",
        "view_index_metadata" => "indices:admin/get",
        "read" => "indices:data/read/search",
        "write" | "index" | "create" | "create_doc" => "indices:data/write/index",
        "delete" => "indices:data/write/delete",
        "monitor" => "indices:monitor/stats",
        _ => return None,
    })
}

pub(crate) fn handle(
    user_in_path: &str,
    body: Option<Value>,
    subject: &Subject<'_>,
) -> Result<(u16, Value), EsError> {
    if !user_in_path.is_empty() && user_in_path != subject.username {
        return Err(EsError::forbidden(format!(
            "action [cluster:admin/xpack/security/user/has_privileges] is unauthorized for user [{}], this action is granted by the cluster privileges [read_security,manage_security,all]",
            subject.username
        )));
    }
    let body = match body {
        None => return Err(EsError::validation("must specify at least one privilege")),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(EsError::parse("request body must be an object")),
    };
    for k in body.keys() {
        if !["cluster", "index", "application"].contains(&k.as_str()) {
            return Err(EsError::parse(format!(
                "failed to parse privileges check [{}] for [{}]. unexpected field [{k}]",
                "_has_privileges", subject.username
            )));
        }
    }
    let strings = |v: &Value, what: &str| -> Result<Vec<String>, EsError> {
        v.as_array()
            .ok_or_else(|| EsError::parse(format!("[{what}] must be an array")))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| EsError::parse(format!("[{what}] must hold strings")))
            })
            .collect()
    };
    let ctx = ActionContext::default();
    let mut all = true;
    let mut asked = 0usize;

    let mut cluster = Map::new();
    if let Some(c) = body.get("cluster") {
        for p in strings(c, "cluster")? {
            asked += 1;
            let lower = p.to_ascii_lowercase();
            let held = if lower.starts_with("cluster:") {
                (subject.allows_cluster)(&lower, &ctx)
            } else if CLUSTER_PRIVILEGE_NAMES.contains(&lower.as_str()) {
                let acts: Vec<&&str> = ACTIONS
                    .iter()
                    .filter(|a| crate::store::privilege_grants(&lower, a, &ctx))
                    .collect();
                if acts.is_empty() {
                    (subject.names_cluster_privilege)(&lower)
                } else {
                    acts.iter().all(|a| (subject.allows_cluster)(a, &ctx))
                }
            } else {
                return Err(EsError::illegal_argument(format!(
                    "unknown cluster privilege [{p}]. a privilege must be either one of the predefined cluster privilege names [{}] or a pattern over one of the available cluster actions",
                    CLUSTER_PRIVILEGE_NAMES.join(",")
                )));
            };
            all &= held;
            cluster.insert(p, json!(held));
        }
    }

    let mut index = Map::new();
    if let Some(ix) = body.get("index") {
        let entries = ix
            .as_array()
            .ok_or_else(|| EsError::parse("[index] must be an array"))?;
        for e in entries {
            let names = strings(&e["names"], "names")?;
            let privileges = strings(&e["privileges"], "privileges")?;
            for n in &names {
                let slot = index
                    .entry(n.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                for p in &privileges {
                    asked += 1;
                    let held = index_action(&p.to_ascii_lowercase())
                        .is_some_and(|a| (subject.allows_index)(a, n));
                    all &= held;
                    if let Value::Object(m) = slot {
                        m.insert(p.clone(), json!(held));
                    }
                }
            }
        }
    }
    if let Some(a) = body.get("application") {
        if !a.as_array().is_some_and(|a| a.is_empty()) {
            // The double knows no application privileges: none is held.
            all = false;
            asked += 1;
        }
    }
    if asked == 0 {
        return Err(EsError::validation("must specify at least one privilege"));
    }
    Ok((
        200,
        json!({
            "username": subject.username,
            "has_all_requested": all,
            "cluster": cluster,
            "index": index,
            "application": {},
        }),
    ))
}
