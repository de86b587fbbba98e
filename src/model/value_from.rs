//! Parsing the `valueFrom` of an ECS container secret.
//!
//! ECS accepts several spellings for the same Secrets Manager secret, and a
//! credential graph that treats two of them as different secrets would miss a
//! consumer — exactly the blind spot of the 2021 incident, where search services
//! named their secrets through Parameter Store and items services by ARN:
//!
//! * `arn:aws:secretsmanager:REGION:ACCT:secret:NAME-AbCdEf` — the full ARN;
//! * the same followed by `:json-key:version-stage:version-id`, each part
//!   optional (`…:password::` picks a JSON key, `…:::UUID` pins a version);
//! * `/aws/reference/secretsmanager/NAME` — the Parameter Store pass-through;
//! * `arn:aws:ssm:REGION:ACCT:parameter/aws/reference/secretsmanager/NAME` —
//!   the same as an SSM parameter ARN.
//!
//! Anything else names a plain SSM parameter, which is not a Secrets Manager
//! secret; it is kept as such so the graph can say so instead of guessing.
//!
//! Parsing is purely syntactic. Which secret a reference *is* can only be
//! settled by Secrets Manager itself (a name may end in something that looks
//! like the random suffix), so [`SecretRef::name_guess`] is a hint for the fast
//! path and the provider confirms it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

const SSM_SECRETS_PREFIX: &str = "/aws/reference/secretsmanager/";

/// A parsed `valueFrom`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ValueFrom {
    /// A Secrets Manager secret, however it was spelled.
    Secret(SecretRef),
    /// A plain Parameter Store parameter: not something opsguard can read.
    SsmParameter { name: String },
}

/// How a Secrets Manager secret was spelled in the task definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefForm {
    SecretsManagerArn,
    SsmReference,
    SsmReferenceArn,
}

/// A reference to one Secrets Manager secret, with the optional JSON key and
/// pinned version that ECS would apply when it starts a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub form: RefForm,
    /// What Secrets Manager accepts as `SecretId` for this reference: the ARN
    /// (full or partial) for the ARN form, the name for the SSM forms.
    pub secret_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Whether ECS would read a fixed version rather than follow AWSCURRENT.
    pub fn is_pinned(&self) -> bool {
        self.version_id.is_some()
            || self
                .version_stage
                .as_deref()
                .is_some_and(|s| s != "AWSCURRENT")
    }

    /// The secret's name, as best the text alone can tell. For an ARN this
    /// drops what looks like Secrets Manager's `-XXXXXX` suffix; the provider
    /// confirms the guess against the ARN Secrets Manager returns.
    pub fn name_guess(&self) -> String {
        match self.form {
            RefForm::SsmReference | RefForm::SsmReferenceArn => self.secret_id.clone(),
            RefForm::SecretsManagerArn => {
                let resource = arn_resource_name(&self.secret_id);
                strip_random_suffix(resource).unwrap_or(resource).to_owned()
            }
        }
    }
}

/// The text after `secret:` in a Secrets Manager ARN.
fn arn_resource_name(arn: &str) -> &str {
    arn.split_once(":secret:").map(|(_, r)| r).unwrap_or(arn)
}

/// `NAME-AbCdEf` → `NAME`, if the text ends in a dash and six alphanumerics.
pub fn strip_random_suffix(s: &str) -> Option<&str> {
    let (name, suffix) = s.rsplit_once('-')?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && !name.is_empty())
        .then_some(name)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueFromError {
    #[error("valueFrom is empty")]
    Empty,
    #[error("valueFrom {0:?} is not a well-formed ARN (expected arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)")]
    MalformedArn(String),
    #[error("valueFrom {0:?} names a {1} resource; ECS secrets come from Secrets Manager or SSM Parameter Store")]
    UnsupportedService(String, String),
    #[error("valueFrom {0:?} has too many ':'-separated parts after the secret id (at most json-key:version-stage:version-id)")]
    TooManyParts(String),
    #[error("valueFrom {0:?} names no secret")]
    MissingSecretId(String),
    #[error("valueFrom {0:?} has an account id that is not 12 digits")]
    BadAccount(String),
}

