//! Several AWS accounts and regions as one provider.
//!
//! The 2021 incident spanned two accounts (catalogue and identity, each
//! reached by assuming a role) around one Elasticsearch cluster. With
//! `[[aws.targets]]`, every target gets its own ECS and Secrets Manager
//! clients, and this router sends each call to the right one:
//!
//! * clusters are named `TARGET:CLUSTER`, so services are
//!   `TARGET:CLUSTER/SERVICE`;
//! * secrets are named `TARGET:NAME` (names are unique only within an account
//!   and region); a Secrets Manager ARN is routed by its account;
//! * a task definition's Parameter Store references are rewritten to name
//!   their target (`/aws/reference/secretsmanager/TARGET:NAME`): the plain form
//!   means "in the task's own account", and an SSM parameter ARN names the
//!   account outright.
//!
//! Without targets the router holds one unnamed target and changes nothing,
//! so single-account configs read exactly as before.

use super::ecs::AwsEcs;
use super::secretsmanager::AwsSecrets;
use super::{
    Calls, CurrentValues, EcsReader, EcsWriter, Gate, ProviderError, SecretMeta, SecretValue,
    SecretsReader, SecretsWriter, TaskDefinition, Wanted,
};
use crate::config::Config;
use crate::model::snapshot::{SecretVersionState, ServiceState};
use crate::model::{SecretName, ServiceRef};

const SSM_PREFIX: &str = "/aws/reference/secretsmanager/";

pub struct Target {
    /// Empty for the single unnamed target.
    pub name: String,
    pub account: Option<String>,
    pub region: Option<String>,
    pub ecs: AwsEcs,
    pub secrets: AwsSecrets,
}

pub struct Router {
    targets: Vec<Target>,
    named: bool,
}

fn route_err(what: &str) -> ProviderError {
    ProviderError::new("AWS", "routing", what.to_owned())
}

