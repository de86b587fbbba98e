//! The security "index": users, roles and API keys, and the privilege model
//! that decides which cluster actions a role grants.

use crate::util::{glob_match, Credential};
use serde_json::{json, Map, Value};

/// Realm of the built-in users (`elastic`, `kibana_system`, ...).
pub(crate) const RESERVED_REALM: (&str, &str) = ("reserved", "reserved");
/// Realm of users created through the user API.
pub(crate) const NATIVE_REALM: (&str, &str) = ("default_native", "native");
/// Pseudo realm reported for API key authentication.
pub(crate) const API_KEY_REALM: (&str, &str) = ("_es_api_key", "_es_api_key");

/// Names Elasticsearch reserves for internal users: they cannot be created,
/// changed or deleted through the API.
pub(crate) const INTERNAL_USERS: [&str; 8] = [
    "_system",
    "_xpack",
    "_xpack_security",
    "_async_search",
    "_security_profile",
    "_storage",
    "_synonyms",
    "_data_stream_lifecycle",
];

pub(crate) struct User {
    pub username: String,
    pub roles: Vec<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub metadata: Map<String, Value>,
    pub enabled: bool,
    pub password: Option<Credential>,
    pub reserved: bool,
}

impl User {
    /// The user as `GET /_security/user` renders it.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "roles": self.roles,
            "full_name": self.full_name,
            "email": self.email,
            "metadata": self.metadata,
            "enabled": self.enabled,
        })
    }

    pub(crate) fn realm(&self) -> (&'static str, &'static str) {
        if self.reserved {
            RESERVED_REALM
        } else {
            NATIVE_REALM
        }
    }
}

#[derive(Clone)]
pub(crate) struct IndexPrivileges {
    pub names: Vec<String>,
    pub privileges: Vec<String>,
}

/// A role descriptor: what the double evaluates (`cluster`, `indices`) plus
/// the JSON it renders for `GET /_security/role`.
#[derive(Clone)]
pub(crate) struct Role {
    pub name: String,
    pub cluster: Vec<String>,
    pub indices: Vec<IndexPrivileges>,
    pub rendered: Map<String, Value>,
    pub reserved: bool,
}

impl Role {
    /// Whether any of this role's cluster privileges grants `action`.
    pub(crate) fn grants_cluster(&self, action: &str, ctx: &ActionContext) -> bool {
        self.cluster
            .iter()
            .any(|p| privilege_grants(p, action, ctx))
    }

    pub(crate) fn grants_index(&self, action: &str, index: &str) -> bool {
        self.indices.iter().any(|ip| {
            ip.names.iter().any(|n| glob_match(n, index))
                && ip
                    .privileges
                    .iter()
                    .any(|p| index_privilege_grants(p, action))
        })
    }
}

pub(crate) struct ApiKey {
    pub id: String,
    pub name: String,
    pub secret: Credential,
    pub creation: u64,
    pub expiration: Option<u64>,
    pub invalidated: bool,
    pub invalidation: Option<u64>,
    pub username: String,
    pub realm: String,
    pub realm_type: String,
    pub metadata: Map<String, Value>,
    /// The `role_descriptors` of the create request, as given.
    pub role_descriptors: Map<String, Value>,
    /// Parsed `role_descriptors`; empty means "the owner's privileges".
    pub assigned: Vec<Role>,
    /// The owner's roles when the key was created (`limited_by`).
    pub limited_by: Vec<Role>,
    pub creator_full_name: Option<String>,
    pub creator_email: Option<String>,
    pub creator_metadata: Map<String, Value>,
}

