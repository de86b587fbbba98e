//! `opsguard validate` through the binary: it loads what a run would load —
//! config, the credentials it names (present or not, never their values),
//! rules, waivers — lists every problem, and touches nothing: no network,
//! not even the state folder. Offline: no emulator, no ES double.

use opsguard_testkit::{Cmd, Output};
use std::net::TcpListener;

/// A user rule (not in the built-in pack), shared with tests/rules_cli.rs.
const RULE: &str = include_str!("fixtures/secret-scheduled-for-deletion.toml");

/// A value that must never appear in any output.
const PASSWORD: &str = "validate-pw-Zq81-never-printed";

/// A config whose Elasticsearch and AWS endpoints are loopback listeners
/// that nobody may connect to.
fn config(es_port: u16, aws_port: u16, extra: &str) -> String {
    format!(
        r#"
[elasticsearch]
url = "http://127.0.0.1:{es_port}"
username = "elastic"
password_env = "VALIDATE_ES_PASSWORD"

[aws]
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:{aws_port}"

[ecs]
clusters = ["catalogue"]

[rules]
paths = ["my-rules"]
{extra}
"#
    )
}

const WAIVER_OK: &str = r#"
[[waivers]]
rule = "secret-scheduled-for-deletion"
target = "old/secret"
reason = "being retired"
expires = "2099-01-31"
"#;

const WAIVER_EXPIRED: &str = r#"
[[waivers]]
rule = "shared-credential-across-environments"
target = "search"
reason = "ticket 123"
expires = "2021-07-27"
"#;

struct Env {
    dir: tempfile::TempDir,
    es: TcpListener,
    aws: TcpListener,
}

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn setup(extra: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (es, aws) = (listener(), listener());
    std::fs::create_dir(dir.path().join("my-rules")).unwrap();
    std::fs::write(dir.path().join("my-rules/mine.toml"), RULE).unwrap();
    std::fs::write(
        dir.path().join("opsguard.toml"),
        config(
            es.local_addr().unwrap().port(),
            aws.local_addr().unwrap().port(),
            extra,
        ),
    )
    .unwrap();
    Env { dir, es, aws }
}

fn validate(env: &Env, password: Option<&str>) -> Output {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env("HOME", env.dir.path())
        .env_remove("OPSGUARD_FINGERPRINT_KEY")
        .env_remove("OPSGUARD_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_PROFILE")
        .current_dir(env.dir.path())
        .arg("validate");
    cmd = match password {
        Some(pw) => cmd.env("VALIDATE_ES_PASSWORD", pw),
        None => cmd.env_remove("VALIDATE_ES_PASSWORD"),
    };
    cmd.output()
}

/// Nothing connected to either endpoint, and nothing was written.
fn assert_untouched(env: &Env, out: &Output) {
    for (name, l) in [("Elasticsearch", &env.es), ("AWS", &env.aws)] {
        match l.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("validate connected to {name}: {other:?}"),
        }
    }
    assert!(
        !env.dir.path().join(".opsguard").exists(),
        "validate created the state folder"
    );
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
}

/// Temp paths and ports out of the snapshots.
fn filtered(env: &Env, text: &str) -> String {
    let mut t = text.replace(&env.dir.path().display().to_string(), "[DIR]");
    for l in [&env.es, &env.aws] {
        t = t.replace(&l.local_addr().unwrap().port().to_string(), "[PORT]");
    }
    t
}

