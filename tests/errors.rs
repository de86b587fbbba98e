//! What a person reads when opsguard stops on an error: the message, its
//! cause said once, and the help — never an internal code such as
//! `opsguard::config::invalid`. Real runs of the binary, snapshotted, with
//! ports and temporary paths filtered.

mod common;

use common::*;
use opsguard_testkit::{Cmd, Output};

fn opsguard() -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
}

/// Ports and temporary folders differ each run.
fn settings() -> insta::Settings {
    let mut s = opsguard_testkit::snap::settings(&[
        (r"/tmp/[^\s`'\]\):]+".to_owned(), "[TMP]"),
        (r"\.tmp[A-Za-z0-9]+".to_owned(), "[TMP]"),
    ]);
    s.set_prepend_module_to_snapshot(true);
    s
}

/// No line of what a person reads names an internal error code.
fn assert_no_code(stderr: &str) {
    for l in stderr.lines() {
        assert!(
            !l.trim().starts_with("opsguard::"),
            "an error code: {stderr}"
        );
    }
    assert!(!stderr.contains("opsguard::"), "{stderr}");
}

fn stderr_of(out: &Output, code: i32) -> String {
    out.assert_code(code);
    assert_no_code(&out.stderr);
    out.stderr.clone()
}

#[test]
fn a_missing_config_says_which_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard()
        .current_dir(dir.path())
        .args(["check", "--config", "missing.toml"])
        .output();
    let text = stderr_of(&out, 2);
    assert!(text.contains("help:"), "{text}");
    settings().bind(|| insta::assert_snapshot!("missing_config", text));
}

#[test]
fn an_unknown_config_key_is_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsguard.toml");
    std::fs::write(
        &config,
        "[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"ES_PW\"\nbogus = 1\n",
    )
    .unwrap();
    let out = opsguard()
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .output();
    let text = stderr_of(&out, 2);
    assert!(text.contains("bogus"), "{text}");
    settings().bind(|| insta::assert_snapshot!("unknown_config_key", text));
}

#[tokio::test]
async fn a_command_that_does_not_exist_is_said_once() {
    let env = setup().await;
    let (out, _, _) = guarded_command(&env, "block", &[], &[], &["/no/such/command-j2".into()]);
    let text = stderr_of(&out, 2);
    // The cause is said once, not in the message and again below it.
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
    assert!(text.contains("help:"), "{text}");
    settings().bind(|| insta::assert_snapshot!("command_not_found", text));
}

