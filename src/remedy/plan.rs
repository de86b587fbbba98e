//! Planning a remedy: which steps put right exactly what the blocking
//! violations name, and nothing else. Pure: it reads facts and the two
//! snapshots and returns steps; [`super::apply`] carries them out.
//!
//! Rollback restores the before state of each named resource: a secret's
//! AWSCURRENT goes back to the version it was on, a user gets back its
//! roles, flags and — when the value its consumers hold no longer
//! authenticates — that value as its password; a deleted user is recreated;
//! a desired count is restored. Redeploy forces a new deployment of the
//! consumers that still run tasks with the old value. Neither ever deletes.
//!
//! What cannot be restored is said plainly (an invalidated API key cannot be
//! revalidated); the rule's other remedy is then offered, or used when
//! `[remedies] redeploy_fallback` allows.

use crate::config::{Config, CredentialSpec, Mode};
use crate::facts::model::{CredentialFact, Facts};
use crate::model::{SecretName, ServiceRef};
use crate::rules::{Each, Finding, Remedy};
use crate::snapshot::model::{CredentialState, EsUser, SecretState, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Where a value that was in use before the command can be read again after
/// a crash: a secret version (the value itself is never journalled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueRef {
    pub secret: SecretName,
    pub version_id: String,
    /// The `valueFrom` JSON key, if the variable reads one field of the secret.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub json_key: Option<String>,
    /// For a JSON credential (`json_env`): the field holding the password.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// One remedy step. Each names exactly one resource and is idempotent, so a
/// step interrupted by a crash can simply be applied again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// Set a user's password back to the value its consumers hold.
    EsPassword {
        user: String,
        /// The credential whose before-value this is (to find it in memory).
        credential: String,
        value: ValueRef,
    },
    /// Recreate a deleted user with its before attributes and password.
    EsUserRecreate {
        user: EsUser,
        credential: String,
        value: ValueRef,
    },
    /// Restore roles, full name, email, metadata and the enabled flag.
    EsUserRestore { user: EsUser },
    /// Move AWSCURRENT back to the version current before the command.
    SecretCurrentBack {
        secret: SecretName,
        to_version: String,
        from_version: String,
        /// The credentials this secret is part of: it is moved back only
        /// once Elasticsearch accepts their before-values again (so a
        /// credential is never left with a secret ES refuses).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        credentials: Vec<String>,
    },
    /// Cancel a deletion scheduled by the command.
    SecretRestore { secret: SecretName },
    /// Restore a service's desired count.
    DesiredCount { service: ServiceRef, desired: i32 },
    /// Force a new deployment and wait until it is stable.
    Redeploy { service: ServiceRef },
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::EsPassword { .. } => "es-password",
            Step::EsUserRecreate { .. } => "es-user-recreate",
            Step::EsUserRestore { .. } => "es-user-restore",
            Step::SecretCurrentBack { .. } => "secret-current-back",
            Step::SecretRestore { .. } => "secret-restore",
            Step::DesiredCount { .. } => "desired-count",
            Step::Redeploy { .. } => "redeploy",
        }
    }

    pub fn target(&self) -> String {
        match self {
            Step::EsPassword { user, .. } => user.clone(),
            Step::EsUserRecreate { user, .. } | Step::EsUserRestore { user } => {
                user.username.clone()
            }
            Step::SecretCurrentBack { secret, .. } | Step::SecretRestore { secret } => {
                secret.to_string()
            }
            Step::DesiredCount { service, .. } | Step::Redeploy { service } => service.to_string(),
        }
    }

    /// In words, for people and the journal.
    pub fn describe(&self) -> String {
        match self {
            Step::EsPassword { user, value, .. } => format!(
                "reset the Elasticsearch password of {user} to the value its tasks hold (secret {} version {})",
                value.secret,
                short(&value.version_id)
            ),
            Step::EsUserRecreate { user, .. } => {
                format!("recreate the deleted user {} with its roles and password", user.username)
            }
            Step::EsUserRestore { user } => format!(
                "restore user {}: roles [{}], {}",
                user.username,
                user.roles.join(", "),
                if user.enabled { "enabled" } else { "disabled" }
            ),
            Step::SecretCurrentBack {
                secret,
                to_version,
                from_version,
                ..
            } => format!(
                "move AWSCURRENT of {secret} back from {} to {}",
                short(from_version),
                short(to_version)
            ),
            Step::SecretRestore { secret } => format!("cancel the scheduled deletion of {secret}"),
            Step::DesiredCount { service, desired } => format!("set the desired count of {service} back to {desired}"),
            Step::Redeploy { service } => format!("force a new deployment of {service} and wait until it is stable"),
        }
    }
}