impl ApiKey {
    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!("rest"));
        m.insert("creation".into(), json!(self.creation));
        if let Some(e) = self.expiration {
            m.insert("expiration".into(), json!(e));
        }
        m.insert("invalidated".into(), json!(self.invalidated));
        if let Some(i) = self.invalidation {
            m.insert("invalidation".into(), json!(i));
        }
        m.insert("username".into(), json!(self.username));
        m.insert("realm".into(), json!(self.realm));
        m.insert("realm_type".into(), json!(self.realm_type));
        m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        m.insert(
            "role_descriptors".into(),
            Value::Object(self.role_descriptors.clone()),
        );
        Value::Object(m)
    }

    pub(crate) fn is_expired(&self, now: u64) -> bool {
        matches!(self.expiration, Some(e) if e <= now)
    }
}

/// Facts about the request that conditional privileges (such as
/// `manage_own_api_key`) look at.
#[derive(Default, Clone, Copy)]
pub(crate) struct ActionContext {
    /// The API key request only concerns keys owned by the caller.
    pub own_api_keys: bool,
}

/// Does the named cluster privilege (or cluster action pattern) grant the
/// action? Mirrors `ClusterPrivilegeResolver` for the actions the double serves.
pub(crate) fn privilege_grants(privilege: &str, action: &str, ctx: &ActionContext) -> bool {
    const SECURITY: &str = "cluster:admin/xpack/security/";
    const API_KEY: &str = "cluster:admin/xpack/security/api_key/";
    let privilege = privilege.to_ascii_lowercase();
    match privilege.as_str() {
        "all" => {
            action.starts_with("cluster:")
                || action.starts_with("indices:admin/template/")
                || action.starts_with("indices:admin/index_template/")
        }
        "manage" => action.starts_with("cluster:") && !action.starts_with(SECURITY),
        "monitor" => action.starts_with("cluster:monitor/"),
        "manage_security" => action.starts_with(SECURITY),
        "read_security" => [
            "cluster:admin/xpack/security/api_key/get",
            "cluster:admin/xpack/security/api_key/query",
            "cluster:admin/xpack/security/role/get",
            "cluster:admin/xpack/security/role_mapping/get",
            "cluster:admin/xpack/security/user/get",
            "cluster:admin/xpack/security/user/list_privileges",
            "cluster:admin/xpack/security/user/has_privileges",
            "cluster:admin/xpack/security/privilege/get",
            "cluster:admin/xpack/security/privilege/builtin/get",
        ]
        .contains(&action),
        "manage_api_key" => action.starts_with(API_KEY),
        "manage_own_api_key" => {
            action.starts_with(API_KEY)
                && !action.starts_with("cluster:admin/xpack/security/api_key/grant")
                && (action == "cluster:admin/xpack/security/api_key/create" || ctx.own_api_keys)
        }
        "grant_api_key" => action.starts_with("cluster:admin/xpack/security/api_key/grant"),
        "manage_token" => action.starts_with("cluster:admin/xpack/security/token/"),
        "transport_client" => {
            action == "cluster:monitor/nodes/liveness" || action == "cluster:monitor/state"
        }
        p if p.starts_with("cluster:") => glob_match(&format!("{p}*"), action),
        _ => false,
    }
}

/// The named cluster privileges Elasticsearch would list as granting an
/// action, least privileged first (the order of
/// `ClusterPrivilegeResolver.findPrivilegesThatGrant`).
pub(crate) fn privileges_that_grant(action: &str, ctx: &ActionContext) -> Vec<&'static str> {
    const ORDERED: [&str; 7] = [
        "manage_own_api_key",
        "read_security",
        "monitor",
        "manage_api_key",
        "manage_security",
        "manage",
        "all",
    ];
    ORDERED
        .into_iter()
        .filter(|p| privilege_grants(p, action, ctx))
        .collect()
}

pub(crate) fn index_privilege_grants(privilege: &str, action: &str) -> bool {
    match privilege.to_ascii_lowercase().as_str() {
        "all" => true,
        "manage" => action.starts_with("indices:admin/") || action.starts_with("indices:monitor/"),
        "view_index_metadata" => action == "indices:admin/get",
        "delete_index" => action == "indices:admin/delete",
        "create_index" => action == "indices:admin/create",
        _ => false,
    }
}

