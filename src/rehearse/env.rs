//! Pointing the command at the shadow (pure: tested without a network).
//!
//! A script finds its services through its environment: the standard AWS
//! variables, and whatever variable holds the Elasticsearch URL. The command
//! gets the shadow's AWS endpoint through `AWS_ENDPOINT_URL` (and the
//! per-service variables), shadow-only AWS credentials, and **no** real
//! credential at all: every inherited `AWS_*` variable is removed and the
//! shared config and credentials files point at empty files, so an SDK that
//! ignores the endpoint fails to authenticate instead of writing to real AWS.
//! Every variable whose value is the live Elasticsearch URL, and those named
//! in `[rehearse] es_url_env`, get the shadow's URL.
//!
//! Only names are reported, never values.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use url::Url;

/// Where the shadow is, for the command.
pub struct Targets<'a> {
    pub live_es_url: &'a Url,
    pub shadow_es_url: &'a Url,
    pub aws_endpoint: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub region: &'a str,
    /// `[rehearse] es_url_env`.
    pub es_url_env: &'a [String],
    /// An empty file for `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`.
    pub empty_file: &'a Path,
}

/// The environment changes, and the names they touch.
#[derive(Debug, Default)]
pub struct EnvPlan {
    pub changes: Vec<(OsString, Option<OsString>)>,
    /// Set or changed (sorted, unique).
    pub rewritten: Vec<String>,
    /// Removed (sorted, unique).
    pub removed: Vec<String>,
}

/// The AWS variables the command gets, by name.
const AWS_SET: [&str; 9] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CONFIG_FILE",
];