fn short(v: &str) -> &str {
    v.get(..8).unwrap_or(v)
}

/// What to do, and what cannot be done.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Things that cannot be put right automatically, in words, with what a
    /// person should do.
    pub cannot: Vec<String>,
}

impl Plan {
    fn push(&mut self, step: Step) {
        if !self.steps.contains(&step) {
            self.steps.push(step);
        }
    }
    fn cannot(&mut self, why: String) {
        if !self.cannot.contains(&why) {
            self.cannot.push(why);
        }
    }
}

/// Plan the remedy of `mode` for the blocking findings.
pub fn plan(
    mode: Mode,
    findings: &[Finding],
    facts: &Facts,
    before: &Snapshot,
    after: &Snapshot,
    config: &Config,
) -> Plan {
    let mut p = Plan::default();
    for f in findings.iter().filter(|f| f.blocks()) {
        let wanted = match mode {
            Mode::Rollback => Remedy::Rollback,
            Mode::Redeploy => Remedy::Redeploy,
            Mode::Block | Mode::Warn => return Plan::default(),
        };
        if !f.remedies.contains(&wanted) {
            let others: Vec<&str> = f.remedies.iter().map(|r| r.as_str()).collect();
            p.cannot(format!(
                "{} on {}: `{}` is not a remedy of this rule{}",
                f.rule,
                f.target,
                wanted,
                if others.is_empty() {
                    "; fix it by hand".to_owned()
                } else {
                    format!(" (try --on-violation {})", others.join(" or "))
                }
            ));
            continue;
        }
        match f.each {
            Each::Credentials => {
                let Some(cf) = facts.credentials.iter().find(|c| c.id == f.target) else {
                    continue;
                };
                match wanted {
                    Remedy::Rollback => rollback_credential(&mut p, cf, before, after, config),
                    Remedy::Redeploy => redeploy_credential(&mut p, cf),
                }
            }
            Each::Services => {
                let Some(sf) = facts.services.iter().find(|s| s.id == f.target) else {
                    continue;
                };
                let service = ServiceRef::new(&sf.cluster, &sf.name);
                match wanted {
                    Remedy::Rollback if sf.existed && sf.exists && sf.desired_before != sf.desired_after => {
                        p.push(Step::DesiredCount {
                            service,
                            desired: sf.desired_before as i32,
                        })
                    }
                    Remedy::Rollback => p.cannot(format!(
                        "{} on {}: nothing opsguard can roll back changed ({}); look at the service's events",
                        f.rule,
                        f.target,
                        if sf.degraded_reason.is_empty() { "no count changed" } else { &sf.degraded_reason }
                    )),
                    Remedy::Redeploy if sf.exists => p.push(Step::Redeploy { service }),
                    Remedy::Redeploy => p.cannot(format!("{}: the service no longer exists", f.target)),
                }
            }
            // Plan findings are judged before apply: there is nothing to remedy.
            Each::Changes => {}
            Each::Secrets => {
                let name = SecretName::new(f.target.as_str());
                match wanted {
                    Remedy::Rollback => rollback_secret(&mut p, &name, before, after),
                    Remedy::Redeploy => {
                        for c in facts
                            .credentials
                            .iter()
                            .filter(|c| c.secrets.contains(&f.target))
                        {
                            redeploy_credential(&mut p, c);
                        }
                    }
                }
            }
        }
    }
    // Which credentials each secret moved back belongs to (see apply: a
    // secret only moves back once ES accepts what it will hold).
    for step in &mut p.steps {
        if let Step::SecretCurrentBack {
            secret,
            credentials,
            ..
        } = step
        {
            *credentials = facts
                .credentials
                .iter()
                .filter(|c| c.secrets.iter().any(|s| s.as_str() == secret.as_str()))
                .map(|c| c.id.clone())
                .collect();
        }
    }
    // Restore the users first: running tasks recover the moment their value
    // authenticates again. Redeploys go last: they wait.
    p.steps.sort_by_key(|s| match s {
        Step::EsPassword { .. } | Step::EsUserRecreate { .. } => 0,
        Step::EsUserRestore { .. } => 1,
        Step::SecretRestore { .. } | Step::SecretCurrentBack { .. } => 2,
        Step::DesiredCount { .. } => 3,
        Step::Redeploy { .. } => 4,
    });
    p
}

