//! The user API: put, get, delete, `_password`, `_enable`, `_disable`, with
//! Elasticsearch's validation and its rules for reserved users.

use super::*;

impl Engine {
    pub(super) fn put_user(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn get_users(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn delete_user(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn change_password(&self, req: &Req, authn: &Authn) -> HandlerResult {
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

    pub(super) fn set_enabled(&self, req: &Req, authn: &Authn, enabled: bool) -> HandlerResult {
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
}
