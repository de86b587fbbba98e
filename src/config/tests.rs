use super::*;
use secrecy::ExposeSecret;

const DOCUMENTED_EXAMPLE: &str = r#"
[elasticsearch]
url = "https://catalogue.es.example:9243"
username = "elastic"                    # admin identity for snapshots and rollback
password_env = "OPSGUARD_ES_PASSWORD"   # or password_secret = "NAME"; or api_key_env = "..."
# ca_cert = "ca.pem"

[aws]
region = "eu-west-1"
# endpoint_url = "http://127.0.0.1:4566"

[ecs]
clusters = ["catalogue-api-2021-04-26"]

[[credentials]]            # env vars in task definitions that form one ES credential
kind = "elasticsearch-basic"
username_env = "es_username"
password_env = "es_password"

[[credentials]]
kind = "elasticsearch-api-key"
api_key_env = "es_apikey"

[rules]
paths = []                 # extra rule directories, on top of the built-in pack
on_violation = "rollback"

[[waivers]]
rule = "shared-credential-across-environments"
target = "search"
reason = "prod and stage share users until ticket 123"
expires = "2027-01-31"     # an expired waiver is an error, not a silent pass
"#;

fn today() -> time::Date {
    time::macros::date!(2026 - 11 - 24)
}

fn env_with_password(name: &str) -> Option<String> {
    (name == "OPSGUARD_ES_PASSWORD").then(|| "hunter2-admin".to_owned())
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(
        Path::new("opsguard.toml"),
        text,
        &env_with_password,
        today(),
    )
}

/// The one-line rendering of an error: `file:line:col: message`.
fn err_line(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn the_documented_example_parses() {
    let c = parse(DOCUMENTED_EXAMPLE).unwrap();
    assert_eq!(
        c.elasticsearch.url.as_str(),
        "https://catalogue.es.example:9243/"
    );
    match &c.elasticsearch.auth {
        EsAuth::Basic { username, password } => {
            assert_eq!(username, "elastic");
            assert_eq!(password.expose_secret(), "hunter2-admin");
        }
        other => panic!("unexpected auth {other:?}"),
    }
    assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.ecs.clusters, vec!["catalogue-api-2021-04-26"]);
    assert_eq!(
        c.credentials,
        vec![
            CredentialSpec::Basic {
                username_env: "es_username".into(),
                password_env: "es_password".into()
            },
            CredentialSpec::ApiKey {
                api_key_env: "es_apikey".into()
            }
        ]
    );
    assert_eq!(c.rules.on_violation, Mode::Rollback);
    assert_eq!(c.waivers.len(), 1);
    assert_eq!(c.waivers[0].expires, time::macros::date!(2027 - 01 - 31));
    assert_eq!(c.waivers[0].location, "opsguard.toml:28:1");
}

#[test]
fn the_admin_password_never_shows_in_debug_output() {
    let c = parse(DOCUMENTED_EXAMPLE).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2-admin"), "{dbg}");
}