fn rollback_secret(p: &mut Plan, name: &SecretName, before: &Snapshot, after: &Snapshot) {
    let b = before.secrets.iter().find(|s| &s.name == name);
    let a = after.secrets.iter().find(|s| &s.name == name);
    let (Some(b), Some(a)) = (b, a) else {
        if b.is_some() {
            p.cannot(format!(
                "secret {name} was deleted outright and cannot be restored; recreate it from its last value"
            ));
        }
        return;
    };
    if !a.exists && b.exists {
        p.cannot(format!(
            "secret {name} was deleted outright and cannot be restored; recreate it from its last value"
        ));
        return;
    }
    if a.deleted_date.is_some() && b.deleted_date.is_none() {
        p.push(Step::SecretRestore {
            secret: name.clone(),
        });
    }
    move_back(p, b, a);
}

fn move_back(p: &mut Plan, b: &SecretState, a: &SecretState) {
    let (Some(bv), Some(av)) = (&b.current_version_id, &a.current_version_id) else {
        return;
    };
    if bv == av {
        return;
    }
    if !a.versions.iter().any(|v| &v.version_id == bv) {
        p.cannot(format!(
            "secret {}: its before version {} no longer exists, so AWSCURRENT cannot move back",
            a.name,
            short(bv)
        ));
        return;
    }
    p.push(Step::SecretCurrentBack {
        secret: a.name.clone(),
        to_version: bv.clone(),
        from_version: av.clone(),
        credentials: Vec::new(),
    });
}

/// The secret version holding the password part of a before credential.
pub(crate) fn password_ref(c: &CredentialState, config: &Config) -> Option<ValueRef> {
    let src = c
        .sources
        .iter()
        .find(|s| s.role == "password" || s.role == "credentials-json")?;
    let field = if src.role == "credentials-json" {
        config.credentials.iter().find_map(|spec| match spec {
            CredentialSpec::BasicJson {
                json_env,
                password_key,
                ..
            } if json_env == &src.env => Some(password_key.clone()),
            _ => None,
        })
    } else {
        None
    };
    Some(ValueRef {
        secret: src.secret.clone()?,
        version_id: src.version_read.clone()?,
        json_key: src.json_key.clone(),
        field,
    })
}

