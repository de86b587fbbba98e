//! Request processing: fault injection, authentication, routing,
//! authorization and the security API handlers.
//!
//! The order of checks follows Elasticsearch 8.x:
//! 1. authentication happens first, for every request, at the HTTP layer
//!    (8.x authenticates while validating headers, before dispatch), so an
//!    unauthenticated request to an unknown path is a 401;
//! 2. the REST router picks a handler (400 "no handler found", 405
//!    "Incorrect HTTP method");
//! 3. the REST handler parses the body (parse errors, password length) and
//!    rejects unrecognized query parameters;
//! 4. the request's own `validate()` runs (400 `action_request_validation_exception`);
//! 5. authorization of the transport action (403);
//! 6. the transport action itself (reserved users, missing users, ...).

use crate::error::EsError;
use crate::store::{
    index_privileges_that_grant, is_cluster_privilege, privileges_that_grant, ActionContext,
    ApiKey, IndexPrivileges, Role, Store, User, API_KEY_REALM, CLUSTER_PRIVILEGE_NAMES,
    INTERNAL_USERS,
};
use crate::util::{
    b64_decode, b64_encode, glob_match, now_millis, parse_query, parse_time_value, percent_decode,
    random_b64url, similarity, Credential,
};
use crate::RequestRecord;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

/// The Elasticsearch version this double impersonates.
pub const VERSION: &str = "8.15.0";

pub(crate) struct Fault {
    method: String,
    path_prefix: String,
    status: u16,
    remaining: usize,
}

/// What the HTTP layer sends back.
pub(crate) struct Reply {
    pub status: u16,
    /// `None`: no body (HEAD, OPTIONS).
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    pub pretty: bool,
}

pub(crate) struct Engine {
    store: Mutex<Store>,
    log: Mutex<Vec<RequestRecord>>,
    faults: Mutex<Vec<Fault>>,
    cluster_uuid: String,
    node_name: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The authenticated subject of a request.
#[derive(Clone)]
struct Authn {
    username: String,
    /// Roles as `_authenticate` reports them (none for API keys).
    roles: Vec<String>,
    full_name: Option<String>,
    email: Option<String>,
    metadata: Map<String, Value>,
    /// Authentication realm (name, type).
    realm: (String, String),
    api_key: Option<KeyRef>,
    /// Privilege layers: an action is allowed when every layer has a role
    /// that grants it (an API key is limited by its owner's roles).
    layers: Vec<Vec<Role>>,
    effective_roles: Vec<String>,
    missing_roles: Vec<String>,
}

#[derive(Clone)]
struct KeyRef {
    id: String,
    name: String,
    owner_realm: String,
    limited_by: Vec<Role>,
}

impl Authn {
    /// The realm that "owns" this subject: for API keys, the creator's realm.
    fn owner_realm(&self) -> &str {
        match &self.api_key {
            Some(k) => &k.owner_realm,
            None => &self.realm.0,
        }
    }

    /// Authenticated by the native or reserved realm (not an API key)?
    fn is_password_realm_user(&self) -> bool {
        self.api_key.is_none() && (self.realm.1 == "native" || self.realm.1 == "reserved")
    }

    fn describe(&self) -> String {
        match &self.api_key {
            Some(k) => format!("API key id [{}] of user [{}]", k.id, self.username),
            None => {
                let mut eff = self.effective_roles.clone();
                eff.sort();
                let mut s = format!(
                    "user [{}] with effective roles [{}]",
                    self.username,
                    eff.join(",")
                );
                if !self.missing_roles.is_empty() {
                    let missing: BTreeSet<&String> = self.missing_roles.iter().collect();
                    let missing: Vec<&str> = missing.into_iter().map(String::as_str).collect();
                    s.push_str(&format!(
                        " (assigned roles [{}] were not found)",
                        missing.join(",")
                    ));
                }
                s
            }
        }
    }

    fn allows_cluster(&self, action: &str, ctx: &ActionContext) -> bool {
        self.layers
            .iter()
            .all(|layer| layer.iter().any(|r| r.grants_cluster(action, ctx)))
    }

    fn allows_index(&self, action: &str, index: &str) -> bool {
        self.layers
            .iter()
            .all(|layer| layer.iter().any(|r| r.grants_index(action, index)))
    }
}

/// What `_has_privileges` needs to know of the subject.
fn authn_view(authn: &Authn) -> crate::has_privileges::Subject<'_> {
    crate::has_privileges::Subject {
        username: &authn.username,
        allows_cluster: Box::new(move |action, ctx| authn.allows_cluster(action, ctx)),
        allows_index: Box::new(move |action, index| authn.allows_index(action, index)),
        names_cluster_privilege: Box::new(move |p| {
            authn.layers.iter().all(|layer| {
                layer.iter().any(|r| {
                    r.cluster
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(p) || c.eq_ignore_ascii_case("all"))
                })
            })
        }),
    }
}

fn authorize(authn: &Authn, action: &str, ctx: ActionContext) -> Result<(), EsError> {
    if authn.allows_cluster(action, &ctx) {
        return Ok(());
    }
    let mut msg = format!("action [{action}] is unauthorized for {}", authn.describe());
    let privileges = privileges_that_grant(action, &ctx);
    if !privileges.is_empty() {
        msg.push_str(&format!(
            ", this action is granted by the cluster privileges [{}]",
            privileges.join(",")
        ));
    }
    Err(EsError::forbidden(msg))
}

fn authorize_index(authn: &Authn, action: &str, index: &str) -> Result<(), EsError> {
    if authn.allows_index(action, index) {
        return Ok(());
    }
    Err(EsError::forbidden(format!(
        "action [{action}] is unauthorized for {} on indices [{index}], this action is granted by the index privileges [{}]",
        authn.describe(),
        index_privileges_that_grant(action).join(",")
    )))
}

// ---- routing ----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum RouteId {
    Root,
    Health,
    HealthIndex,
    Authenticate,
    Users,
    User,
    HasPrivileges,
    OwnPassword,
    UserPassword,
    Enable,
    Disable,
    Roles,
    Role,
    ApiKey,
    Index,
}