pub fn plan(current: &[(OsString, OsString)], t: &Targets<'_>) -> EnvPlan {
    let mut out = EnvPlan::default();
    let set = |name: &str, value: &OsStr, out: &mut EnvPlan| {
        out.changes
            .push((OsString::from(name), Some(value.to_owned())));
        out.rewritten.push(name.to_owned());
    };
    // 1. AWS: everything inherited goes, the shadow's comes in.
    let shadow_aws: Vec<(&str, OsString)> = vec![
        (AWS_SET[0], t.aws_endpoint.into()),
        (AWS_SET[1], t.aws_endpoint.into()),
        (AWS_SET[2], t.aws_endpoint.into()),
        (AWS_SET[3], t.access_key_id.into()),
        (AWS_SET[4], t.secret_access_key.into()),
        (AWS_SET[5], t.region.into()),
        (AWS_SET[6], t.region.into()),
        (AWS_SET[7], "true".into()),
        (AWS_SET[8], t.empty_file.as_os_str().to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            t.empty_file.as_os_str().to_owned(),
        ),
    ];
    for (name, _) in current {
        let Some(n) = name.to_str() else { continue };
        if n.starts_with("AWS_") && !shadow_aws.iter().any(|(s, _)| *s == n) {
            if n.starts_with("AWS_ENDPOINT_URL_") {
                // Any other service's endpoint goes to the shadow too.
                set(n, OsStr::new(t.aws_endpoint), &mut out);
            } else {
                out.changes.push((name.clone(), None));
                out.removed.push(n.to_owned());
            }
        }
    }
    for (name, value) in &shadow_aws {
        set(name, value.as_os_str(), &mut out);
    }
    // 2. Elasticsearch: by value, and by the configured names.
    let shadow = t.shadow_es_url.as_str().trim_end_matches('/').to_owned();
    for (name, value) in current {
        let (Some(n), Some(v)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if !n.starts_with("AWS_")
            && !t.es_url_env.iter().any(|e| e == n)
            && same_url(v, t.live_es_url)
        {
            set(n, OsStr::new(&shadow), &mut out);
        }
    }
    for n in t.es_url_env {
        set(n, OsStr::new(&shadow), &mut out);
    }
    out.rewritten.sort();
    out.rewritten.dedup();
    out.removed.sort();
    out.removed.dedup();
    out
}

/// Whether `text` is the URL `live` (scheme, host, port, path up to a
/// trailing slash; `host:port` without a scheme counts too).
pub fn same_url(text: &str, live: &Url) -> bool {
    let text = text.trim();
    let parsed = Url::parse(text)
        .ok()
        .filter(|u| u.host().is_some())
        .or_else(|| Url::parse(&format!("{}://{text}", live.scheme())).ok());
    let Some(u) = parsed else { return false };
    u.scheme() == live.scheme()
        && u.host_str().map(str::to_ascii_lowercase) == live.host_str().map(str::to_ascii_lowercase)
        && u.port_or_known_default() == live.port_or_known_default()
        && u.path().trim_end_matches('/') == live.path().trim_end_matches('/')
        && u.username().is_empty()
}

/// A shadow secret's value pointed at the shadow Elasticsearch: the value
/// is the live URL, or a JSON object holding it (as a URL string, or as
/// `host`/`port`/`scheme`). `None` when it names no live Elasticsearch.
pub fn rewrite_secret_value(value: &str, live: &Url, shadow: &Url) -> Option<String> {
    let shadow_s = shadow.as_str().trim_end_matches('/').to_owned();
    if same_url(value, live) {
        return Some(shadow_s);
    }
    let mut json: serde_json::Value = serde_json::from_str(value).ok()?;
    let obj = json.as_object_mut()?;
    let mut changed = false;
    for v in obj.values_mut() {
        if let Some(s) = v.as_str() {
            if s.contains("://") && same_url(s, live) {
                *v = serde_json::Value::String(shadow_s.clone());
                changed = true;
            }
        }
    }
    let host_key = ["host", "hostname"]
        .into_iter()
        .find(|k| obj.get(*k).and_then(|v| v.as_str()).is_some());
    if let Some(hk) = host_key {
        let host = obj[hk].as_str().unwrap_or_default().to_ascii_lowercase();
        let live_port = live.port_or_known_default();
        let port = obj.get("port").and_then(|p| match p {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        });
        let host_matches = live.host_str().map(str::to_ascii_lowercase) == Some(host);
        if host_matches && (port.is_none() || port == live_port) {
            obj.insert(hk.to_owned(), "127.0.0.1".into());
            let sp = shadow.port_or_known_default().unwrap_or(80);
            match obj.get("port") {
                Some(serde_json::Value::String(_)) => {
                    obj.insert("port".into(), sp.to_string().into());
                }
                _ => {
                    obj.insert("port".into(), sp.into());
                }
            }
            for k in ["scheme", "protocol"] {
                if obj.contains_key(k) {
                    obj.insert(k.to_owned(), "http".into());
                }
            }
            if let Some(serde_json::Value::Bool(_)) = obj.get("use_ssl") {
                obj.insert("use_ssl".into(), false.into());
            }
            changed = true;
        }
    }
    changed.then(|| json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn value(p: &EnvPlan, name: &str) -> Option<Option<String>> {
        p.changes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref().map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn real_aws_credentials_are_removed_and_the_shadow_set() {
        let live: Url = "https://catalogue.es.example:9243".parse().unwrap();
        let shadow: Url = "http://127.0.0.1:40001".parse().unwrap();
        let current = os(&[
            ("AWS_PROFILE", "prod"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_ACCESS_KEY_ID", "AKIAREAL"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.2/x",
            ),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ENDPOINT_URL_STS", "https://sts.amazonaws.com"),
            ("SEARCH_HOST", "https://catalogue.es.example:9243/"),
            ("OTHER", "https://elsewhere:9243"),
            ("HOME", "/home/x"),
        ]);
        let targets = Targets {
            live_es_url: &live,
            shadow_es_url: &shadow,
            aws_endpoint: "http://127.0.0.1:40002",
            access_key_id: "000000000000",
            secret_access_key: "shadow",
            region: "eu-west-1",
            es_url_env: &["ES_URL".into()],
            empty_file: Path::new("/tmp/empty"),
        };
        let p = plan(&current, &targets);
        for gone in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ] {
            assert_eq!(value(&p, gone), Some(None), "{gone}");
            assert!(p.removed.contains(&gone.to_owned()));
        }
        assert_eq!(
            value(&p, "AWS_ACCESS_KEY_ID"),
            Some(Some("000000000000".into()))
        );
        assert_eq!(
            value(&p, "AWS_ENDPOINT_URL_STS"),
            Some(Some("http://127.0.0.1:40002".into()))
        );
        assert_eq!(
            value(&p, "AWS_SHARED_CREDENTIALS_FILE"),
            Some(Some("/tmp/empty".into()))
        );
        assert_eq!(
            value(&p, "SEARCH_HOST"),
            Some(Some("http://127.0.0.1:40001".into()))
        );
        assert_eq!(
            value(&p, "ES_URL"),
            Some(Some("http://127.0.0.1:40001".into()))
        );
        assert_eq!(value(&p, "OTHER"), None);
        assert_eq!(value(&p, "HOME"), None);
        assert!(p.rewritten.contains(&"SEARCH_HOST".to_owned()));
        assert!(!p.rewritten.contains(&"OTHER".to_owned()));
    }

    #[test]
    fn urls_match_by_scheme_host_port_and_path() {
        let live: Url = "https://es.example:9243".parse().unwrap();
        assert!(same_url("https://ES.example:9243/", &live));
        assert!(same_url("es.example:9243", &live));
        assert!(!same_url("http://es.example:9243", &live));
        assert!(!same_url("https://es.example:9200", &live));
        assert!(!same_url("https://es.example:9243/other", &live));
        assert!(!same_url("not a url", &live));
        let default_port: Url = "https://es.example".parse().unwrap();
        assert!(same_url("https://es.example:443", &default_port));
    }

    #[test]
    fn secret_values_naming_the_live_es_are_rewritten() {
        let live: Url = "https://es.example:9243".parse().unwrap();
        let shadow: Url = "http://127.0.0.1:40001".parse().unwrap();
        assert_eq!(
            rewrite_secret_value("https://es.example:9243", &live, &shadow).as_deref(),
            Some("http://127.0.0.1:40001")
        );
        let j = rewrite_secret_value(
            r#"{"host":"es.example","port":9243,"scheme":"https","user":"x"}"#,
            &live,
            &shadow,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["host"], "127.0.0.1");
        assert_eq!(v["port"], 40001);
        assert_eq!(v["scheme"], "http");
        assert_eq!(v["user"], "x");
        let j =
            rewrite_secret_value(r#"{"url":"https://es.example:9243/"}"#, &live, &shadow).unwrap();
        assert!(j.contains("127.0.0.1:40001"), "{j}");
        assert_eq!(
            rewrite_secret_value("s3cret-password", &live, &shadow),
            None
        );
        assert_eq!(
            rewrite_secret_value(r#"{"host":"other","port":9243}"#, &live, &shadow),
            None
        );
    }
}