fn rollback_credential(
    p: &mut Plan,
    cf: &CredentialFact,
    before: &Snapshot,
    after: &Snapshot,
    config: &Config,
) {
    let b = before.credentials.iter().find(|c| c.id == cf.id);

    if cf.kind == "elasticsearch-api-key" {
        if cf.before_value_after != "authenticated" {
            let why = format!(
                "credential {}: API key {} no longer authenticates and an invalidated API key cannot be revalidated",
                cf.id,
                if cf.principal_before.is_empty() { "?" } else { &cf.principal_before }
            );
            if config.remedies.redeploy_fallback && cf.current_value_after == "authenticated" {
                p.cannot(format!(
                    "{why}; redeploying its consumers instead ([remedies] redeploy_fallback)"
                ));
                redeploy_credential(p, cf);
            } else {
                p.cannot(format!(
                    "{why}; the current key authenticates{}: run again with --on-violation redeploy, or set [remedies] redeploy_fallback = true",
                    if cf.current_value_after == "authenticated" { "" } else { " — no, it does not either: issue a new key by hand" }
                ));
            }
            return;
        }
        // The old key still works: the consumers are fine once the secret is back.
        for name in &cf.secrets {
            rollback_secret(p, &SecretName::new(name.as_str()), before, after);
        }
        return;
    }

    // Secrets the credential is made of: back to their before versions.
    for name in &cf.secrets {
        rollback_secret(p, &SecretName::new(name.as_str()), before, after);
    }

    // The user.
    let principal = if cf.principal_before.is_empty() {
        &cf.principal
    } else {
        &cf.principal_before
    };
    let Some(user_before) = before
        .elasticsearch
        .users
        .iter()
        .find(|u| &u.username == principal)
    else {
        return;
    };
    let user_after = after
        .elasticsearch
        .users
        .iter()
        .find(|u| &u.username == principal);
    let value = b.and_then(|b| password_ref(b, config));
    match (user_after, &value) {
        (None, Some(value)) => {
            p.push(Step::EsUserRecreate {
                user: user_before.clone(),
                credential: cf.id.clone(),
                value: value.clone(),
            });
            return;
        }
        (None, None) => {
            p.cannot(format!(
                "user {principal} was deleted and the password its tasks used is not in a secret: recreate it by hand"
            ));
            return;
        }
        (Some(ua), _) => {
            let attrs_changed = ua.roles != user_before.roles
                || ua.enabled != user_before.enabled
                || ua.full_name != user_before.full_name
                || ua.email != user_before.email
                || ua.metadata != user_before.metadata;
            if attrs_changed && !user_before.reserved {
                p.push(Step::EsUserRestore {
                    user: user_before.clone(),
                });
            } else if attrs_changed && ua.enabled != user_before.enabled {
                p.cannot(format!(
                    "user {principal} is reserved: re-enable it by hand"
                ));
            }
        }
    }
    // The value the tasks hold must authenticate again. (A secret moved back
    // already fixes the *current* value; the user's password is only touched
    // when the before-value itself is refused.)
    // Without a probe of the before-value (a resume that lost it), a secret
    // moved back must not be trusted to match ES: set the password too (it
    // is idempotent; it sets the value the secret will hold).
    let moves_back = p.steps.iter().any(|s| {
        matches!(s, Step::SecretCurrentBack { secret, .. } if cf.secrets.iter().any(|n| n.as_str() == secret.as_str()))
    });
    let refused = cf.before_value_after == "rejected"
        || (cf.before_value_after == "unknown"
            && (cf.current_value_after == "rejected" || (moves_back && value.is_some())));
    if refused {
        match value {
            Some(value) => p.push(Step::EsPassword {
                user: principal.clone(),
                credential: cf.id.clone(),
                value,
            }),
            None => p.cannot(format!(
                "credential {}: the password its tasks hold is not in a secret, so it cannot be set back",
                cf.id
            )),
        }
    }
}

fn redeploy_credential(p: &mut Plan, cf: &CredentialFact) {
    if cf.current_value_after != "authenticated" {
        p.cannot(format!(
            "credential {}: its current value does not authenticate, so new tasks would fail too; roll back instead",
            cf.id
        ));
        return;
    }
    let services: BTreeSet<&String> = if cf.stale_consumers.is_empty() {
        cf.live_consumers.iter().collect()
    } else {
        cf.stale_consumers.iter().collect()
    };
    for s in services {
        if let Some((cluster, name)) = s.split_once('/') {
            p.push(Step::Redeploy {
                service: ServiceRef::new(cluster, name),
            });
        }
    }
}
