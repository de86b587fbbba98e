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
//!
//! Where things are:
//! * this file — the [`Engine`]: fault injection, the request log, and
//!   [`Engine::handle`], which runs the steps above in order and dispatches;
//! * [`authn`] — authentication (step 1) and authorization (step 5);
//! * [`routing`] — the router (step 2);
//! * [`request`] — parameters and bodies as handlers read them (step 3);
//! * one module per API family (steps 4 and 6): [`cluster`],
//!   [`authenticate`], [`users`], [`roles`], [`api_keys`].

mod api_keys;
mod authenticate;
mod authn;
mod cluster;
mod request;
mod roles;
mod routing;
mod users;

use authn::*;
use request::*;
use roles::*;
use routing::*;

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

    /// Direct access to the security index, for seeding (see `EsDouble::seed_api_key`).
    pub(crate) fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut lock(&self.store))
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
}