impl std::str::FromStr for ValueFrom {
    type Err = ValueFromError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parse one `valueFrom`.
pub fn parse(s: &str) -> Result<ValueFrom, ValueFromError> {
    if s.is_empty() {
        return Err(ValueFromError::Empty);
    }
    if s.trim() != s {
        return Err(ValueFromError::MalformedArn(s.to_owned()));
    }
    if let Some(rest) = s.strip_prefix("arn:") {
        return parse_arn(s, rest);
    }
    if let Some(name) = s.strip_prefix(SSM_SECRETS_PREFIX) {
        let (name, version_id) = split_version(name);
        if name.is_empty() {
            return Err(ValueFromError::MissingSecretId(s.to_owned()));
        }
        return Ok(ValueFrom::Secret(SecretRef {
            form: RefForm::SsmReference,
            secret_id: name.to_owned(),
            region: None,
            account: None,
            json_key: None,
            version_stage: None,
            version_id,
        }));
    }
    Ok(ValueFrom::SsmParameter { name: s.to_owned() })
}

/// Parameter Store selects a version with `NAME:SELECTOR`; secret names cannot
/// contain `:`, so anything after one is the pinned version.
fn split_version(name: &str) -> (&str, Option<String>) {
    match name.split_once(':') {
        Some((n, v)) if !v.is_empty() => (n, Some(v.to_owned())),
        Some((n, _)) => (n, None),
        None => (name, None),
    }
}

fn parse_arn(whole: &str, rest: &str) -> Result<ValueFrom, ValueFromError> {
    // partition:service:region:account:resource…
    let mut parts = rest.splitn(5, ':');
    let (partition, service, region, account, resource) = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(p), Some(s), Some(r), Some(a), Some(res))
            if !p.is_empty() && !s.is_empty() && !r.is_empty() && !res.is_empty() =>
        {
            (p, s, r, a, res)
        }
        _ => return Err(ValueFromError::MalformedArn(whole.to_owned())),
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueFromError::BadAccount(whole.to_owned()));
    }
    match service {
        "secretsmanager" => {
            let Some(after) = resource.strip_prefix("secret:") else {
                return Err(ValueFromError::MalformedArn(whole.to_owned()));
            };
            let fields: Vec<&str> = after.split(':').collect();
            if fields.len() > 4 {
                return Err(ValueFromError::TooManyParts(whole.to_owned()));
            }
            let id = fields[0];
            if id.is_empty() {
                return Err(ValueFromError::MissingSecretId(whole.to_owned()));
            }
            let field = |i: usize| {
                fields
                    .get(i)
                    .filter(|f| !f.is_empty())
                    .map(|f| (*f).to_owned())
            };
            Ok(ValueFrom::Secret(SecretRef {
                form: RefForm::SecretsManagerArn,
                secret_id: format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{id}"),
                region: Some(region.to_owned()),
                account: Some(account.to_owned()),
                json_key: field(1),
                version_stage: field(2),
                version_id: field(3),
            }))
        }
        "ssm" => {
            let Some(param) = resource.strip_prefix("parameter") else {
                return Err(ValueFromError::MalformedArn(whole.to_owned()));
            };
            // `parameter/aws/reference/…` for path names, `parameter/name` otherwise.
            let name = if param.starts_with("/aws/") {
                param.to_owned()
            } else {
                param.strip_prefix('/').unwrap_or(param).to_owned()
            };
            if let Some(secret) = name.strip_prefix(SSM_SECRETS_PREFIX) {
                let (secret, version_id) = split_version(secret);
                if secret.is_empty() {
                    return Err(ValueFromError::MissingSecretId(whole.to_owned()));
                }
                return Ok(ValueFrom::Secret(SecretRef {
                    form: RefForm::SsmReferenceArn,
                    secret_id: secret.to_owned(),
                    region: Some(region.to_owned()),
                    account: Some(account.to_owned()),
                    json_key: None,
                    version_stage: None,
                    version_id,
                }));
            }
            if name.is_empty() || name == "/" {
                return Err(ValueFromError::MissingSecretId(whole.to_owned()));
            }
            Ok(ValueFrom::SsmParameter { name })
        }
        other => Err(ValueFromError::UnsupportedService(
            whole.to_owned(),
            other.to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:secretsmanager:eu-west-1:760097843905:secret:elasticsearch/catalogue_api/search/password-AbC12f";
    const NAME: &str = "elasticsearch/catalogue_api/search/password";

    fn secret(s: &str) -> SecretRef {
        match parse(s).unwrap() {
            ValueFrom::Secret(r) => r,
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    #[test]
    fn every_form_names_the_same_secret() {
        let forms = [
            ARN.to_owned(),
            format!("{ARN}:password::"),
            format!("{ARN}::AWSCURRENT:"),
            format!("/aws/reference/secretsmanager/{NAME}"),
            format!(
                "arn:aws:ssm:eu-west-1:760097843905:parameter/aws/reference/secretsmanager/{NAME}"
            ),
        ];
        for f in &forms {
            assert_eq!(secret(f).name_guess(), NAME, "form {f}");
        }
    }

    #[test]
    fn full_arn_keeps_region_and_account() {
        let r = secret(ARN);
        assert_eq!(r.form, RefForm::SecretsManagerArn);
        assert_eq!(r.secret_id, ARN);
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.account.as_deref(), Some("760097843905"));
        assert_eq!(r.json_key, None);
        assert!(!r.is_pinned());
    }

    #[test]
    fn json_key_stage_and_version_suffixes() {
        let r = secret(&format!("{ARN}:password:AWSPREVIOUS:"));
        assert_eq!(r.secret_id, ARN, "suffixes are not part of the SecretId");
        assert_eq!(r.json_key.as_deref(), Some("password"));
        assert_eq!(r.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert!(r.is_pinned());

        let r = secret(&format!("{ARN}:::0d3c8b9e-1111-2222-3333-444455556666"));
        assert_eq!(r.json_key, None);
        assert_eq!(r.version_stage, None);
        assert_eq!(
            r.version_id.as_deref(),
            Some("0d3c8b9e-1111-2222-3333-444455556666")
        );
        assert!(r.is_pinned());

        let r = secret(&format!("{ARN}:username"));
        assert_eq!(r.json_key.as_deref(), Some("username"));
        assert!(!r.is_pinned());

        // Pinning AWSCURRENT explicitly still follows AWSCURRENT.
        assert!(!secret(&format!("{ARN}::AWSCURRENT:")).is_pinned());
    }

    #[test]
    fn ssm_reference_forms() {
        let r = secret(&format!("/aws/reference/secretsmanager/{NAME}"));
        assert_eq!(r.form, RefForm::SsmReference);
        assert_eq!(r.secret_id, NAME);
        assert_eq!(r.region, None);

        let r = secret(&format!(
            "arn:aws:ssm:eu-west-1:760097843905:parameter/aws/reference/secretsmanager/{NAME}"
        ));
        assert_eq!(r.form, RefForm::SsmReferenceArn);
        assert_eq!(r.secret_id, NAME);
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));

        let r = secret(&format!("/aws/reference/secretsmanager/{NAME}:v-123"));
        assert_eq!(r.secret_id, NAME);
        assert_eq!(r.version_id.as_deref(), Some("v-123"));
        assert!(r.is_pinned());
    }

    #[test]
    fn other_partitions_are_accepted() {
        let r = secret("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-AbCdEf");
        assert_eq!(r.name_guess(), "db");
        let r = secret("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db-AbCdEf");
        assert_eq!(r.region.as_deref(), Some("us-gov-west-1"));
    }

    #[test]
    fn a_name_without_suffix_is_kept_whole() {
        // A partial ARN (no random suffix) is accepted by Secrets Manager too.
        let r = secret("arn:aws:secretsmanager:eu-west-1:123456789012:secret:my-db");
        assert_eq!(r.name_guess(), "my-db");
        assert_eq!(strip_random_suffix("my-db-AbCdEf"), Some("my-db"));
        assert_eq!(
            strip_random_suffix("my-database"),
            None,
            "8 chars is no suffix"
        );
        assert_eq!(strip_random_suffix("-AbCdEf"), None);
        assert_eq!(strip_random_suffix("db-Ab_dEf"), None);
    }

    #[test]
    fn plain_parameters_are_not_secrets() {
        assert_eq!(
            parse("/catalogue/es_password").unwrap(),
            ValueFrom::SsmParameter {
                name: "/catalogue/es_password".into()
            }
        );
        assert_eq!(
            parse("es_password").unwrap(),
            ValueFrom::SsmParameter {
                name: "es_password".into()
            }
        );
        assert_eq!(
            parse("arn:aws:ssm:eu-west-1:123456789012:parameter/catalogue/es_password").unwrap(),
            ValueFrom::SsmParameter {
                name: "catalogue/es_password".into()
            }
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        let bad = [
            ("", ValueFromError::Empty),
            (
                "arn:aws:secretsmanager:eu-west-1",
                ValueFromError::MalformedArn("arn:aws:secretsmanager:eu-west-1".into()),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:12345:secret:x",
                ValueFromError::BadAccount(
                    "arn:aws:secretsmanager:eu-west-1:12345:secret:x".into(),
                ),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
                ValueFromError::MissingSecretId(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:".into(),
                ),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x:k:s:v:extra",
                ValueFromError::TooManyParts(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x:k:s:v:extra".into(),
                ),
            ),
            (
                "arn:aws:secretsmanager:eu-west-1:123456789012:rotation:x",
                ValueFromError::MalformedArn(
                    "arn:aws:secretsmanager:eu-west-1:123456789012:rotation:x".into(),
                ),
            ),
            (
                "arn:aws:s3:::bucket/key",
                ValueFromError::MalformedArn("arn:aws:s3:::bucket/key".into()),
            ),
            (
                "arn:aws:kms:eu-west-1:123456789012:key/abc",
                ValueFromError::UnsupportedService(
                    "arn:aws:kms:eu-west-1:123456789012:key/abc".into(),
                    "kms".into(),
                ),
            ),
            (
                "/aws/reference/secretsmanager/",
                ValueFromError::MissingSecretId("/aws/reference/secretsmanager/".into()),
            ),
            (
                " /aws/reference/secretsmanager/x",
                ValueFromError::MalformedArn(" /aws/reference/secretsmanager/x".into()),
            ),
        ];
        for (input, want) in bad {
            assert_eq!(parse(input), Err(want), "input {input:?}");
        }
    }
}
