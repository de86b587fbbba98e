//! `opsguard run` end to end: the 2021 script and its near misses, replayed
//! against ministack and the ES double, each through the real binary.

mod common;

use common::*;
use opsguard_testkit::Cmd;
use serde_json::Value;

#[tokio::test]
async fn the_2021_script_is_blocked_with_the_consumers_named() {
    let env = setup().await;
    let (out, report, text) = guarded(&env, "block", "create_elastic_users.py");
    out.assert_code(11);
    assert_eq!(report["schema"], "opsguard.report/v1");
    assert_eq!(report["outcome"], "violated");
    assert_eq!(report["exit_code"], 11);
    assert_eq!(report["command_exit"], 0);
    assert_eq!(report["mode"], "block");
    assert_eq!(
        fired(&report),
        pairs(&[
            ("live-credential-broken", "items"),
            ("live-credential-broken", "search"),
            ("secret-rotated-without-redeploy", "items"),
            ("secret-rotated-without-redeploy", "search"),
            ("shared-credential-across-environments", "items"),
            ("shared-credential-across-environments", "search"),
        ])
    );
    let search = violation(&report, "live-credential-broken", "search");
    let mut want = env.replica.consumer_refs("search");
    want.sort();
    assert_eq!(search["consumers"], serde_json::json!(want));
    assert_eq!(search["severity"], "block");
    // Unconsumed users were rotated too, and that is fine.
    let targets: Vec<String> = fired(&report).into_iter().map(|(_, t)| t).collect();
    for quiet in ["diff_tool", "replication_manager", "internal_model_tool"] {
        assert!(!targets.iter().any(|t| t == quiet), "{quiet} flagged");
        // ... though the change itself is reported.
        assert!(
            report["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["target"] == quiet),
            "{quiet}'s rotation missing from changes"
        );
    }
    assert!(
        out.stderr.contains("live-credential-broken"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("prod-search-api"), "{}", out.stderr);
    assert_nothing_leaked(&env, &out, &text, &[]);
    assert_documented(&env, &report);
}

#[tokio::test]
async fn warn_mode_reports_and_passes_the_command_code_through() {
    let env = setup().await;
    let (out, report, _) = guarded(&env, "warn", "create_elastic_users.py");
    out.assert_code(0);
    assert_eq!(report["outcome"], "violated");
    assert!(fired(&report).contains(&("live-credential-broken".into(), "search".into())));
}

/// Scripts that change things without breaking anything live: exit 0, no block.
async fn no_false_alarm(script_rel: &str) {
    let env = setup().await;
    let (out, report, text) = guarded(&env, "block", script_rel);
    out.assert_code(0);
    assert_eq!(report["outcome"], "ok", "{script_rel}: {report:#}");
    let blocking: Vec<&Value> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["severity"] == "block")
        .collect();
    assert!(blocking.is_empty(), "{script_rel}: {blocking:#?}");
    assert_nothing_leaked(&env, &out, &text, &[]);
}

#[tokio::test]
async fn creating_an_unused_user_is_not_a_violation() {
    no_false_alarm("scenarios/create_unused_user.py").await;
}

#[tokio::test]
async fn changing_only_roles_is_not_a_violation() {
    no_false_alarm("scenarios/change_roles_only.py").await;
}

#[tokio::test]
async fn rotating_an_unused_user_is_not_a_violation() {
    no_false_alarm("scenarios/rotate_unused_user.py").await;
}

#[tokio::test]
async fn a_proper_rotation_with_redeploy_is_not_a_violation() {
    no_false_alarm("scenarios/rotate_search_properly.py").await;
}

/// Scripts that break a live credential: blocked with exactly these findings.
async fn caught(script_rel: &str, want: &[(&str, &str)], code: i32) -> (Env, Value) {
    let env = setup().await;
    let (out, report, text) = guarded(&env, "block", script_rel);
    out.assert_code(code);
    let mut got = fired(&report);
    // The replica shares users across prod and stage: that warning is always there.
    got.retain(|(r, _)| r != "shared-credential-across-environments");
    assert_eq!(got, pairs(want), "{script_rel}: {report:#}");
    assert_nothing_leaked(&env, &out, &text, &[]);
    (env, report)
}

#[tokio::test]
async fn an_es_password_change_without_the_secret_is_caught() {
    caught(
        "scenarios/rotate_es_only.py",
        &[
            ("live-credential-broken", "search"),
            ("secret-out-of-sync", "search"),
        ],
        11,
    )
    .await;
}

#[tokio::test]
async fn a_secret_change_without_es_is_caught() {
    caught(
        "scenarios/rotate_secret_only.py",
        &[
            ("secret-out-of-sync", "search"),
            ("secret-rotated-without-redeploy", "search"),
        ],
        11,
    )
    .await;
}

#[tokio::test]
async fn deleting_a_consumed_user_is_caught() {
    caught(
        "scenarios/delete_search_user.py",
        &[
            ("credential-in-use-removed", "search"),
            ("live-credential-broken", "search"),
            ("secret-out-of-sync", "search"),
        ],
        11,
    )
    .await;
}

#[tokio::test]
async fn disabling_a_consumed_user_is_caught() {
    caught(
        "scenarios/disable_search_user.py",
        &[
            ("credential-in-use-removed", "search"),
            ("live-credential-broken", "search"),
            ("secret-out-of-sync", "search"),
        ],
        11,
    )
    .await;
}

#[tokio::test]
async fn a_desired_count_change_is_a_warning() {
    let (_env, report) = caught(
        "scenarios/change_desired_count.py",
        &[(
            "desired-count-changed",
            "catalogue-api-2021-04-26/stage-search-api",
        )],
        0,
    )
    .await;
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["violations"][0]["severity"], "warn");
}