enum Seg {
    Lit(&'static str),
    Var(&'static str),
}

struct RouteDef {
    segs: &'static [Seg],
    methods: &'static [&'static str],
    id: RouteId,
}

use Seg::{Lit, Var};

const ROUTES: &[RouteDef] = &[
    RouteDef {
        segs: &[],
        methods: &["GET", "HEAD"],
        id: RouteId::Root,
    },
    RouteDef {
        segs: &[Lit("_cluster"), Lit("health")],
        methods: &["GET"],
        id: RouteId::Health,
    },
    RouteDef {
        segs: &[Lit("_cluster"), Lit("health"), Var("index")],
        methods: &["GET"],
        id: RouteId::HealthIndex,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("_authenticate")],
        methods: &["GET"],
        id: RouteId::Authenticate,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user")],
        methods: &["GET"],
        id: RouteId::Users,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Var("username")],
        methods: &["GET", "PUT", "POST", "DELETE"],
        id: RouteId::User,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Lit("_has_privileges")],
        methods: &["GET", "POST"],
        id: RouteId::HasPrivileges,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("user"),
            Lit("_has_privileges"),
        ],
        methods: &["GET", "POST"],
        id: RouteId::HasPrivileges,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("user"), Lit("_password")],
        methods: &["PUT", "POST"],
        id: RouteId::OwnPassword,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_password"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::UserPassword,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_enable"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::Enable,
    },
    RouteDef {
        segs: &[
            Lit("_security"),
            Lit("user"),
            Var("username"),
            Lit("_disable"),
        ],
        methods: &["PUT", "POST"],
        id: RouteId::Disable,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("role")],
        methods: &["GET"],
        id: RouteId::Roles,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("role"), Var("name")],
        methods: &["GET", "PUT", "POST", "DELETE"],
        id: RouteId::Role,
    },
    RouteDef {
        segs: &[Lit("_security"), Lit("api_key")],
        methods: &["GET", "POST", "PUT", "DELETE"],
        id: RouteId::ApiKey,
    },
    RouteDef {
        segs: &[Var("index")],
        methods: &["GET", "HEAD", "PUT", "DELETE"],
        id: RouteId::Index,
    },
];

struct Matched {
    id: RouteId,
    vars: Vec<(&'static str, String)>,
}

enum RouteResult {
    Found(Matched),
    /// The path exists, but not for this method: the methods it allows.
    WrongMethod(Vec<&'static str>),
    NoHandler,
}

fn route(method: &str, segments: &[String]) -> RouteResult {
    // Candidates in Elasticsearch's trie order: explicit segments win over
    // wildcards, earlier positions first.
    let mut candidates: Vec<(&RouteDef, Vec<bool>)> = ROUTES
        .iter()
        .filter(|r| r.segs.len() == segments.len())
        .filter(|r| {
            r.segs.iter().zip(segments).all(|(s, p)| match s {
                Lit(l) => l == p,
                Var(_) => true,
            })
        })
        .map(|r| (r, r.segs.iter().map(|s| matches!(s, Lit(_))).collect()))
        .collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1));
    for (r, _) in &candidates {
        if r.methods.contains(&method) {
            let vars = r
                .segs
                .iter()
                .zip(segments)
                .filter_map(|(s, p)| match s {
                    Var(name) => Some((*name, p.clone())),
                    Lit(_) => None,
                })
                .collect();
            return RouteResult::Found(Matched { id: r.id, vars });
        }
    }
    if candidates.is_empty() {
        return RouteResult::NoHandler;
    }
    let mut allowed: Vec<&'static str> = Vec::new();
    for (r, _) in &candidates {
        for m in r.methods {
            if !allowed.contains(m) {
                allowed.push(m);
            }
        }
    }
    RouteResult::WrongMethod(allowed)
}

/// Parameters every REST handler accepts (response rendering).
const RESPONSE_PARAMS: [&str; 4] = ["pretty", "human", "error_trace", "filter_path"];

/// The request as the handlers see it.
struct Req<'a> {
    method: &'a str,
    /// Raw path as sent (no query string), as `RestRequest.path()`.
    raw_path: &'a str,
    params: Vec<(String, String)>,
    vars: Vec<(&'static str, String)>,
    body: &'a [u8],
}

impl Req<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.params
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            })
    }

    fn var(&self, name: &str) -> String {
        self.vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// `RestRequest.paramAsBoolean`: empty means true.
    fn param_bool(&self, name: &str, default: bool) -> Result<bool, EsError> {
        match self.param(name) {
            None => Ok(default),
            Some("") | Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{v}] as only [true] or [false] are allowed."
            ))),
        }
    }

    /// Rejects query parameters the handler does not consume, with
    /// Elasticsearch's "did you mean" suggestions.
    fn check_params(&self, consumed: &[&str]) -> Result<(), EsError> {
        let invalid: BTreeSet<&str> = self
            .params
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !consumed.contains(k) && !RESPONSE_PARAMS.contains(k))
            .collect();
        if invalid.is_empty() {
            return Ok(());
        }
        let mut msg = format!(
            "request [{}] contains unrecognized parameter{}: ",
            self.raw_path,
            if invalid.len() > 1 { "s" } else { "" }
        );
        for (i, bad) in invalid.iter().enumerate() {
            if i > 0 {
                msg.push_str(", ");
            }
            msg.push_str(&format!("[{bad}]"));
            let mut scored: Vec<(f32, &str)> = consumed
                .iter()
                .map(|c| (similarity(bad, c), *c))
                .filter(|(s, _)| *s > 0.5)
                .collect();
            scored.sort_by(|a, b| {
                b.0.partial_cmp(&a.0)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.1.cmp(b.1))
            });
            if !scored.is_empty() {
                msg.push_str(" -> did you mean ");
                if scored.len() == 1 {
                    msg.push_str(&format!("[{}]", scored[0].1));
                } else {
                    let keys: Vec<&str> = scored.iter().map(|(_, k)| *k).collect();
                    msg.push_str(&format!("any of [{}]", keys.join(", ")));
                }
                msg.push('?');
            }
        }
        Err(EsError::illegal_argument(msg))
    }

    /// `WriteRequest.RefreshPolicy.parse` of `?refresh=`.
    fn check_refresh(&self) -> Result<(), EsError> {
        match self.param("refresh") {
            None | Some("") | Some("true") | Some("false") | Some("wait_for") => Ok(()),
            Some(v) => Err(EsError::illegal_argument(format!(
                "Unknown value for refresh: [{v}]."
            ))),
        }
    }

    fn json_body(&self) -> Result<Option<Value>, EsError> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(None);
        }
        serde_json::from_slice::<Value>(self.body)
            .map(Some)
            .map_err(|e| {
                let text = e.to_string();
                let text = match text.rfind(" at line ") {
                    Some(i) => text[..i].to_string(),
                    None => text,
                };
                EsError::x_content_parse(format!("[{}:{}] {}", e.line(), e.column(), text))
            })
    }

    /// `RestRequest.requiredContent()` then `XContentUtils.verifyObject`.
    fn object_body(&self) -> Result<Map<String, Value>, EsError> {
        match self.json_body()? {
            None => Err(EsError::parse("request body is required")),
            Some(Value::Object(m)) => Ok(m),
            Some(other) => Err(EsError::parse(format!(
                "expected an object, but found token [{}]",
                token(&other)
            ))),
        }
    }

    /// Where `"field"` appears in the body, as `[line:column]`.
    fn location_of(&self, field: &str) -> String {
        let text = String::from_utf8_lossy(self.body);
        let needle = format!("\"{field}\"");
        let offset = text.find(&needle).unwrap_or(0);
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = offset - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        format!("[{line}:{col}]")
    }
}