impl Router {
    /// Clients for every target of the config: the base credentials, or a
    /// role assumed from them.
    pub async fn connect(config: &Config, calls: &Calls) -> Result<Router, ProviderError> {
        let base = super::aws::sdk_config(&config.aws).await?;
        // One bound on AWS requests in flight, whatever account they go to.
        let gate = Gate::new(config.aws.max_concurrency);
        if config.aws.targets.is_empty() {
            return Ok(Router {
                targets: vec![Target {
                    name: String::new(),
                    account: None,
                    region: None,
                    ecs: AwsEcs::new(&base, calls.clone()).with_gate(gate.clone()),
                    secrets: AwsSecrets::new(&base, calls.clone()).with_gate(gate),
                }],
                named: false,
            });
        }
        let mut targets = Vec::new();
        for t in &config.aws.targets {
            let mut b = base.to_builder();
            if let Some(r) = &t.region {
                b = b.region(aws_config::Region::new(r.clone()));
            }
            if let Some(role) = &t.role_arn {
                let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("opsguard")
                    .configure(&base)
                    .region(aws_config::Region::new(
                        t.region
                            .clone()
                            .or_else(|| base.region().map(|r| r.to_string()))
                            .unwrap_or_default(),
                    ))
                    .build()
                    .await;
                b = b.credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                );
            }
            let sdk = b.build();
            targets.push(Target {
                name: t.name.clone(),
                account: t.account.clone(),
                region: t
                    .region
                    .clone()
                    .or_else(|| base.region().map(|r| r.to_string())),
                ecs: AwsEcs::new(&sdk, calls.clone()).with_gate(gate.clone()),
                secrets: AwsSecrets::new(&sdk, calls.clone()).with_gate(gate.clone()),
            });
        }
        Ok(Router {
            targets,
            named: true,
        })
    }

    /// One unnamed target on a ready SDK config (the rehearsal shadow, whose
    /// credentials are its own and never come from the standard chain).
    pub fn single(sdk: &aws_config::SdkConfig, calls: &Calls) -> Router {
        Router {
            targets: vec![Target {
                name: String::new(),
                account: None,
                region: None,
                ecs: AwsEcs::new(sdk, calls.clone()),
                secrets: AwsSecrets::new(sdk, calls.clone()),
            }],
            named: false,
        }
    }

    /// The target a qualified name (`TARGET:REST`) names, and the rest.
    fn by_prefix<'a>(&self, qualified: &'a str) -> Result<(&Target, &'a str), ProviderError> {
        if !self.named {
            return Ok((&self.targets[0], qualified));
        }
        let (name, rest) = qualified.split_once(':').ok_or_else(|| {
            route_err(&format!(
                "{qualified:?} names no target (expected TARGET:NAME)"
            ))
        })?;
        let t = self
            .targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| route_err(&format!("no target named {name:?}")))?;
        Ok((t, rest))
    }

    /// The target owning an ARN's account; the first target when none does.
    fn by_arn(&self, arn: &str) -> &Target {
        let account = arn.split(':').nth(4).unwrap_or_default();
        self.targets
            .iter()
            .find(|t| t.account.as_deref() == Some(account))
            .unwrap_or(&self.targets[0])
    }

    /// A secret id as the caller gave it → (target, id for that target).
    fn secret<'a>(&self, id: &'a str) -> Result<(&Target, &'a str), ProviderError> {
        if id.starts_with("arn:") {
            Ok((self.by_arn(id), id))
        } else {
            self.by_prefix(id)
        }
    }

    fn qualify(&self, t: &Target, name: &str) -> String {
        if self.named {
            format!("{}:{name}", t.name)
        } else {
            name.to_owned()
        }
    }

    fn qualify_meta(&self, t: &Target, mut m: SecretMeta) -> SecretMeta {
        m.name = SecretName::new(self.qualify(t, m.name.as_str()));
        m
    }

    /// The part of `wanted` one target holds, in that target's own names.
    fn wanted_in(&self, t: &Target, wanted: &Wanted) -> Wanted {
        Wanted {
            names: wanted
                .names
                .iter()
                .filter_map(|n| match self.by_prefix(n) {
                    Ok((x, raw)) if std::ptr::eq(x, t) => Some(raw.to_owned()),
                    _ => None,
                })
                .collect(),
            arns: wanted
                .arns
                .iter()
                .filter(|a| std::ptr::eq(self.by_arn(a), t))
                .cloned()
                .collect(),
        }
    }

    fn service_ref(&self, s: &ServiceRef) -> Result<(&Target, ServiceRef), ProviderError> {
        let (t, cluster) = self.by_prefix(&s.cluster)?;
        Ok((t, ServiceRef::new(cluster, &s.service)))
    }

    /// Rewrite a task definition's plain Parameter Store references into the
    /// SSM parameter ARN of the task's own account and region: the plain form
    /// means "here", and the ARN says where "here" is.
    fn qualify_refs(&self, own: &Target, mut td: TaskDefinition) -> TaskDefinition {
        let (true, Some(account), Some(region)) = (self.named, &own.account, &own.region) else {
            return td;
        };
        for c in &mut td.containers {
            for (_, vf) in &mut c.secrets {
                if let Some(name) = vf.strip_prefix(SSM_PREFIX) {
                    *vf = format!("arn:aws:ssm:{region}:{account}:parameter{SSM_PREFIX}{name}");
                }
            }
        }
        td
    }
}

impl EcsReader for Router {
    async fn check_clusters(&self, clusters: &[String]) -> Result<(), ProviderError> {
        for t in &self.targets {
            let mine: Vec<String> = clusters
                .iter()
                .filter_map(|c| match self.by_prefix(c) {
                    Ok((x, raw)) if std::ptr::eq(x, t) => Some(raw.to_owned()),
                    _ => None,
                })
                .collect();
            if !mine.is_empty() {
                t.ecs.check_clusters(&mine).await?;
            }
        }
        Ok(())
    }

    async fn services(&self, cluster: &str) -> Result<Vec<ServiceState>, ProviderError> {
        let (t, raw) = self.by_prefix(cluster)?;
        let mut services = t.ecs.services(raw).await?;
        for s in &mut services {
            s.service.cluster = cluster.to_owned();
        }
        Ok(services)
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinition, ProviderError> {
        let t = self.by_arn(arn);
        let td = t.ecs.task_definition(arn).await?;
        Ok(self.qualify_refs(t, td))
    }
}

impl SecretsReader for Router {
    fn locate(&self, r: &crate::model::SecretRef) -> String {
        if !self.named {
            return r.name_guess();
        }
        let t = r
            .account
            .as_deref()
            .and_then(|a| {
                self.targets
                    .iter()
                    .find(|t| t.account.as_deref() == Some(a))
            })
            .unwrap_or(&self.targets[0]);
        format!("{}:{}", t.name, r.name_guess())
    }