#[tokio::test]
async fn the_api_key_variant_is_caught() {
    let env = setup().await;
    // Seed the key, its secret and its consumer, then watch the rotation.
    let seeded = Cmd::new(python())
        .envs(env.replica.env())
        .env("ES_URL", &env.replica.es_url)
        .env("ES_USERNAME", "elastic")
        .env("ES_PASSWORD", ADMIN_PW)
        .arg(script("scenarios/seed_api_key.py"))
        .output();
    seeded.assert_code(0);
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(
        "\n[[credentials]]\nkind = \"elasticsearch-api-key\"\napi_key_env = \"es_apikey\"\n",
    );
    std::fs::write(&env.config, config).unwrap();
    let (out, report, _) = guarded(&env, "block", "scenarios/rotate_api_key.py");
    out.assert_code(11);
    let got = fired(&report);
    let key_secret = "elasticsearch/catalogue_api/search/api_key";
    for rule in ["live-credential-broken", "secret-rotated-without-redeploy"] {
        assert!(
            got.contains(&(rule.to_owned(), key_secret.to_owned())),
            "{rule} missing: {got:?}"
        );
    }
}

#[tokio::test]
async fn check_reports_shared_credentials_as_a_warning() {
    let env = setup().await;
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .args(["check", "--format", "json", "--config"])
        .arg(&env.config)
        .output();
    out.assert_code(0);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["subcommand"], "check");
    opsguard_testkit::schema::assert_conforms(opsguard_testkit::schema::Schema::Report, &report);
    assert_eq!(
        fired(&report),
        pairs(&[
            ("shared-credential-across-environments", "items"),
            ("shared-credential-across-environments", "search"),
        ])
    );
    assert!(report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["severity"] == "warn"));
}

/// Break the environment directly (no opsguard): search's ES password moves,
/// its secret does not.
fn break_search(env: &Env) {
    Cmd::new(python())
        .envs(env.replica.env())
        .env("ES_URL", &env.replica.es_url)
        .env("ES_USERNAME", "elastic")
        .env("ES_PASSWORD", ADMIN_PW)
        .arg(script("scenarios/rotate_es_only.py"))
        .output()
        .assert_code(0);
}

#[tokio::test]
async fn check_blocks_on_a_broken_environment() {
    let env = setup().await;
    break_search(&env);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .args(["check", "--config"])
        .arg(&env.config)
        .output();
    out.assert_code(11);
    assert!(out.stderr.contains("secret-out-of-sync"), "{}", out.stderr);
}

