//! Who is asking, and may they: authentication of the `Authorization` header
//! (API key, then the reserved and native realms, as the 8.x authenticator
//! chain does it) and authorization of cluster and index actions, with
//! Elasticsearch's own 401 and 403 messages.

use super::*;

/// The authenticated subject of a request.
#[derive(Clone)]
pub(super) struct Authn {
    pub(super) username: String,
    /// Roles as `_authenticate` reports them (none for API keys).
    pub(super) roles: Vec<String>,
    pub(super) full_name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) metadata: Map<String, Value>,
    /// Authentication realm (name, type).
    pub(super) realm: (String, String),
    pub(super) api_key: Option<KeyRef>,
    /// Privilege layers: an action is allowed when every layer has a role
    /// that grants it (an API key is limited by its owner's roles).
    pub(super) layers: Vec<Vec<Role>>,
    pub(super) effective_roles: Vec<String>,
    pub(super) missing_roles: Vec<String>,
}

#[derive(Clone)]
pub(super) struct KeyRef {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) owner_realm: String,
    pub(super) limited_by: Vec<Role>,
}

impl Authn {
    /// The realm that "owns" this subject: for API keys, the creator's realm.
    pub(super) fn owner_realm(&self) -> &str {
        match &self.api_key {
            Some(k) => &k.owner_realm,
            None => &self.realm.0,
        }
    }

    /// Authenticated by the native or reserved realm (not an API key)?
    pub(super) fn is_password_realm_user(&self) -> bool {
        self.api_key.is_none() && (self.realm.1 == "native" || self.realm.1 == "reserved")
    }

    pub(super) fn describe(&self) -> String {
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

    pub(super) fn allows_cluster(&self, action: &str, ctx: &ActionContext) -> bool {
        self.layers
            .iter()
            .all(|layer| layer.iter().any(|r| r.grants_cluster(action, ctx)))
    }

    pub(super) fn allows_index(&self, action: &str, index: &str) -> bool {
        self.layers
            .iter()
            .all(|layer| layer.iter().any(|r| r.grants_index(action, index)))
    }
}

/// What `_has_privileges` needs to know of the subject.
pub(super) fn authn_view(authn: &Authn) -> crate::has_privileges::Subject<'_> {
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

pub(super) fn authorize(authn: &Authn, action: &str, ctx: ActionContext) -> Result<(), EsError> {
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

pub(super) fn authorize_index(authn: &Authn, action: &str, index: &str) -> Result<(), EsError> {
    if authn.allows_index(action, index) {
        return Ok(());
    }
    Err(EsError::forbidden(format!(
        "action [{action}] is unauthorized for {} on indices [{index}], this action is granted by the index privileges [{}]",
        authn.describe(),
        index_privileges_that_grant(action).join(",")
    )))
}

/// Authenticates the `Authorization` header the way the 8.x authenticator
/// chain does (API key, then the reserved and native realms).
pub(super) fn authenticate(
    store: &Store,
    authorization: Option<&str>,
    uri: &str,
) -> Result<Authn, EsError> {
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

pub(super) fn user_authn(store: &Store, u: &User) -> Authn {
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