pub(crate) fn index_privileges_that_grant(action: &str) -> Vec<&'static str> {
    [
        "create_index",
        "delete_index",
        "view_index_metadata",
        "manage",
        "all",
    ]
    .into_iter()
    .filter(|p| index_privilege_grants(p, action))
    .collect()
}

/// Cluster privilege names the role API accepts (those of 8.15).
pub(crate) const CLUSTER_PRIVILEGE_NAMES: [&str; 58] = [
    "none",
    "all",
    "monitor",
    "monitor_ml",
    "monitor_text_structure",
    "monitor_data_frame_transforms",
    "monitor_transform",
    "monitor_watcher",
    "monitor_rollup",
    "monitor_enrich",
    "monitor_inference",
    "monitor_connector",
    "monitor_data_stream_global_retention",
    "monitor_stats",
    "manage",
    "manage_ml",
    "manage_data_frame_transforms",
    "manage_transform",
    "manage_token",
    "manage_watcher",
    "manage_index_templates",
    "manage_ingest_pipelines",
    "read_pipeline",
    "transport_client",
    "manage_security",
    "read_security",
    "manage_saml",
    "manage_oidc",
    "manage_api_key",
    "grant_api_key",
    "manage_service_account",
    "manage_user_profile",
    "manage_pipeline",
    "manage_rollup",
    "manage_autoscaling",
    "manage_ccr",
    "read_ccr",
    "create_snapshot",
    "monitor_snapshot",
    "manage_ilm",
    "read_ilm",
    "manage_slm",
    "read_slm",
    "delegate_pki",
    "manage_own_api_key",
    "manage_enrich",
    "manage_logstash_pipelines",
    "cancel_task",
    "manage_search_application",
    "manage_search_synonyms",
    "manage_search_query_rules",
    "manage_behavioral_analytics",
    "post_behavioral_analytics_event",
    "manage_connector",
    "manage_inference",
    "manage_data_stream_global_retention",
    "read_connector_secrets",
    "write_connector_secrets",
];

/// Is `name` a valid cluster privilege: a predefined name or a pattern over
/// cluster actions?
pub(crate) fn is_cluster_privilege(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CLUSTER_PRIVILEGE_NAMES.contains(&lower.as_str())
        || lower.starts_with("cluster:")
        || lower.starts_with("indices:admin/template/")
        || lower.starts_with("indices:admin/index_template/")
}

fn reserved_role(name: &str, cluster: &[&str], indices: Value, extra: Value) -> Role {
    let mut rendered = Map::new();
    rendered.insert("cluster".into(), json!(cluster));
    rendered.insert("indices".into(), indices.clone());
    let extra = extra.as_object().cloned().unwrap_or_default();
    rendered.insert(
        "applications".into(),
        extra.get("applications").cloned().unwrap_or(json!([])),
    );
    rendered.insert(
        "run_as".into(),
        extra.get("run_as").cloned().unwrap_or(json!([])),
    );
    rendered.insert("metadata".into(), json!({"_reserved": true}));
    rendered.insert("transient_metadata".into(), json!({"enabled": true}));
    Role {
        name: name.to_string(),
        cluster: cluster.iter().map(|s| s.to_string()).collect(),
        indices: parse_indices_lenient(&indices),
        rendered,
        reserved: true,
    }
}