#[test]
fn a_config_that_loads_is_valid_and_nothing_is_touched() {
    let env = setup(WAIVER_OK);
    let out = validate(&env, Some(PASSWORD));
    out.assert_code(0);
    let err = &out.stderr;
    assert!(
        err.contains("valid: everything a run loads, loads"),
        "{err}"
    );
    assert!(
        err.contains(
            "ok    credential       [elasticsearch] password_env: VALIDATE_ES_PASSWORD is set"
        ),
        "{err}"
    );
    assert!(
        err.contains("14 in force: 13 built-in, 1 from [rules] paths"),
        "{err}"
    );
    assert!(
        err.contains("1: none expired, each names a rule in force"),
        "{err}"
    );
    assert!(!err.contains("FAIL"), "{err}");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_untouched(&env, &out);
    insta::assert_snapshot!("validate_ok", filtered(&env, err));
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    // An unset password variable and an expired waiver: two problems a run
    // would meet one at a time.
    let env = setup(WAIVER_EXPIRED);
    let out = validate(&env, None);
    out.assert_code(2);
    let err = &out.stderr;
    assert!(
        err.contains("opsguard.toml:5:16: environment variable VALIDATE_ES_PASSWORD is not set"),
        "{err}"
    );
    assert!(
        err.contains("help: export VALIDATE_ES_PASSWORD=… before running opsguard"),
        "{err}"
    );
    assert!(
        err.contains("waiver for rule `shared-credential-across-environments` on `search` expired on 2021-07-27"),
        "{err}"
    );
    assert_eq!(err.matches("\n  FAIL ").count(), 2, "{err}");
    assert!(
        err.ends_with("2 problems: a run would stop at the first (exit 2)\n"),
        "{err}"
    );
    assert_untouched(&env, &out);
    insta::assert_snapshot!("validate_two_problems", filtered(&env, err));

    // A run stops at the first of them: validate found what it would.
    let run = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("VALIDATE_ES_PASSWORD")
        .current_dir(env.dir.path())
        .args(["check"])
        .output();
    run.assert_code(2);
    assert!(
        run.stderr.contains("VALIDATE_ES_PASSWORD is not set"),
        "{}",
        run.stderr
    );
}

#[test]
fn broken_rules_and_waivers_are_each_listed() {
    let waivers = format!(
        "{WAIVER_OK}\n[[waivers]]\nrule = \"live-credential-brokn\"\ntarget = \"search\"\nreason = \"typo\"\nexpires = \"2099-01-31\"\n"
    );
    let env = setup(&waivers.replace(
        "secret-scheduled-for-deletion",
        "secret-scheduled-for-deletoin",
    ));
    // A second rule directory, and a broken rule in each.
    let text = std::fs::read_to_string(env.dir.path().join("opsguard.toml"))
        .unwrap()
        .replace(
            "paths = [\"my-rules\"]",
            "paths = [\"my-rules\", \"more-rules\", \"missing-rules\"]",
        );
    std::fs::write(env.dir.path().join("opsguard.toml"), text).unwrap();
    std::fs::write(
        env.dir.path().join("my-rules/bad.toml"),
        RULE.replace("secret-scheduled-for-deletion", "bad-one")
            .replace("secret.live &&", "secret.alive &&"),
    )
    .unwrap();
    std::fs::create_dir(env.dir.path().join("more-rules")).unwrap();
    std::fs::write(
        env.dir.path().join("more-rules/worse.toml"),
        RULE.replace("secret-scheduled-for-deletion", "worse-one")
            .replace("severity = \"warn\"", "severity = \"fatal\""),
    )
    .unwrap();
    let out = validate(&env, Some(PASSWORD));
    out.assert_code(2);
    let err = &out.stderr;
    assert!(
        err.contains("my-rules/bad.toml:5:16: `secret` has no fact `alive`"),
        "{err}"
    );
    assert!(err.contains("more-rules/worse.toml:"), "{err}");
    assert!(err.contains("fatal"), "{err}");
    assert!(err.contains("missing-rules"), "{err}");
    assert!(
        err.contains("waiver names rule `live-credential-brokn`, which is not a rule in force"),
        "{err}"
    );
    assert!(
        err.contains("did you mean `live-credential-broken`?"),
        "{err}"
    );
    // my-rules did not load, so its rule is not in force for the waiver either.
    assert!(
        err.contains("waiver names rule `secret-scheduled-for-deletoin`"),
        "{err}"
    );
    assert_eq!(err.matches("\n  FAIL ").count(), 5, "{err}");
    assert!(err.contains("5 problems"), "{err}");
    assert_untouched(&env, &out);
}

#[test]
fn a_missing_config_or_one_that_does_not_parse_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("OPSGUARD_CONFIG")
        .current_dir(dir.path())
        .arg("validate")
        .output();
    out.assert_code(2);
    assert!(
        out.stderr.contains("cannot read the config opsguard.toml"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 problem"), "{}", out.stderr);

    std::fs::write(
        dir.path().join("opsguard.toml"),
        "[elasticsearch]\nurl = 3\n",
    )
    .unwrap();
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("OPSGUARD_CONFIG")
        .current_dir(dir.path())
        .arg("validate")
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("opsguard.toml:2:7"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("[rules] paths, credentials and waivers not checked"),
        "{}",
        out.stderr
    );
}