/// The replica's config with `edit` applied, in a folder of its own.
fn config_with(env: &Env, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let path = env.dir.path().join("edited.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// `opsguard snapshot` with `config`; its stderr, after checking the exit
/// code, that no code and no secret value is printed.
fn snapshot_fails(env: &Env, config: &std::path::Path, vars: &[(&str, &str)]) -> String {
    let mut cmd = opsguard()
        .envs(env.replica.env())
        .current_dir(env.dir.path());
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    let out = cmd.args(["snapshot", "--config"]).arg(config).output();
    let text = stderr_of(&out, 13);
    let mut secrets = env.replica.secret_values.clone();
    secrets.extend(env.replica.passwords.values().cloned());
    secrets.push(ADMIN_PW.to_owned());
    opsguard_testkit::assert_no_leak_named(&[("stderr", &text), ("stdout", &out.stdout)], &secrets);
    text
}

/// The `[aws] endpoint_url` line of a config, replaced.
fn aws_endpoint(text: String, url: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("endpoint_url") {
                format!("endpoint_url = \"{url}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback port nothing listens on: port 1 (tcpmux) is privileged and
/// unused; a port bound and released could be taken by a parallel test.
fn closed_port() -> u16 {
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 1)).is_err(),
        "something listens on 127.0.0.1:1"
    );
    1
}

#[tokio::test]
async fn elasticsearch_unreachable_says_refused_the_tries_and_the_key() {
    let env = setup().await;
    let port = closed_port();
    let config = config_with(&env, |t| {
        t.replace(&env.replica.es_url, &format!("http://127.0.0.1:{port}"))
    });
    let text = snapshot_fails(&env, &config, &[]);
    for what in [
        "connection refused",
        "4 tries",
        "[elasticsearch] url",
        "help:",
    ] {
        assert!(text.contains(what), "{what:?} not said: {text}");
    }
    assert!(!text.contains("error sending request"), "{text}");
    settings().bind(|| insta::assert_snapshot!("elasticsearch_unreachable", text));
}

#[tokio::test]
async fn https_to_a_plain_http_elasticsearch_is_named_a_tls_failure() {
    let env = setup().await;
    let https = env.replica.es_url.replacen("http://", "https://", 1);
    let config = config_with(&env, |t| t.replace(&env.replica.es_url, &https));
    let text = snapshot_fails(&env, &config, &[]);
    assert!(text.contains("TLS handshake failed"), "{text}");
    assert!(
        text.contains("[elasticsearch] url (http:// or https://)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_elasticsearch_password_is_named_as_such() {
    let env = setup().await;
    let text = snapshot_fails(
        &env,
        &env.config,
        &[("OPSGUARD_ES_PASSWORD", "not-the-password-j2")],
    );
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("credentials were refused"), "{text}");
    assert!(text.contains("password_env"), "{text}");
    assert!(!text.contains("not-the-password-j2"), "{text}");
}

#[tokio::test]
async fn a_missing_elasticsearch_privilege_is_named() {
    let env = setup().await;
    // `search` holds `monitor` only: it may read the cluster, not its users.
    let config = config_with(&env, |t| {
        t.replace("username = \"elastic\"", "username = \"search\"")
    });
    let text = snapshot_fails(
        &env,
        &config,
        &[("OPSGUARD_ES_PASSWORD", env.replica.password("search"))],
    );
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(
        text.contains("grant it the cluster privilege read_security"),
        "{text}"
    );
    assert!(
        text.contains("cluster:admin/xpack/security/user/get"),
        "{text}"
    );
}

#[tokio::test]
async fn aws_unreachable_says_refused_and_the_endpoint_key() {
    let env = setup().await;
    let port = closed_port();
    let config = config_with(&env, |t| {
        aws_endpoint(t, &format!("http://127.0.0.1:{port}"))
    });
    let text = snapshot_fails(&env, &config, &[]);
    for what in ["connection refused", "[aws] endpoint_url", "tries"] {
        assert!(text.contains(what), "{what:?} not said: {text}");
    }
}

#[tokio::test]
async fn https_to_a_plain_http_aws_endpoint_is_named_a_tls_failure() {
    let env = setup().await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    let endpoint = text
        .lines()
        .find_map(|l| l.strip_prefix("endpoint_url = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("the replica config names an endpoint");
    let https = endpoint.replacen("http://", "https://", 1);
    let config = config_with(&env, |t| aws_endpoint(t, &https));
    let text = snapshot_fails(&env, &config, &[]);
    assert!(text.contains("TLS handshake failed"), "{text}");
    assert!(text.contains("[aws] endpoint_url"), "{text}");
}

#[tokio::test]
async fn a_connection_elasticsearch_drops_is_named_with_the_tries() {
    use opsguard_testkit::proxy::{Fault, FaultProxy, Match};
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.es_url);
    proxy.add(Match::path("GET", "/_security/user"), Fault::Close, None);
    let config = config_with(&env, |t| t.replace(&env.replica.es_url, &proxy.url()));
    let text = snapshot_fails(&env, &config, &[]);
    assert!(text.contains("reset or closed before an answer"), "{text}");
    assert!(text.contains("4 tries"), "{text}");
    assert!(proxy.faults() >= 4, "retried: {} faults", proxy.faults());
}

#[tokio::test]
async fn an_aws_fault_is_named_as_aws_side_with_the_tries() {
    use opsguard_testkit::proxy::{Fault, FaultProxy, Match};
    let env = setup().await;
    let endpoint = env.replica.account.endpoint.clone();
    let proxy = FaultProxy::start(&endpoint);
    proxy.add(Match::aws("ListSecrets"), Fault::AwsInternal, None);
    let config = config_with(&env, |t| aws_endpoint(t, &proxy.url()));
    let text = snapshot_fails(&env, &config, &[]);
    assert!(text.contains("InternalFailure"), "{text}");
    assert!(text.contains("a fault on AWS's side"), "{text}");
    assert!(proxy.faults() > 1, "retried: {} faults", proxy.faults());
}
