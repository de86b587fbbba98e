//! `opsguard init` against the seeded 2021 replica: the config it writes
//! names what is there, loads as written, and — once the admin password is
//! in the environment — checks the live environment as it is.

mod common;

use common::*;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use serde_json::Value;
use std::path::Path;

/// The binary with the account's credentials only: no region and no
/// endpoint from the environment, so those come from the flags.
fn init(env: &Env, cwd: &Path, args: &[&str]) -> Output {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.account.env())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .arg("init")
        .args(["--region", &env.replica.account.region])
        .args(["--endpoint-url", &env.replica.account.endpoint])
        .args(args)
        .output()
}

#[tokio::test]
async fn init_writes_a_config_naming_the_cluster_and_the_credential_pair_that_loads_and_checks() {
    let env = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(&env, dir.path(), &[]);
    out.assert_code(0);
    opsguard_testkit::snap::settings(&[])
        .bind(|| insta::assert_snapshot!("init_human", out.stderr));
    let path = dir.path().join("opsguard.toml");
    let text = std::fs::read_to_string(&path).expect("written to ./opsguard.toml");

    assert!(
        text.contains("\n[ecs]\nclusters = [\"catalogue-api-2021-04-26\"]\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n[[credentials]]\nkind = \"elasticsearch-basic\"\nusername_env = \"es_username\"\npassword_env = \"es_password\"\n"
        ),
        "{text}"
    );
    for s in &env.replica.services {
        assert!(text.contains(&s.name), "service {} listed:\n{text}", s.name);
    }
    // Both spellings (the SSM reference and the ARN) resolve to secret names.
    for user in ["search", "items"] {
        for field in ["username", "password"] {
            let name = env.replica.secret_of(user, field).name.clone();
            assert!(
                text.contains(&format!("#   {name}  <- ")),
                "{name}:\n{text}"
            );
        }
    }
    assert!(
        text.contains(&format!(
            "endpoint_url = \"{}\"",
            env.replica.account.endpoint
        )),
        "{text}"
    );
    assert!(text.contains("region = \"eu-west-1\""), "{text}");
    assert!(text.contains("FILL IN"), "placeholders are marked:\n{text}");
    // The replica's containers carry es_host + es_protocol: the URL is guessed.
    assert!(
        text.contains(&format!("url = \"{}\"", env.replica.es_url)),
        "{text}"
    );
    assert!(
        out.stderr.contains("rules list"),
        "says what is next: {}",
        out.stderr
    );
    let mut secrets = env.replica.secret_values.clone();
    secrets.extend(env.replica.passwords.values().cloned());
    assert_no_leak_named(
        &[
            ("config", &text),
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
        ],
        &secrets,
    );

    // It loads as written ...
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .args(["rules", "list", "--config"])
        .arg(&path)
        .output()
        .assert_code(0);
    // ... and checks the live environment once the admin password is set.
    let check = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env_remove("AWS_ENDPOINT_URL")
        .args(["check", "--format", "json", "--config"])
        .arg(&path)
        .output();
    check.assert_code(0);
    let report: Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(
        fired(&report),
        pairs(&[
            ("shared-credential-across-environments", "items"),
            ("shared-credential-across-environments", "search"),
        ]),
        "the credentials the generated config pairs are the replica's"
    );

    // An existing file is not overwritten without --force.
    std::fs::write(&path, "# mine\n").unwrap();
    let refused = init(&env, dir.path(), &[]);
    refused.assert_code(2);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    init(&env, dir.path(), &["--force"]).assert_code(0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[tokio::test]
async fn init_takes_named_clusters_and_prints_to_stdout() {
    let env = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let out = init(
        &env,
        dir.path(),
        &["--cluster", "catalogue-api-2021-04-26", "-o", "-"],
    );
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("clusters = [\"catalogue-api-2021-04-26\"]"),
        "{}",
        out.stdout
    );
    assert!(!dir.path().join("opsguard.toml").exists());

    let missing = init(&env, dir.path(), &["--cluster", "no-such-cluster"]);
    missing.assert_code(13);
    assert!(
        missing.stderr.contains("no-such-cluster"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("help:"), "{}", missing.stderr);
    assert!(
        !dir.path().join("opsguard.toml").exists(),
        "nothing written"
    );
}
