//! The role API (`PUT|POST|GET|DELETE /_security/role/{name}`) and the
//! role-descriptor parser it shares with API keys' `role_descriptors`.

use super::*;

/// Parses a role descriptor body (role API and API key `role_descriptors`).
pub(super) fn parse_role(name: &str, body: &Map<String, Value>) -> Result<Role, EsError> {
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
pub(super) fn validate_role(role: &Role, errors: &mut Vec<String>) {
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

impl Engine {
    pub(super) fn put_role(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn get_roles(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn delete_role(&self, req: &Req, authn: &Authn) -> HandlerResult {
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
}