/// Jackson's token name for a JSON value, as Elasticsearch prints it.
fn token(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(_) => "VALUE_BOOLEAN",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn expected_type(field: &str, kind: &str, v: &Value) -> EsError {
    EsError::parse(format!(
        "expected field [{field}] to be of type {kind}, but found [{}] instead",
        token(v)
    ))
}

const PASSWORD_MIN: usize = 6;

fn check_password(pw: &str) -> Result<(), EsError> {
    if pw.chars().count() < PASSWORD_MIN {
        return Err(EsError::validation(&format!(
            "passwords must be at least [{PASSWORD_MIN}] characters long"
        )));
    }
    Ok(())
}

fn password_hash_unsupported() -> EsError {
    EsError::illegal_argument(
        "es-double does not store password hashes: send [password] instead of [password_hash]",
    )
}

/// `Validation.isValidUserOrRoleName`.
fn valid_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=1024).contains(&len)
        && name.chars().all(|c| (' '..='~').contains(&c))
        && !name.starts_with(' ')
        && !name.ends_with(' ')
}

fn invalid_name_message(kind: &str) -> String {
    format!(
        "{kind} names must be at least 1 and no more than 1024 characters. They can contain alphanumeric characters (a-z, A-Z, 0-9), spaces, punctuation, and printable symbols in the Basic Latin (ASCII) block. Leading or trailing whitespace is not allowed."
    )
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
        ),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn underscore_keys(m: &Map<String, Value>) -> bool {
    m.keys().any(|k| k.starts_with('_'))
}

/// Parses a role descriptor body (role API and API key `role_descriptors`).
fn parse_role(name: &str, body: &Map<String, Value>) -> Result<Role, EsError> {
    let bad = |field: &str, v: &Value| {
        EsError::parse(format!(
            "failed to parse role [{name}]. expected field [{field}] value to be an array of strings, but found [{}] instead",
            token(v)
        ))
    };
    let mut cluster = Vec::new();
    let mut indices_rendered = Vec::new();
    let mut indices = Vec::new();
    let mut rendered = Map::new();
    let mut applications = json!([]);
    let mut run_as = json!([]);
    let mut metadata = Map::new();
    let mut description = None;
    for (k, v) in body {
        match k.as_str() {
            "cluster" => {
                cluster = string_list(v)
                    .filter(|_| v.is_array())
                    .ok_or_else(|| bad("cluster", v))?
            }
            "indices" | "index" => {
                let arr = v.as_array().ok_or_else(|| {
                    EsError::parse(format!(
                        "failed to parse indices privileges for role [{name}]. expected field [{k}] value to be an array, but found [{}] instead",
                        token(v)
                    ))
                })?;
                for entry in arr {
                    let obj = entry.as_object().ok_or_else(|| {
                        EsError::parse(format!(
                            "failed to parse indices privileges for role [{name}]. expected field [{k}] value to be an array of objects, but found an array element of type [{}]",
                            token(entry)
                        ))
                    })?;
                    let names = obj.get("names").and_then(string_list).unwrap_or_default();
                    let privileges = obj
                        .get("privileges")
                        .and_then(string_list)
                        .unwrap_or_default();
                    if names.is_empty() {
                        return Err(EsError::parse(format!(
                            "failed to parse indices privileges for role [{name}]. missing required [names] field"
                        )));
                    }
                    if privileges.is_empty() {
                        return Err(EsError::parse(format!(
                            "failed to parse indices privileges for role [{name}]. missing required [privileges] field"
                        )));
                    }
                    let mut r = Map::new();
                    r.insert("names".into(), json!(names));
                    r.insert("privileges".into(), json!(privileges));
                    if let Some(fs) = obj.get("field_security") {
                        r.insert("field_security".into(), fs.clone());
                    }
                    if let Some(q) = obj.get("query") {
                        r.insert("query".into(), q.clone());
                    }
                    let restricted = obj
                        .get("allow_restricted_indices")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    r.insert("allow_restricted_indices".into(), json!(restricted));
                    indices_rendered.push(Value::Object(r));
                    indices.push(IndexPrivileges { names, privileges });
                }
            }
            "applications" | "application" => applications = v.clone(),
            "run_as" => run_as = v.clone(),
            "metadata" => {
                metadata = v.as_object().cloned().ok_or_else(|| {
                    EsError::parse(format!(
                        "expected field [metadata] to be of type object, but found [{}] instead",
                        token(v)
                    ))
                })?
            }
            "description" => description = v.as_str().map(str::to_string),
            "transient_metadata" | "global" | "remote_indices" | "remote_cluster" => {}
            other => {
                return Err(EsError::parse(format!(
                    "failed to parse role [{name}]. unexpected field [{other}]"
                )))
            }
        }
    }
    rendered.insert("cluster".into(), json!(cluster));
    rendered.insert("indices".into(), Value::Array(indices_rendered));
    rendered.insert("applications".into(), applications);
    rendered.insert("run_as".into(), run_as);
    rendered.insert("metadata".into(), Value::Object(metadata));
    rendered.insert("transient_metadata".into(), json!({"enabled": true}));
    if let Some(d) = description {
        rendered.insert("description".into(), json!(d));
    }
    Ok(Role {
        name: name.to_string(),
        cluster,
        indices,
        rendered,
        reserved: false,
    })
}

/// `RoleDescriptorRequestValidator`: unknown cluster privileges, metadata keys.
fn validate_role(role: &Role, errors: &mut Vec<String>) {
    for p in &role.cluster {
        if !is_cluster_privilege(p) {
            errors.push(format!(
                "unknown cluster privilege [{}]. a privilege must be either one of the predefined cluster privilege names [{}] or a pattern over one of the available cluster actions",
                p.to_ascii_lowercase(),
                CLUSTER_PRIVILEGE_NAMES.join(",")
            ));
        }
    }
    if let Some(Value::Object(m)) = role.rendered.get("metadata") {
        if underscore_keys(m) {
            errors.push("role metadata keys may not start with [_]".into());
        }
    }
}

type HandlerResult = Result<(u16, Value), EsError>;