#[tokio::test]
async fn preflight_refuses_to_run_on_a_broken_environment() {
    let env = setup().await;
    break_search(&env);
    let marker = env.dir.path().join("ran");
    let run = |extra: &[&str]| {
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .env("NO_COLOR", "1")
            .args(["run", "--config"])
            .arg(&env.config)
            .args(["--on-violation", "block"])
            .args(extra)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
    };
    let out = run(&[]);
    out.assert_code(13);
    assert!(!marker.exists(), "the command must not run");
    assert!(out.stderr.contains("secret-out-of-sync"), "{}", out.stderr);

    // A repair script may run with --skip-preflight; the breakage is still reported.
    let out = run(&["--skip-preflight"]);
    out.assert_code(11);
    assert!(marker.exists());
}

#[tokio::test]
async fn exit_codes_pass_through_and_unstartable_commands_are_usage_errors() {
    let env = setup().await;
    let run = |cmd: &[&str]| {
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .args(["run", "--config"])
            .arg(&env.config)
            .arg("--")
            .args(cmd)
            .output()
    };
    let out = run(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]);
    out.assert_code(7);
    assert_eq!(out.stdout, "to-stdout\n", "the command keeps its stdout");
    assert!(out.stderr.starts_with("to-stderr\n"), "{}", out.stderr);

    let out = run(&["/nonexistent/provision.sh"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("cannot start `/nonexistent/provision.sh`"),
        "{}",
        out.stderr
    );

    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .args(["run", "--config"])
        .arg(&env.config)
        .arg("--")
        .args(["sh", "-c", "read line; test \"$line\" = hello"])
        .stdin("hello\n")
        .output();
    out.assert_code(0);
}

#[tokio::test]
async fn sigterm_is_forwarded_and_the_after_check_still_runs() {
    let env = setup().await;
    let started = env.dir.path().join("started");
    let report = env.dir.path().join("report.json");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_opsguard"));
    cmd.envs(env.replica.env())
        .env_remove("OPSGUARD_CONFIG")
        .args(["run", "--config"])
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .args(["--", "sh", "-c"])
        .arg(format!("touch {} && exec sleep 30", started.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "opsguard did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "sleep's death by SIGTERM is passed through"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["command_signal"], "SIGTERM");
    assert_eq!(report["command_exit"], Value::Null);
    assert_eq!(report["outcome"], "ok");
}

#[tokio::test]
async fn diff_judges_two_snapshot_files_offline() {
    let env = setup().await;
    let snap = |name: &str| {
        let file = env.dir.path().join(name);
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .args(["snapshot", "--config"])
            .arg(&env.config)
            .arg("-o")
            .arg(&file)
            .output()
            .assert_code(0);
        file
    };
    let before = snap("before.json");
    Cmd::new(python())
        .envs(env.replica.env())
        .env("ES_URL", &env.replica.es_url)
        .env("ES_PASSWORD", ADMIN_PW)
        .arg(script("scenarios/rotate_secret_only.py"))
        .output()
        .assert_code(0);
    let after = snap("after.json");
    // No credentials in the environment: diff needs none.
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
        .args(["diff", "-v", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output();
    out.assert_code(11);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["subcommand"], "diff");
    let got = fired(&report);
    for want in [
        ("secret-out-of-sync", "search"),
        ("secret-rotated-without-redeploy", "search"),
    ] {
        assert!(
            got.contains(&(want.0.into(), want.1.into())),
            "{want:?} missing from {got:?}"
        );
    }
    assert!(
        out.stderr.contains("@@ secrets @@"),
        "the human diff, under -v: {}",
        out.stderr
    );

    // The same file twice: nothing changed, only steady-state findings.
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .current_dir(env.dir.path())
        .args(["diff", "--format", "json"])
        .arg(&before)
        .arg(&before)
        .output();
    out.assert_code(0);

    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .current_dir(env.dir.path())
        .args(["diff"])
        .arg(&before)
        .arg(env.config.clone())
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("not JSON"), "{}", out.stderr);
}
