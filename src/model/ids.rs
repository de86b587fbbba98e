//! Newtypes for the identifiers that flow between stages. A bare `String` says
//! nothing about which of five kinds of name it holds; these do, and they make a
//! mix-up (a secret name where an ARN belongs) a compile error.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// The full ARN of a Secrets Manager secret, as Secrets Manager reports it
    /// (with the six-character suffix).
    SecretArn
);
string_id!(
    /// A Secrets Manager secret name (unique per account and region).
    SecretName
);
string_id!(
    /// An Elasticsearch user name.
    Username
);
string_id!(
    /// An Elasticsearch API key id.
    ApiKeyId
);

/// An ECS service, named the way people say it: `cluster/service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceRef {
    pub cluster: String,
    pub service: String,
}

impl ServiceRef {
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            service: service.into(),
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

impl Serialize for ServiceRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServiceRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.split_once('/') {
            Some((c, svc)) if !c.is_empty() && !svc.is_empty() => Ok(ServiceRef::new(c, svc)),
            _ => Err(serde::de::Error::custom(format!(
                "service reference {s:?} is not of the form CLUSTER/SERVICE"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ref_round_trips_through_json() {
        let r = ServiceRef::new("catalogue-api-2021-04-26", "prod-search-api");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"catalogue-api-2021-04-26/prod-search-api\"");
        assert_eq!(serde_json::from_str::<ServiceRef>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ServiceRef>("\"no-slash\"").is_err());
    }
}