impl Engine {
    pub(crate) fn new(elastic_password: &str) -> Engine {
        Engine {
            store: Mutex::new(Store::new(elastic_password)),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            cluster_uuid: random_b64url(16),
            node_name: "es-double".to_string(),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).clone()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub(crate) fn fail_next(&self, method: &str, path_prefix: &str, status: u16, times: usize) {
        if times == 0 {
            return;
        }
        lock(&self.faults).push(Fault {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_string(),
            status,
            remaining: times,
        });
    }

    fn take_fault(&self, method: &str, uri: &str, path: &str) -> Option<u16> {
        let mut faults = lock(&self.faults);
        let idx = faults.iter().position(|f| {
            f.method == method
                && (path.starts_with(&f.path_prefix) || uri.starts_with(&f.path_prefix))
        })?;
        let status = faults[idx].status;
        faults[idx].remaining -= 1;
        if faults[idx].remaining == 0 {
            faults.remove(idx);
        }
        Some(status)
    }

    /// Serves one request and records it.
    pub(crate) fn handle(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let (reply, principal) = self.process(method, uri, authorization, body);
        lock(&self.log).push(RequestRecord {
            method: method.to_string(),
            path: uri.to_string(),
            status: reply.status,
            principal,
        });
        reply
    }

    fn process(
        &self,
        method: &str,
        uri: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> (Reply, Option<String>) {
        let (raw_path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, q),
            None => (uri, ""),
        };
        let params = parse_query(query);
        let pretty = params
            .iter()
            .any(|(k, v)| k == "pretty" && (v.is_empty() || v == "true"));
        let head = method == "HEAD";
        let error_reply = |e: EsError| {
            let headers = e
                .headers
                .iter()
                .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                .collect();
            Reply {
                status: e.status,
                body: if head { None } else { Some(e.body()) },
                headers,
                pretty,
            }
        };

        if let Some(status) = self.take_fault(method, uri, raw_path) {
            return (error_reply(EsError::injected(status, method, uri)), None);
        }

        let authn = {
            let store = lock(&self.store);
            match authenticate(&store, authorization, uri) {
                Ok(a) => a,
                Err(e) => return (error_reply(e), None),
            }
        };
        let principal = Some(authn.username.clone());

        let segments: Vec<String> = raw_path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_decode(s, false))
            .collect();

        if method == "OPTIONS" {
            let allowed = match route("OPTIONS", &segments) {
                RouteResult::WrongMethod(m) => m,
                _ => Vec::new(),
            };
            let mut headers = Vec::new();
            if !allowed.is_empty() {
                headers.push(("Allow".to_string(), allowed.join(",")));
            }
            return (
                Reply {
                    status: 200,
                    body: None,
                    headers,
                    pretty,
                },
                principal,
            );
        }

        let matched = match route(method, &segments) {
            RouteResult::Found(m) => m,
            RouteResult::NoHandler => {
                let body = json!({"error": format!("no handler found for uri [{uri}] and method [{method}]")});
                return (
                    Reply {
                        status: 400,
                        body: (!head).then_some(body),
                        headers: Vec::new(),
                        pretty,
                    },
                    principal,
                );
            }
            RouteResult::WrongMethod(allowed) => {
                let body = json!({
                    "error": format!(
                        "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
                        allowed.join(", ")
                    ),
                    "status": 405
                });
                return (
                    Reply {
                        status: 405,
                        body: (!head).then_some(body),
                        headers: vec![("Allow".to_string(), allowed.join(","))],
                        pretty,
                    },
                    principal,
                );
            }
        };

        let req = Req {
            method,
            raw_path,
            params,
            vars: matched.vars,
            body,
        };
        let result = self.dispatch(matched.id, &req, &authn);
        match result {
            Ok((status, value)) => (
                Reply {
                    status,
                    body: (!head).then_some(value),
                    headers: Vec::new(),
                    pretty,
                },
                principal,
            ),
            Err(e) => (error_reply(e), principal),
        }
    }

    fn dispatch(&self, id: RouteId, req: &Req, authn: &Authn) -> HandlerResult {
        match (id, req.method) {
            (RouteId::Root, _) => self.root(req, authn),
            (RouteId::Health, _) | (RouteId::HealthIndex, _) => self.health(req, authn),
            (RouteId::Authenticate, _) => self.authenticate_api(req, authn),
            (RouteId::Users, _) | (RouteId::User, "GET") => self.get_users(req, authn),
            (RouteId::User, "DELETE") => self.delete_user(req, authn),
            (RouteId::User, _) => self.put_user(req, authn),
            (RouteId::HasPrivileges, _) => {
                req.check_params(&[])?;
                crate::has_privileges::handle(
                    &req.var("user"),
                    req.json_body()?,
                    &authn_view(authn),
                )
            }
            (RouteId::OwnPassword, _) | (RouteId::UserPassword, _) => {
                self.change_password(req, authn)
            }
            (RouteId::Enable, _) => self.set_enabled(req, authn, true),
            (RouteId::Disable, _) => self.set_enabled(req, authn, false),
            (RouteId::Roles, _) | (RouteId::Role, "GET") => self.get_roles(req, authn),
            (RouteId::Role, "DELETE") => self.delete_role(req, authn),
            (RouteId::Role, _) => self.put_role(req, authn),
            (RouteId::ApiKey, "GET") => self.get_api_keys(req, authn),
            (RouteId::ApiKey, "DELETE") => self.invalidate_api_keys(req, authn),
            (RouteId::ApiKey, _) => self.create_api_key(req, authn),
            (RouteId::Index, _) => self.index(req, authn),
        }
    }

    // ---- cluster ------------------------------------------------------------------

