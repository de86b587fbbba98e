//! `GET /_security/_authenticate`: who the credentials on the request
//! belong to. Every identity may call it; opsguard's probes rely on that.

use super::*;

impl Engine {
    pub(super) fn authenticate_api(&self, req: &Req, authn: &Authn) -> HandlerResult {
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
}