pub(crate) fn parse_indices_lenient(v: &Value) -> Vec<IndexPrivileges> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|e| IndexPrivileges {
                    names: strings(e.get("names")),
                    privileges: strings(e.get("privileges")),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The built-in roles. `superuser` is exact; the others carry the cluster
/// privileges that matter to the endpoints the double serves.
pub(crate) fn reserved_roles() -> Vec<Role> {
    let monitoring_bulk = "cluster:admin/xpack/monitoring/bulk";
    vec![
        reserved_role(
            "superuser",
            &["all"],
            json!([
                {"names": ["*"], "privileges": ["all"], "allow_restricted_indices": false},
                {"names": ["*"], "privileges": ["monitor", "read", "view_index_metadata", "read_cross_cluster"], "allow_restricted_indices": true}
            ]),
            json!({
                "applications": [{"application": "*", "privileges": ["*"], "resources": ["*"]}],
                "run_as": ["*"]
            }),
        ),
        reserved_role(
            "kibana_system",
            &[
                "monitor",
                "manage_index_templates",
                monitoring_bulk,
                "manage_saml",
                "manage_token",
                "manage_oidc",
                "manage_enrich",
                "manage_pipeline",
                "manage_ilm",
                "manage_transform",
                "manage_api_key",
                "grant_api_key",
                "manage_own_api_key",
                "read_ccr",
                "manage_ml",
            ],
            json!([{"names": [".kibana*", ".reporting-*"], "privileges": ["all"], "allow_restricted_indices": true}]),
            json!({}),
        ),
        reserved_role(
            "logstash_system",
            &["monitor", monitoring_bulk],
            json!([]),
            json!({}),
        ),
        reserved_role(
            "beats_system",
            &["monitor", monitoring_bulk],
            json!([]),
            json!({}),
        ),
        reserved_role(
            "apm_system",
            &["monitor", monitoring_bulk],
            json!([]),
            json!({}),
        ),
        reserved_role(
            "remote_monitoring_collector",
            &["monitor"],
            json!([]),
            json!({}),
        ),
        reserved_role(
            "remote_monitoring_agent",
            &[
                "manage_index_templates",
                "manage_ingest_pipelines",
                "monitor",
                "cluster:monitor/xpack/watcher/watch/get",
                "cluster:admin/xpack/watcher/watch/put",
                "cluster:admin/xpack/watcher/watch/delete",
            ],
            json!([{"names": [".monitoring-*", "metricbeat-*"], "privileges": ["all"], "allow_restricted_indices": false}]),
            json!({}),
        ),
        reserved_role(
            "monitoring_user",
            &["cluster:monitor/main", "cluster:monitor/xpack/info"],
            json!([{"names": [".monitoring-*", "metrics-*"], "privileges": ["read", "read_cross_cluster"], "allow_restricted_indices": false}]),
            json!({}),
        ),
        reserved_role(
            "viewer",
            &[],
            json!([{"names": ["*"], "privileges": ["read", "view_index_metadata"], "allow_restricted_indices": false}]),
            json!({}),
        ),
    ]
}

/// The built-in users, in the order `GET /_security/user` lists them. Only
/// `elastic` has a password at start; the others authenticate once their
/// password is set (as on a node set up without `elasticsearch-setup-passwords`).
pub(crate) fn reserved_users(elastic_password: &str) -> Vec<User> {
    let user = |name: &str, roles: &[&str], metadata: Value| User {
        username: name.to_string(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        full_name: None,
        email: None,
        metadata: metadata.as_object().cloned().unwrap_or_default(),
        enabled: true,
        password: None,
        reserved: true,
    };
    let reserved = json!({"_reserved": true});
    let mut elastic = user("elastic", &["superuser"], reserved.clone());
    elastic.password = Some(Credential::new(elastic_password));
    vec![
        elastic,
        user(
            "kibana",
            &["kibana_system"],
            json!({"_deprecated": true, "_reserved": true, "_deprecated_reason": "Please use the [kibana_system] user instead."}),
        ),
        user("kibana_system", &["kibana_system"], reserved.clone()),
        user("logstash_system", &["logstash_system"], reserved.clone()),
        user("beats_system", &["beats_system"], reserved.clone()),
        user("apm_system", &["apm_system"], reserved.clone()),
        user(
            "remote_monitoring_user",
            &["remote_monitoring_collector", "remote_monitoring_agent"],
            reserved,
        ),
    ]
}

pub(crate) struct Store {
    pub reserved_users: Vec<User>,
    pub native_users: Vec<User>,
    pub reserved_roles: Vec<Role>,
    pub native_roles: Vec<Role>,
    pub api_keys: Vec<ApiKey>,
}

impl Store {
    pub(crate) fn new(elastic_password: &str) -> Store {
        Store {
            reserved_users: reserved_users(elastic_password),
            native_users: Vec::new(),
            reserved_roles: reserved_roles(),
            native_roles: Vec::new(),
            api_keys: Vec::new(),
        }
    }

    pub(crate) fn is_reserved_user(&self, name: &str) -> bool {
        self.reserved_users.iter().any(|u| u.username == name)
    }

    pub(crate) fn user(&self, name: &str) -> Option<&User> {
        self.reserved_users
            .iter()
            .chain(self.native_users.iter())
            .find(|u| u.username == name)
    }

    pub(crate) fn user_mut(&mut self, name: &str) -> Option<&mut User> {
        self.reserved_users
            .iter_mut()
            .chain(self.native_users.iter_mut())
            .find(|u| u.username == name)
    }

    pub(crate) fn role(&self, name: &str) -> Option<&Role> {
        self.reserved_roles
            .iter()
            .chain(self.native_roles.iter())
            .find(|r| r.name == name)
    }

    /// Resolves role names to descriptors: (found roles, names not found).
    pub(crate) fn resolve_roles(&self, names: &[String]) -> (Vec<Role>, Vec<String>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for n in names {
            match self.role(n) {
                Some(r) => found.push(r.clone()),
                None => missing.push(n.clone()),
            }
        }
        (found, missing)
    }

    /// Adds an API key with a given id and secret, owned by `owner` (who
    /// must exist) and limited by the owner's roles as they are now, as if
    /// the owner had created it. Replaces a key with the same id.
    pub(crate) fn seed_api_key(&mut self, seed: &crate::SeedApiKey) -> Result<(), String> {
        let owner = self
            .user(&seed.owner)
            .ok_or_else(|| format!("api key owner [{}] does not exist", seed.owner))?;
        let (realm, realm_type) = owner.realm();
        let (limited_by, _) = self.resolve_roles(&owner.roles);
        let key = ApiKey {
            id: seed.id.clone(),
            name: seed.name.clone(),
            secret: crate::util::Credential::new(&seed.secret),
            creation: seed.creation_millis.unwrap_or_else(crate::util::now_millis),
            expiration: seed.expiration_millis,
            invalidated: seed.invalidated,
            invalidation: seed.invalidated.then(crate::util::now_millis),
            username: owner.username.clone(),
            realm: realm.to_owned(),
            realm_type: realm_type.to_owned(),
            metadata: Map::new(),
            role_descriptors: Map::new(),
            assigned: Vec::new(),
            limited_by,
            creator_full_name: owner.full_name.clone(),
            creator_email: owner.email.clone(),
            creator_metadata: owner.metadata.clone(),
        };
        self.api_keys.retain(|k| k.id != seed.id);
        self.api_keys.push(key);
        Ok(())
    }

    pub(crate) fn api_key(&self, id: &str) -> Option<&ApiKey> {
        self.api_keys.iter().find(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_follow_elasticsearch() {
        let ctx = ActionContext::default();
        assert_eq!(
            privileges_that_grant("cluster:admin/xpack/security/user/put", &ctx),
            vec!["manage_security", "all"]
        );
        assert_eq!(
            privileges_that_grant("cluster:admin/xpack/security/user/get", &ctx),
            vec!["read_security", "manage_security", "all"]
        );
        assert_eq!(
            privileges_that_grant("cluster:monitor/health", &ctx),
            vec!["monitor", "manage", "all"]
        );
        assert_eq!(
            privileges_that_grant("cluster:admin/xpack/security/api_key/create", &ctx),
            vec![
                "manage_own_api_key",
                "manage_api_key",
                "manage_security",
                "all"
            ]
        );
        assert!(privilege_grants(
            "cluster:monitor/main",
            "cluster:monitor/main",
            &ctx
        ));
        assert!(!privilege_grants(
            "manage",
            "cluster:admin/xpack/security/user/put",
            &ctx
        ));
    }
}