    fn root(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[])?;
        authorize(authn, "cluster:monitor/main", ActionContext::default())?;
        Ok((
            200,
            json!({
                "name": self.node_name,
                "cluster_name": "es-double",
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "number": VERSION,
                    "build_flavor": "default",
                    "build_type": "docker",
                    "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
                    "build_date": "2024-08-05T10:05:34.233336849Z",
                    "build_snapshot": false,
                    "lucene_version": "9.11.1",
                    "minimum_wire_compatibility_version": "7.17.0",
                    "minimum_index_compatibility_version": "7.0.0"
                },
                "tagline": "You Know, for Search"
            }),
        ))
    }

    fn health(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[
            "index",
            "wait_for_status",
            "timeout",
            "master_timeout",
            "level",
            "local",
            "wait_for_active_shards",
            "wait_for_nodes",
            "wait_for_events",
            "wait_for_no_relocating_shards",
            "wait_for_no_initializing_shards",
            "expand_wildcards",
            "ignore_unavailable",
            "allow_no_indices",
        ])?;
        if let Some(s) = req.param("wait_for_status") {
            if !["green", "yellow", "red"].contains(&s.to_ascii_lowercase().as_str()) {
                return Err(EsError::illegal_argument(format!(
                    "unknown cluster health status [{s}]"
                )));
            }
        }
        if let Some(level) = req.param("level") {
            if !["cluster", "indices", "shards"].contains(&level) {
                return Err(EsError::illegal_argument(format!(
                    "level must be one of [cluster, indices, shards] but was [{level}]"
                )));
            }
        }
        authorize(authn, "cluster:monitor/health", ActionContext::default())?;
        // The only index is the (hidden) security index: asking for any
        // concrete index times out red, as a node without that index does.
        let index = req.param("index").unwrap_or("");
        let known = index.is_empty() || index == "_all" || index == "*";
        let (status, timed_out, code, shards) = if known {
            ("green", false, 200, 1)
        } else {
            ("red", true, 408, 0)
        };
        Ok((
            code,
            json!({
                "cluster_name": "es-double",
                "status": status,
                "timed_out": timed_out,
                "number_of_nodes": 1,
                "number_of_data_nodes": 1,
                "active_primary_shards": shards,
                "active_shards": shards,
                "relocating_shards": 0,
                "initializing_shards": 0,
                "unassigned_shards": 0,
                "delayed_unassigned_shards": 0,
                "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0,
                "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0
            }),
        ))
    }

    fn index(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[
            "index",
            "local",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "flat_settings",
            "include_defaults",
            "master_timeout",
            "timeout",
            "features",
            "wait_for_active_shards",
        ])?;
        let index = req.var("index");
        let action = match req.method {
            "DELETE" => "indices:admin/delete",
            "PUT" => "indices:admin/create",
            _ => "indices:admin/get",
        };
        authorize_index(authn, action, &index)?;
        if req.method == "PUT" {
            return Err(EsError::illegal_argument(
                "es-double serves the security API only; index APIs are not implemented",
            ));
        }
        Err(EsError::index_not_found(&index))
    }

    // ---- authenticate ---------------------------------------------------------------

    fn authenticate_api(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[])?;
        let realm = json!({"name": authn.realm.0, "type": authn.realm.1});
        let mut m = Map::new();
        m.insert("username".into(), json!(authn.username));
        m.insert("roles".into(), json!(authn.roles));
        m.insert("full_name".into(), json!(authn.full_name));
        m.insert("email".into(), json!(authn.email));
        m.insert("metadata".into(), Value::Object(authn.metadata.clone()));
        m.insert("enabled".into(), json!(true));
        m.insert("authentication_realm".into(), realm.clone());
        m.insert("lookup_realm".into(), realm);
        match &authn.api_key {
            Some(k) => {
                m.insert("authentication_type".into(), json!("api_key"));
                m.insert("api_key".into(), json!({"id": k.id, "name": k.name}));
            }
            None => {
                m.insert("authentication_type".into(), json!("realm"));
            }
        }
        Ok((200, Value::Object(m)))
    }

    // ---- users ----------------------------------------------------------------------

    fn put_user(&self, req: &Req, authn: &Authn) -> HandlerResult {
        let username = req.var("username");
        let body = req.object_body()?;
        let mut password: Option<String> = None;
        let mut roles: Option<Vec<String>> = None;
        let mut full_name: Option<String> = None;
        let mut email: Option<String> = None;
        let mut metadata: Option<Map<String, Value>> = None;
        let mut enabled = true;
        for (k, v) in &body {
            match k.as_str() {
                "password" => match v {
                    Value::String(p) => {
                        check_password(p)?;
                        password = Some(p.clone());
                    }
                    _ => return Err(expected_type(k, "string", v)),
                },
                "password_hash" | "passwordHash" => match v {
                    Value::String(_) => return Err(password_hash_unsupported()),
                    _ => return Err(expected_type(k, "string", v)),
                },
                "roles" => {
                    roles = Some(string_list(v).ok_or_else(|| {
                        EsError::parse(format!(
                        "expected field [roles] to be an array of strings, but found [{}] instead",
                        token(v)
                    ))
                    })?)
                }
                "full_name" | "fullName" => match v {
                    Value::String(s) => full_name = Some(s.clone()),
                    Value::Null => {}
                    _ => return Err(expected_type(k, "string", v)),
                },
                "email" => match v {
                    Value::String(s) => email = Some(s.clone()),
                    Value::Null => {}
                    _ => return Err(expected_type(k, "string", v)),
                },
                "metadata" => match v {
                    Value::Object(m) => metadata = Some(m.clone()),
                    _ => return Err(expected_type(k, "object", v)),
                },
                "enabled" => match v {
                    Value::Bool(b) => enabled = *b,
                    _ => return Err(expected_type(k, "boolean", v)),
                },
                "username" => match v {
                    Value::String(s) if *s == username => {}
                    Value::String(_) => {
                        return Err(EsError::illegal_argument(format!(
                            "[username] in source does not match the username provided [{username}]"
                        )))
                    }
                    _ => return Err(expected_type(k, "string", v)),
                },
                other => {
                    return Err(EsError::parse(format!(
                        "failed to parse add user request. unexpected field [{other}]"
                    )))
                }
            }
        }
        req.check_params(&["username", "refresh"])?;
        req.check_refresh()?;

        // PutUserRequest.validate()
        let mut errors = Vec::new();
        if roles.is_none() {
            errors.push("roles are missing".to_string());
        }
        if metadata.as_ref().is_some_and(underscore_keys) {
            errors.push("metadata keys may not start with [_]".to_string());
        }
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }

        authorize(
            authn,
            "cluster:admin/xpack/security/user/put",
            ActionContext::default(),
        )?;

        let roles = roles.unwrap_or_default();
        let mut store = lock(&self.store);
        // TransportPutUserAction.validateRequest
        let mut errors = Vec::new();
        if store.is_reserved_user(&username) {
            errors.push(format!(
                "user [{username}] is reserved and only the password can be changed"
            ));
        } else if INTERNAL_USERS.contains(&username.as_str()) {
            errors.push(format!("user [{username}] is internal"));
        } else if !valid_name(&username) {
            errors.push(invalid_name_message("User"));
        }
        for r in &roles {
            if !valid_name(r) {
                errors.push(invalid_name_message("Role"));
            }
        }
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }

        let existing = store
            .native_users
            .iter()
            .position(|u| u.username == username);
        let credential = match (&password, existing) {
            (Some(p), _) => Credential::new(p),
            (None, Some(i)) => match &store.native_users[i].password {
                Some(c) => c.clone(),
                None => {
                    return Err(EsError::validation(
                        "password must be specified unless you are updating an existing user",
                    ))
                }
            },
            (None, None) => {
                return Err(EsError::validation(
                    "password must be specified unless you are updating an existing user",
                ))
            }
        };
        let user = User {
            username: username.clone(),
            roles,
            full_name,
            email,
            metadata: metadata.unwrap_or_default(),
            enabled,
            password: Some(credential),
            reserved: false,
        };
        let created = match existing {
            Some(i) => {
                store.native_users[i] = user;
                false
            }
            None => {
                store.native_users.push(user);
                true
            }
        };
        Ok((200, json!({"created": created})))
    }

    fn get_users(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&["username", "with_profile_uid"])?;
        req.param_bool("with_profile_uid", false)?;
        authorize(
            authn,
            "cluster:admin/xpack/security/user/get",
            ActionContext::default(),
        )?;
        let store = lock(&self.store);
        let names: Vec<String> = req
            .param("username")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Map::new();
        if names.is_empty() {
            for u in store.native_users.iter().chain(store.reserved_users.iter()) {
                out.insert(u.username.clone(), u.to_json());
            }
            return Ok((200, Value::Object(out)));
        }
        for n in &names {
            if let Some(u) = store.user(n) {
                out.insert(u.username.clone(), u.to_json());
            }
        }
        let status = if out.is_empty() { 404 } else { 200 };
        Ok((status, Value::Object(out)))
    }

    fn delete_user(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&["username", "refresh"])?;
        req.check_refresh()?;
        authorize(
            authn,
            "cluster:admin/xpack/security/user/delete",
            ActionContext::default(),
        )?;
        let username = req.var("username");
        let mut store = lock(&self.store);
        if store.is_reserved_user(&username) {
            return Err(EsError::illegal_argument(format!(
                "user [{username}] is reserved and cannot be deleted"
            )));
        }
        if INTERNAL_USERS.contains(&username.as_str()) {
            return Err(EsError::illegal_argument(format!(
                "user [{username}] is internal"
            )));
        }
        let before = store.native_users.len();
        store.native_users.retain(|u| u.username != username);
        let found = store.native_users.len() != before;
        Ok((if found { 200 } else { 404 }, json!({"found": found})))
    }

    fn change_password(&self, req: &Req, authn: &Authn) -> HandlerResult {
        let body = req.object_body()?;
        let mut password: Option<String> = None;
        for (k, v) in &body {
            match k.as_str() {
                "password" => match v {
                    Value::String(p) => {
                        check_password(p)?;
                        password = Some(p.clone());
                    }
                    _ => return Err(expected_type(k, "string", v)),
                },
                "password_hash" | "passwordHash" => match v {
                    Value::String(_) => return Err(password_hash_unsupported()),
                    _ => return Err(expected_type(k, "string", v)),
                },
                other => {
                    return Err(EsError::parse(format!(
                        "failed to parse change password request. unexpected field [{other}]"
                    )))
                }
            }
        }
        req.check_params(&["username", "refresh"])?;
        req.check_refresh()?;
        let target = match req.vars.iter().find(|(k, _)| *k == "username") {
            Some((_, u)) => u.clone(),
            None => authn.username.clone(),
        };
        let Some(password) = password else {
            return Err(EsError::action_validation(&[
                "password is missing".to_string()
            ]));
        };
        // RBACEngine: a user may always change their own password, when
        // authenticated by the native or reserved realm (not an API key).
        let same_user = target == authn.username && authn.is_password_realm_user();
        if !same_user {
            authorize(
                authn,
                "cluster:admin/xpack/security/user/change_password",
                ActionContext::default(),
            )?;
        }
        if INTERNAL_USERS.contains(&target.as_str()) {
            return Err(EsError::illegal_argument(format!(
                "user [{target}] is internal"
            )));
        }
        let mut store = lock(&self.store);
        match store.user_mut(&target) {
            Some(u) => {
                u.password = Some(Credential::new(&password));
                Ok((200, json!({})))
            }
            None => Err(EsError::validation(
                "user must exist in order to change password",
            )),
        }
    }

    fn set_enabled(&self, req: &Req, authn: &Authn, enabled: bool) -> HandlerResult {
        req.check_params(&["username", "refresh"])?;
        req.check_refresh()?;
        authorize(
            authn,
            "cluster:admin/xpack/security/user/set_enabled",
            ActionContext::default(),
        )?;
        let username = req.var("username");
        if authn.is_password_realm_user() && authn.username == username {
            return Err(EsError::illegal_argument(
                "users may not update the enabled status of their own account",
            ));
        }
        let mut store = lock(&self.store);
        match store.user_mut(&username) {
            Some(u) => {
                u.enabled = enabled;
                Ok((200, json!({})))
            }
            None => Err(EsError::validation(&format!(
                "only existing users can be {}",
                if enabled { "enabled" } else { "disabled" }
            ))),
        }
    }

    // ---- roles ----------------------------------------------------------------------

    fn put_role(&self, req: &Req, authn: &Authn) -> HandlerResult {
        let name = req.var("name");
        let body = req.object_body()?;
        let role = parse_role(&name, &body)?;
        req.check_params(&["name", "refresh"])?;
        req.check_refresh()?;
        let mut errors = Vec::new();
        if !valid_name(&name) {
            errors.push(invalid_name_message("Role"));
        } else if lock(&self.store).role(&name).is_some_and(|r| r.reserved) {
            errors.push(format!("Role [{name}] is reserved and may not be used."));
        }
        validate_role(&role, &mut errors);
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }
        authorize(
            authn,
            "cluster:admin/xpack/security/role/put",
            ActionContext::default(),
        )?;
        let mut store = lock(&self.store);
        let created = match store.native_roles.iter().position(|r| r.name == name) {
            Some(i) => {
                store.native_roles[i] = role;
                false
            }
            None => {
                store.native_roles.push(role);
                true
            }
        };
        Ok((200, json!({"role": {"created": created}})))
    }

    fn get_roles(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&["name"])?;
        authorize(
            authn,
            "cluster:admin/xpack/security/role/get",
            ActionContext::default(),
        )?;
        let store = lock(&self.store);
        let names: Vec<String> = req
            .param("name")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Map::new();
        if names.is_empty() {
            for r in store.reserved_roles.iter().chain(store.native_roles.iter()) {
                out.insert(r.name.clone(), Value::Object(r.rendered.clone()));
            }
            return Ok((200, Value::Object(out)));
        }
        for n in &names {
            if let Some(r) = store.role(n) {
                out.insert(r.name.clone(), Value::Object(r.rendered.clone()));
            }
        }
        let status = if out.is_empty() { 404 } else { 200 };
        Ok((status, Value::Object(out)))
    }

    fn delete_role(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&["name", "refresh"])?;
        req.check_refresh()?;
        authorize(
            authn,
            "cluster:admin/xpack/security/role/delete",
            ActionContext::default(),
        )?;
        let name = req.var("name");
        let mut store = lock(&self.store);
        if store.role(&name).is_some_and(|r| r.reserved) {
            return Err(EsError::illegal_argument(format!(
                "role [{name}] is reserved and cannot be deleted"
            )));
        }
        let before = store.native_roles.len();
        store.native_roles.retain(|r| r.name != name);
        let found = before != store.native_roles.len();
        Ok((if found { 200 } else { 404 }, json!({"found": found})))
    }

    // ---- API keys ---------------------------------------------------------------------

    fn create_api_key(&self, req: &Req, authn: &Authn) -> HandlerResult {
        let body = req.object_body()?;
        let mut name: Option<String> = None;
        let mut expiration: Option<u64> = None;
        let mut role_descriptors: Option<Map<String, Value>> = None;
        let mut metadata = Map::new();
        for (k, v) in &body {
            match k.as_str() {
                "name" => match v {
                    Value::String(s) => name = Some(s.clone()),
                    Value::Null => {}
                    _ => {
                        return Err(EsError::x_content_parse(format!(
                            "{} [api_key_request] failed to parse field [name]",
                            req.location_of(k)
                        )))
                    }
                },
                "expiration" => match v {
                    Value::String(s) => {
                        expiration = Some(parse_time_value(s).ok_or_else(|| {
                            EsError::parse(format!(
                                "failed to parse setting [expiration] with value [{s}] as a time value: unit is missing or unrecognized"
                            ))
                        })?)
                    }
                    Value::Null => {}
                    _ => {
                        return Err(EsError::x_content_parse(format!(
                            "{} [api_key_request] failed to parse field [expiration]",
                            req.location_of(k)
                        )))
                    }
                },
                "role_descriptors" => match v {
                    Value::Object(m) => role_descriptors = Some(m.clone()),
                    _ => {
                        return Err(EsError::x_content_parse(format!(
                            "{} [api_key_request] role_descriptors doesn't support values of type: {}",
                            req.location_of(k),
                            token(v)
                        )))
                    }
                },
                "metadata" => match v {
                    Value::Object(m) => metadata = m.clone(),
                    _ => {
                        return Err(EsError::x_content_parse(format!(
                            "{} [api_key_request] metadata doesn't support values of type: {}",
                            req.location_of(k),
                            token(v)
                        )))
                    }
                },
                other => {
                    return Err(EsError::x_content_parse(format!(
                        "{} [api_key_request] unknown field [{other}]",
                        req.location_of(other)
                    )))
                }
            }
        }
        let mut assigned = Vec::new();
        if let Some(rds) = &role_descriptors {
            for (rname, rbody) in rds {
                let obj = rbody.as_object().ok_or_else(|| {
                    EsError::parse(format!(
                        "failed to parse role [{rname}]. expected an object"
                    ))
                })?;
                assigned.push(parse_role(rname, obj)?);
            }
        }
        req.check_params(&["refresh"])?;
        req.check_refresh()?;

        // CreateApiKeyRequest.validate()
        let mut errors = Vec::new();
        match &name {
            None => errors.push("api key name is required".to_string()),
            Some(n) if n.is_empty() => errors.push("api key name is required".to_string()),
            Some(n) => {
                if n.chars().count() > 256 {
                    errors.push("api key name may not be more than [256] characters long".into());
                }
                if n.trim() != n {
                    errors.push("api key name may not begin or end with whitespace".into());
                }
                if n.starts_with('_') {
                    errors.push("api key name may not begin with an underscore".into());
                }
            }
        }
        if underscore_keys(&metadata) {
            errors.push("API key metadata keys may not start with [_]".into());
        }
        for r in &assigned {
            validate_role(r, &mut errors);
        }
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }

        authorize(
            authn,
            "cluster:admin/xpack/security/api_key/create",
            ActionContext::default(),
        )?;

        // An API key may only create keys without privileges.
        if authn.api_key.is_some() {
            let empty = role_descriptors.as_ref().is_some_and(|rds| {
                !rds.is_empty()
                    && assigned
                        .iter()
                        .all(|r| r.cluster.is_empty() && r.indices.is_empty())
            });
            if !empty {
                return Err(EsError::illegal_argument(
                    "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)",
                ));
            }
        }

        let name = name.unwrap_or_default();
        let now = now_millis();
        let id = random_b64url(15);
        let secret = random_b64url(16);
        let (realm, realm_type, limited_by) = match &authn.api_key {
            Some(k) => {
                let store = lock(&self.store);
                let realm_type = store
                    .api_key(&k.id)
                    .map(|p| p.realm_type.clone())
                    .unwrap_or_default();
                (k.owner_realm.clone(), realm_type, k.limited_by.clone())
            }
            None => (
                authn.realm.0.clone(),
                authn.realm.1.clone(),
                authn.layers.first().cloned().unwrap_or_default(),
            ),
        };
        let key = ApiKey {
            id: id.clone(),
            name: name.clone(),
            secret: Credential::new(&secret),
            creation: now,
            expiration: expiration.map(|e| now + e),
            invalidated: false,
            invalidation: None,
            username: authn.username.clone(),
            realm,
            realm_type,
            metadata,
            role_descriptors: role_descriptors.unwrap_or_default(),
            assigned,
            limited_by,
            creator_full_name: authn.full_name.clone(),
            creator_email: authn.email.clone(),
            creator_metadata: authn.metadata.clone(),
        };
        let mut out = Map::new();
        out.insert("id".into(), json!(id));
        out.insert("name".into(), json!(name));
        if let Some(e) = key.expiration {
            out.insert("expiration".into(), json!(e));
        }
        out.insert("api_key".into(), json!(secret));
        out.insert(
            "encoded".into(),
            json!(b64_encode(&format!("{id}:{secret}"))),
        );
        lock(&self.store).api_keys.push(key);
        Ok((200, Value::Object(out)))
    }

    fn get_api_keys(&self, req: &Req, authn: &Authn) -> HandlerResult {
        req.check_params(&[
            "id",
            "name",
            "username",
            "realm_name",
            "owner",
            "with_limited_by",
            "active_only",
            "with_profile_uid",
        ])?;
        let owner = req.param_bool("owner", false)?;
        let active_only = req.param_bool("active_only", false)?;
        req.param_bool("with_limited_by", false)?;
        req.param_bool("with_profile_uid", false)?;
        let nonempty = |s: Option<&str>| s.filter(|v| !v.is_empty()).map(str::to_string);
        let id = nonempty(req.param("id"));
        let name = nonempty(req.param("name"));
        let username = nonempty(req.param("username"));
        let realm_name = nonempty(req.param("realm_name"));

        // GetApiKeyRequest.validate()
        let mut errors = Vec::new();
        if (id.is_some() || name.is_some()) && (username.is_some() || realm_name.is_some()) {
            errors.push(
                "username or realm name must not be specified when the api key id or api key name is specified".into(),
            );
        }
        if owner && (username.is_some() || realm_name.is_some()) {
            errors.push(
                "neither username nor realm-name may be specified when retrieving owned API keys"
                    .into(),
            );
        }
        if id.is_some() && name.is_some() {
            errors.push("only one of [api key id, api key name] can be specified".into());
        }
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }

        let self_realm = authn.owner_realm().to_string();
        let own = owner
            || (username.as_deref() == Some(authn.username.as_str())
                && realm_name.as_deref() == Some(self_realm.as_str()))
            || (authn
                .api_key
                .as_ref()
                .is_some_and(|k| id.as_deref() == Some(k.id.as_str())));
        authorize(
            authn,
            "cluster:admin/xpack/security/api_key/get",
            ActionContext { own_api_keys: own },
        )?;

        let now = now_millis();
        let store = lock(&self.store);
        let keys: Vec<Value> = store
            .api_keys
            .iter()
            .filter(|k| id.as_deref().is_none_or(|i| k.id == i))
            .filter(|k| name.as_deref().is_none_or(|n| glob_match(n, &k.name)))
            .filter(|k| username.as_deref().is_none_or(|u| k.username == u))
            .filter(|k| realm_name.as_deref().is_none_or(|r| k.realm == r))
            .filter(|k| !owner || (k.username == authn.username && k.realm == self_realm))
            .filter(|k| !active_only || (!k.invalidated && !k.is_expired(now)))
            .map(ApiKey::to_json)
            .collect();
        let status = if id.is_some() && keys.is_empty() {
            404
        } else {
            200
        };
        Ok((status, json!({"api_keys": keys})))
    }

    fn invalidate_api_keys(&self, req: &Req, authn: &Authn) -> HandlerResult {
        let body = req.object_body()?;
        let mut ids: Option<Vec<String>> = None;
        let mut single_id: Option<String> = None;
        let mut name: Option<String> = None;
        let mut username: Option<String> = None;
        let mut realm_name: Option<String> = None;
        let mut owner = false;
        for (k, v) in &body {
            let as_string = |v: &Value| -> Result<Option<String>, EsError> {
                match v {
                    Value::String(s) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
                    Value::Null => Ok(None),
                    _ => Err(EsError::x_content_parse(format!(
                        "{} [invalidate_api_key] failed to parse field [{k}]",
                        req.location_of(k)
                    ))),
                }
            };
            match k.as_str() {
                "ids" => {
                    let list = match v {
                        Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>(),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        EsError::x_content_parse(format!(
                            "{} [invalidate_api_key] failed to parse field [ids]",
                            req.location_of(k)
                        ))
                    })?;
                    if list.is_empty() {
                        return Err(EsError::illegal_argument(
                            "Field [ids] cannot be an empty array",
                        ));
                    }
                    ids = Some(list);
                }
                "id" => single_id = as_string(v)?,
                "name" => name = as_string(v)?,
                "username" => username = as_string(v)?,
                "realm_name" => realm_name = as_string(v)?,
                "owner" => match v {
                    Value::Bool(b) => owner = *b,
                    _ => {
                        return Err(EsError::x_content_parse(format!(
                            "{} [invalidate_api_key] failed to parse field [owner]",
                            req.location_of(k)
                        )))
                    }
                },
                other => {
                    return Err(EsError::x_content_parse(format!(
                        "{} [invalidate_api_key] unknown field [{other}]",
                        req.location_of(other)
                    )))
                }
            }
        }
        if single_id.is_some() && ids.is_some() {
            return Err(EsError::illegal_argument(
                "Must use either [id] or [ids], not both at the same time",
            ));
        }
        if let Some(i) = single_id {
            ids = Some(vec![i]);
        }
        req.check_params(&[])?;

        // InvalidateApiKeyRequest.validate()
        let mut errors = Vec::new();
        if realm_name.is_none() && username.is_none() && ids.is_none() && name.is_none() && !owner {
            errors.push(
                "One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false"
                    .to_string(),
            );
        }
        if (ids.is_some() || name.is_some()) && (realm_name.is_some() || username.is_some()) {
            errors.push(
                "username or realm name must not be specified when the api key id(s) or api key name are specified"
                    .to_string(),
            );
        }
        if owner && (realm_name.is_some() || username.is_some()) {
            errors.push(
                "neither username nor realm-name may be specified when invalidating owned API keys"
                    .to_string(),
            );
        }
        if ids.is_some() && name.is_some() {
            errors.push("only one of [api key id(s), api key name] can be specified".to_string());
        }
        if !errors.is_empty() {
            return Err(EsError::action_validation(&errors));
        }

        let self_realm = authn.owner_realm().to_string();
        let own = owner
            || (username.as_deref() == Some(authn.username.as_str())
                && realm_name.as_deref() == Some(self_realm.as_str()))
            || authn.api_key.as_ref().is_some_and(|k| {
                ids.as_ref()
                    .is_some_and(|ids| ids.len() == 1 && ids[0] == k.id)
            });
        authorize(
            authn,
            "cluster:admin/xpack/security/api_key/invalidate",
            ActionContext { own_api_keys: own },
        )?;

        let now = now_millis();
        let mut store = lock(&self.store);
        let mut invalidated = Vec::new();
        for k in store.api_keys.iter_mut() {
            if k.invalidated {
                continue;
            }
            let matches = ids.as_ref().is_none_or(|ids| ids.contains(&k.id))
                && name.as_deref().is_none_or(|n| glob_match(n, &k.name))
                && username.as_deref().is_none_or(|u| k.username == u)
                && realm_name.as_deref().is_none_or(|r| k.realm == r)
                && (!owner || (k.username == authn.username && k.realm == self_realm));
            if matches {
                k.invalidated = true;
                k.invalidation = Some(now);
                invalidated.push(k.id.clone());
            }
        }
        Ok((
            200,
            json!({
                "invalidated_api_keys": invalidated,
                "previously_invalidated_api_keys": [],
                "error_count": 0
            }),
        ))
    }
}