    async fn describe(&self, secret_id: &str) -> Result<Option<SecretMeta>, ProviderError> {
        let (t, id) = self.secret(secret_id)?;
        Ok(t.secrets
            .describe(id)
            .await?
            .map(|m| self.qualify_meta(t, m)))
    }

    async fn list(
        &self,
        wanted: &dyn Fn() -> Option<Wanted>,
    ) -> Result<Vec<SecretMeta>, ProviderError> {
        if !self.named {
            return self.targets[0].secrets.list(wanted).await;
        }
        // Every target at once, each watching for its own part of `wanted`.
        let lists = self.targets.iter().map(|t| async move {
            let mine = || wanted().map(|w| self.wanted_in(t, &w));
            let found = t.secrets.list(&mine).await?;
            Ok::<_, ProviderError>(
                found
                    .into_iter()
                    .map(|m| self.qualify_meta(t, m))
                    .collect::<Vec<_>>(),
            )
        });
        let per_target = futures::future::try_join_all(lists).await?;
        Ok(per_target.into_iter().flatten().collect())
    }

    async fn versions(&self, name: &SecretName) -> Result<Vec<SecretVersionState>, ProviderError> {
        let (t, raw) = self.secret(name.as_str())?;
        t.secrets.versions(&SecretName::new(raw)).await
    }

    async fn current_values(&self, names: &[SecretName]) -> Result<CurrentValues, ProviderError> {
        let mut out = CurrentValues::default();
        for t in &self.targets {
            let mine: Vec<SecretName> = names
                .iter()
                .filter_map(|n| match self.secret(n.as_str()) {
                    Ok((x, raw)) if std::ptr::eq(x, t) => Some(SecretName::new(raw)),
                    _ => None,
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let got = t.secrets.current_values(&mine).await?;
            for mut v in got.values {
                v.name = SecretName::new(self.qualify(t, v.name.as_str()));
                out.values.push(v);
            }
            for n in got.unreadable {
                out.unreadable
                    .push(SecretName::new(self.qualify(t, n.as_str())));
            }
        }
        Ok(out)
    }

    async fn value_at(
        &self,
        name: &SecretName,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<Option<SecretValue>, ProviderError> {
        let (t, raw) = self.secret(name.as_str())?;
        Ok(t.secrets
            .value_at(&SecretName::new(raw), version_id, version_stage)
            .await?
            .map(|mut v| {
                v.name = SecretName::new(self.qualify(t, v.name.as_str()));
                v
            }))
    }
}

impl SecretsWriter for Router {
    async fn move_current(
        &self,
        name: &SecretName,
        to_version: &str,
        from_version: &str,
    ) -> Result<(), ProviderError> {
        let (t, raw) = self.secret(name.as_str())?;
        t.secrets
            .move_current(&SecretName::new(raw), to_version, from_version)
            .await
    }

    async fn restore_secret(&self, name: &SecretName) -> Result<(), ProviderError> {
        let (t, raw) = self.secret(name.as_str())?;
        t.secrets.restore_secret(&SecretName::new(raw)).await
    }
}

impl EcsWriter for Router {
    async fn set_desired_count(
        &self,
        service: &ServiceRef,
        desired: i32,
    ) -> Result<(), ProviderError> {
        let (t, raw) = self.service_ref(service)?;
        t.ecs.set_desired_count(&raw, desired).await
    }

    async fn force_new_deployment(&self, service: &ServiceRef) -> Result<(), ProviderError> {
        let (t, raw) = self.service_ref(service)?;
        t.ecs.force_new_deployment(&raw).await
    }

    async fn service(&self, service: &ServiceRef) -> Result<ServiceState, ProviderError> {
        let (t, raw) = self.service_ref(service)?;
        let mut s = t.ecs.service(&raw).await?;
        s.service = service.clone();
        Ok(s)
    }
}