#[test]
fn malformed_toml_points_at_line_and_column() {
    let text = "[elasticsearch]\nurl = \"http://x\"\nusername = elastic\n";
    let e = err_line(text);
    assert!(e.starts_with("opsguard.toml:3:12:"), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let text = DOCUMENTED_EXAMPLE.replace("region = \"eu-west-1\"", "regoin = \"eu-west-1\"");
    let e = err_line(&text);
    assert!(e.starts_with("opsguard.toml:9:1:"), "{e}");
    assert!(e.contains("unknown field `regoin`"), "{e}");

    let text = format!("{DOCUMENTED_EXAMPLE}\n[extra]\nx = 1\n");
    assert!(err_line(&text).contains("unknown field `extra`"));
}

#[test]
fn missing_required_keys_are_errors() {
    let text = DOCUMENTED_EXAMPLE.replace("url = \"https://catalogue.es.example:9243\"\n", "");
    let e = err_line(&text);
    assert!(e.contains("missing required key `url`"), "{e}");
    assert!(e.starts_with("opsguard.toml:2:1:"), "{e}");

    let text = DOCUMENTED_EXAMPLE.replace("clusters = [\"catalogue-api-2021-04-26\"]", "");
    assert!(err_line(&text).contains("missing required key `clusters`"));

    let text = DOCUMENTED_EXAMPLE
        .replace("[ecs]\n", "")
        .replace("clusters = [\"catalogue-api-2021-04-26\"]", "");
    assert!(err_line(&text).contains("missing required table [ecs]"));

    let text = DOCUMENTED_EXAMPLE.replace("kind = \"elasticsearch-api-key\"\n", "");
    assert!(
        err_line(&text).contains("missing field `kind`"),
        "{}",
        err_line(&text)
    );
}

#[test]
fn a_credentials_entry_naming_no_env_vars_is_an_error() {
    let text = DOCUMENTED_EXAMPLE.replace("api_key_env = \"es_apikey\"\n", "");
    let e = err_line(&text);
    assert!(e.contains("[[credentials]] entry names no env vars"), "{e}");
    assert!(e.starts_with("opsguard.toml:20:1:"), "{e}");
}

#[test]
fn half_a_basic_credential_is_an_error() {
    let text = DOCUMENTED_EXAMPLE.replace("password_env = \"es_password\"\n", "");
    assert!(err_line(&text).contains("needs both username_env and password_env"));
}

#[test]
fn json_credentials_default_their_keys() {
    let text = DOCUMENTED_EXAMPLE.replace(
        "username_env = \"es_username\"\npassword_env = \"es_password\"",
        "json_env = \"es_credentials\"",
    );
    let c = parse(&text).unwrap();
    assert_eq!(
        c.credentials[0],
        CredentialSpec::BasicJson {
            json_env: "es_credentials".into(),
            username_key: "username".into(),
            password_key: "password".into()
        }
    );
}

#[test]
fn an_env_var_in_two_entries_is_an_error() {
    let text = DOCUMENTED_EXAMPLE.replace(
        "api_key_env = \"es_apikey\"",
        "api_key_env = \"es_password\"",
    );
    assert!(err_line(&text).contains("env var `es_password` appears in two"));
}

#[test]
fn an_unset_password_env_var_is_an_error_pointing_at_it() {
    let e = Config::parse(
        Path::new("opsguard.toml"),
        DOCUMENTED_EXAMPLE,
        &|_| None,
        today(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "opsguard.toml:5:16: environment variable OPSGUARD_ES_PASSWORD is not set"
    );
}

#[test]
fn exactly_one_admin_credential_source() {
    let text = DOCUMENTED_EXAMPLE.replace(
        "password_env = \"OPSGUARD_ES_PASSWORD\"",
        "password_env = \"OPSGUARD_ES_PASSWORD\"\npassword_secret = \"x\"",
    );
    assert!(err_line(&text).contains("more than one of"));
    let text = DOCUMENTED_EXAMPLE.replace("password_env = \"OPSGUARD_ES_PASSWORD\"", "");
    assert!(err_line(&text).contains("names no credential for opsguard itself"));
}

#[test]
fn password_secret_and_api_key_are_accepted() {
    let text = DOCUMENTED_EXAMPLE.replace(
        "password_env = \"OPSGUARD_ES_PASSWORD\"",
        "password_secret = \"elasticsearch/admin\"",
    );
    match parse(&text).unwrap().elasticsearch.auth {
        EsAuth::BasicFromSecret { username, secret } => {
            assert_eq!(
                (username.as_str(), secret.as_str()),
                ("elastic", "elasticsearch/admin")
            )
        }
        other => panic!("{other:?}"),
    }
    let text = DOCUMENTED_EXAMPLE
        .replace("username = \"elastic\"", "")
        .replace(
            "password_env = \"OPSGUARD_ES_PASSWORD\"",
            "api_key_env = \"OPSGUARD_ES_PASSWORD\"",
        );
    assert!(matches!(
        parse(&text).unwrap().elasticsearch.auth,
        EsAuth::ApiKey { .. }
    ));
}

#[test]
fn an_expired_waiver_is_an_error_not_a_pass() {
    let text = DOCUMENTED_EXAMPLE.replace("2027-01-31", "2026-11-23");
    let e = err_line(&text);
    assert!(e.contains("expired on 2026-11-23"), "{e}");
    assert!(e.starts_with("opsguard.toml:32:11:"), "{e}");
    // Expiring today is still valid today.
    assert!(parse(&DOCUMENTED_EXAMPLE.replace("2027-01-31", "2026-11-24")).is_ok());
    assert!(
        err_line(&DOCUMENTED_EXAMPLE.replace("2027-01-31", "next year")).contains("is not a date")
    );
}

#[test]
fn unknown_mode_and_kind_are_errors() {
    let text = DOCUMENTED_EXAMPLE.replace("on_violation = \"rollback\"", "on_violation = \"yolo\"");
    assert!(err_line(&text).contains("unknown on_violation \"yolo\""));
    let text = DOCUMENTED_EXAMPLE.replace("kind = \"elasticsearch-basic\"", "kind = \"basic\"");
    assert!(err_line(&text).contains("unknown credential kind \"basic\""));
}

#[test]
fn bad_urls_are_errors() {
    let text =
        DOCUMENTED_EXAMPLE.replace("https://catalogue.es.example:9243", "catalogue.es.example");
    assert!(err_line(&text).contains("is not an http(s) URL"));
    let text = DOCUMENTED_EXAMPLE.replace("https://catalogue", "https://u:p@catalogue");
    assert!(err_line(&text).contains("must not carry credentials"));
}

#[test]
fn an_unreadable_file_is_an_error() {
    let e = Config::load(Path::new("/nonexistent/opsguard.toml"), &|_| None).unwrap_err();
    assert!(matches!(e.kind(), ConfigErrorKind::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/opsguard.toml"));
}

#[test]
fn offline_loading_needs_no_password_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsguard.toml");
    std::fs::write(&path, DOCUMENTED_EXAMPLE).unwrap();
    let c = Config::load_offline(&path).unwrap();
    assert!(matches!(c.elasticsearch.auth, EsAuth::Offline));
    assert_eq!(c.waivers.len(), 1);
    // Form is still checked.
    std::fs::write(
        &path,
        DOCUMENTED_EXAMPLE.replace("kind = \"elasticsearch-basic\"", "kind = \"x\""),
    )
    .unwrap();
    assert!(Config::load_offline(&path).is_err());
}

#[test]
fn environments_come_from_service_name_prefixes() {
    let c = parse(DOCUMENTED_EXAMPLE).unwrap();
    assert_eq!(
        environment_of("prod-search-api", &c.environment_prefixes),
        "prod"
    );
    assert_eq!(
        environment_of("stage-items-api", &c.environment_prefixes),
        "stage"
    );
    assert_eq!(environment_of("search-api", &c.environment_prefixes), "");
    let c = parse(&format!(
        "{DOCUMENTED_EXAMPLE}\n[environments]\nprefixes = [\"live_\", \"live_eu_\"]\n"
    ))
    .unwrap();
    assert_eq!(
        environment_of("live_eu_search", &c.environment_prefixes),
        "live_eu",
        "longest prefix wins"
    );
    assert_eq!(
        environment_of("prod-search-api", &c.environment_prefixes),
        ""
    );
    assert!(err_line(&format!(
        "{DOCUMENTED_EXAMPLE}\n[environments]\nprefixes = [\"-\"]\n"
    ))
    .contains("names no environment"));
}

const TWO_ACCOUNTS: &str = r#"
[elasticsearch]
url = "http://127.0.0.1:9200"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[aws]
region = "eu-west-1"

[[aws.targets]]
name = "catalogue"
role_arn = "arn:aws:iam::760097843905:role/opsguard"
clusters = ["catalogue-api-2021-04-26"]

[[aws.targets]]
name = "identity"
role_arn = "arn:aws:iam::770700576653:role/opsguard"
region = "eu-west-2"
clusters = ["identity-api"]

[[credentials]]
kind = "elasticsearch-basic"
username_env = "es_username"
password_env = "es_password"
"#;

#[test]
fn several_accounts_are_targets_with_qualified_clusters() {
    let c = parse(TWO_ACCOUNTS).unwrap();
    assert_eq!(c.aws.targets.len(), 2);
    assert_eq!(c.aws.targets[0].account.as_deref(), Some("760097843905"));
    assert_eq!(
        c.aws.targets[0].region.as_deref(),
        Some("eu-west-1"),
        "inherits [aws] region"
    );
    assert_eq!(c.aws.targets[1].region.as_deref(), Some("eu-west-2"));
    assert_eq!(
        c.clusters(),
        [
            "catalogue:catalogue-api-2021-04-26",
            "identity:identity-api"
        ]
    );
    // The single-target form is unchanged.
    assert_eq!(
        parse(DOCUMENTED_EXAMPLE).unwrap().clusters(),
        ["catalogue-api-2021-04-26"]
    );
}

#[test]
fn bad_targets_are_errors() {
    let e = err_line(&TWO_ACCOUNTS.replace("arn:aws:iam::770700576653:role/opsguard", "opsguard"));
    assert!(e.contains("is not an IAM role ARN"), "{e}");
    let e = err_line(&TWO_ACCOUNTS.replace("name = \"identity\"", "name = \"catalogue\""));
    assert!(e.contains("two targets are named \"catalogue\""), "{e}");
    let e = err_line(&TWO_ACCOUNTS.replace(
        "role_arn = \"arn:aws:iam::770700576653:role/opsguard\"\n",
        "",
    ));
    assert!(e.contains("needs role_arn or account"), "{e}");
    let e = err_line(&format!("{TWO_ACCOUNTS}\n[ecs]\nclusters = [\"x\"]\n"));
    assert!(e.contains("both name clusters"), "{e}");
    let e = err_line(&TWO_ACCOUNTS.replace("name = \"identity\"", "name = \"id:x\""));
    assert!(e.contains("may hold only"), "{e}");
}

#[test]
fn max_concurrency_defaults_and_bounds() {
    let c = parse(DOCUMENTED_EXAMPLE).unwrap();
    assert_eq!(c.aws.max_concurrency, DEFAULT_AWS_MAX_CONCURRENCY);
    assert_eq!(c.elasticsearch.max_concurrency, DEFAULT_ES_MAX_CONCURRENCY);

    let set = DOCUMENTED_EXAMPLE
        .replace("[aws]\n", "[aws]\nmax_concurrency = 4\n")
        .replace(
            "[elasticsearch]\n",
            "[elasticsearch]\nmax_concurrency = 2\n",
        );
    let c = parse(&set).unwrap();
    assert_eq!(c.aws.max_concurrency, 4);
    assert_eq!(c.elasticsearch.max_concurrency, 2);

    for bad in ["0", "-3", "257"] {
        let text =
            DOCUMENTED_EXAMPLE.replace("[aws]\n", &format!("[aws]\nmax_concurrency = {bad}\n"));
        let e = err_line(&text);
        assert!(
            e.contains("opsguard.toml:9:")
                && e.contains("[aws] max_concurrency")
                && e.contains("1..=256"),
            "{e}"
        );
        let text = DOCUMENTED_EXAMPLE.replace(
            "[elasticsearch]\n",
            &format!("[elasticsearch]\nmax_concurrency = {bad}\n"),
        );
        let e = err_line(&text);
        assert!(
            e.contains("opsguard.toml:3:") && e.contains("[elasticsearch] max_concurrency"),
            "{e}"
        );
    }
    let e = err_line(&DOCUMENTED_EXAMPLE.replace("[aws]\n", "[aws]\nmax_concurrency = \"many\"\n"));
    assert!(e.contains("opsguard.toml:9:"), "{e}");
}