/// Authenticates the `Authorization` header the way the 8.x authenticator
/// chain does (API key, then the reserved and native realms).
fn authenticate(store: &Store, authorization: Option<&str>, uri: &str) -> Result<Authn, EsError> {
    let header = authorization.map(str::trim).unwrap_or("");
    let has_prefix = |p: &str| header.len() > p.len() && header[..p.len()].eq_ignore_ascii_case(p);
    if has_prefix("Basic ") {
        let decoded = b64_decode(&header[6..])
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                EsError::bad_basic_header("invalid basic authentication header encoding")
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            EsError::bad_basic_header("invalid basic authentication header value")
        })?;
        return match store.user(user) {
            Some(u) if u.enabled && u.password.as_ref().is_some_and(|c| c.verify(password)) => {
                Ok(user_authn(store, u))
            }
            _ => Err(EsError::failed_authentication(user, uri)),
        };
    }
    if has_prefix("ApiKey ") {
        let failed = |m: String| EsError::unsuccessful_credentials(&format!("API key: {m}"));
        let decoded = b64_decode(&header[7..])
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| failed("invalid ApiKey value".into()))?;
        let (id, secret) = match decoded.split_once(':') {
            Some((id, s)) if !id.is_empty() => (id, s),
            _ => return Err(failed("invalid ApiKey value".into())),
        };
        let key = store
            .api_key(id)
            .ok_or_else(|| failed(format!("unable to find apikey with id {id}")))?;
        if key.invalidated {
            return Err(failed(format!("api key [{id}] has been invalidated")));
        }
        if !key.secret.verify(secret) {
            return Err(failed(format!("invalid credentials for API key [{id}]")));
        }
        if key.is_expired(now_millis()) {
            return Err(failed("api key is expired".into()));
        }
        let mut layers = vec![key.limited_by.clone()];
        if !key.assigned.is_empty() {
            layers.push(key.assigned.clone());
        }
        return Ok(Authn {
            username: key.username.clone(),
            roles: Vec::new(),
            full_name: key.creator_full_name.clone(),
            email: key.creator_email.clone(),
            metadata: key.creator_metadata.clone(),
            realm: (API_KEY_REALM.0.to_string(), API_KEY_REALM.1.to_string()),
            api_key: Some(KeyRef {
                id: key.id.clone(),
                name: key.name.clone(),
                owner_realm: key.realm.clone(),
                limited_by: key.limited_by.clone(),
            }),
            layers,
            effective_roles: Vec::new(),
            missing_roles: Vec::new(),
        });
    }
    Err(EsError::missing_credentials(uri))
}

