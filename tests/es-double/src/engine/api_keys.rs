//! The API key API: create, get and invalidate (`POST|PUT|GET|DELETE
//! /_security/api_key`).

use super::*;

impl Engine {
    pub(super) fn create_api_key(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn get_api_keys(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn invalidate_api_keys(&self, req: &Req, authn: &Authn) -> HandlerResult {
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
            // Elasticsearch searches only keys not yet invalidated: one that
            // already is matches nothing and is listed nowhere (see the test
            // `invalidating_an_invalidated_key_again_is_an_empty_success`).
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
                // Filled by Elasticsearch only when another request
                // invalidated a key between its search and its update: a
                // race this double, which serialises requests, cannot have.
                "previously_invalidated_api_keys": [],
                "error_count": 0
            }),
        ))
    }
}