fn user_authn(store: &Store, u: &User) -> Authn {
    let (found, missing) = store.resolve_roles(&u.roles);
    let realm = u.realm();
    Authn {
        username: u.username.clone(),
        roles: u.roles.clone(),
        full_name: u.full_name.clone(),
        email: u.email.clone(),
        metadata: u.metadata.clone(),
        realm: (realm.0.to_string(), realm.1.to_string()),
        api_key: None,
        effective_roles: found.iter().map(|r| r.name.clone()).collect(),
        missing_roles: missing,
        layers: vec![found],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn explicit_segments_win_over_wildcards() {
        match route("PUT", &segs("/_security/user/_password")) {
            RouteResult::Found(m) => assert_eq!(m.id, RouteId::OwnPassword),
            _ => panic!("expected a route"),
        }
        match route("GET", &segs("/_security/user/_password")) {
            RouteResult::Found(m) => {
                assert_eq!(m.id, RouteId::User);
                assert_eq!(m.vars, vec![("username", "_password".to_string())]);
            }
            _ => panic!("expected a route"),
        }
    }

    #[test]
    fn wrong_method_lists_allowed_methods() {
        match route("PATCH", &segs("/_security/user/joe")) {
            RouteResult::WrongMethod(m) => assert_eq!(m, vec!["GET", "PUT", "POST", "DELETE"]),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            route("GET", &segs("/a/b/c")),
            RouteResult::NoHandler
        ));
    }
}
