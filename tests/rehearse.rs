//! `opsguard rehearse` and `opsguard run --rehearse` end to end: the incident
//! replica is the live environment (the shared ministack + an ES double); the
//! binary builds its own shadow (a ministack it starts, an in-process double)
//! and must predict what the script breaks while live stays as it was.

mod common;

use common::*;
use opsguard_testkit::ministack::venv_dir;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use serde_json::Value;
use std::path::Path;

/// The replica's config, with the shadow's emulator taken from the test venv.
fn rehearsable(env: &Env, extra: &str) {
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!(
        "\n[rehearse]\naws_emulator = [{:?}]\n{extra}",
        venv_dir().join("bin/ministack").display().to_string()
    ));
    std::fs::write(&env.config, text).unwrap();
}

/// `opsguard ARGS... -- CMD...` with the replica's environment (live AWS and ES).
fn opsguard(env: &Env, args: &[&str], cmd: &[&str]) -> (Output, Value, String) {
    let report = env.dir.path().join("report.json");
    let _ = std::fs::remove_file(&report);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .env("ES_URL", &env.replica.es_url)
        .env("ES_USERNAME", "elastic")
        .env("ES_PASSWORD", ADMIN_PW)
        .current_dir(env.dir.path())
        .arg(args[0])
        .arg("--config")
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .args(&args[1..])
        .arg("--")
        .args(cmd)
        .output();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !json.is_null() {
        // Every report a test makes matches the documented schema.
        opsguard_testkit::schema::assert_conforms(opsguard_testkit::schema::Schema::Report, &json);
    }
    (out, json, text)
}

fn rehearse_script(env: &Env, script_rel: &str) -> (Output, Value, String) {
    let py = python().display().to_string();
    let s = script(script_rel).display().to_string();
    opsguard(env, &["rehearse"], &[&py, &s])
}

/// The live environment as `opsguard snapshot` sees it, minus when and how.
fn live_snapshot(env: &Env) -> Value {
    let path = env.dir.path().join("live.json");
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .current_dir(env.dir.path())
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .arg("-o")
        .arg(&path)
        .output()
        .assert_code(0);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("taken_at");
    o.remove("collection");
    v
}

fn no_leak(env: &Env, out: &Output, report: &str) {
    let hay = [
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("report", report),
    ];
    assert_no_leak_named(&hay, &env.replica.secret_values);
}

fn blocking(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations in {report:#}"))
        .iter()
        .filter(|v| v["severity"] == "block")
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_2021_script_rehearsed_predicts_the_outage_and_leaves_live_alone() {
    let env = setup().await;
    rehearsable(&env, "");
    let before = live_snapshot(&env);
    let (out, report, text) = rehearse_script(&env, "create_elastic_users.py");
    out.assert_code(11);
    assert_eq!(report["schema"], "opsguard.report/v1");
    assert_eq!(report["subcommand"], "rehearse");
    assert_eq!(report["outcome"], "violated");
    assert_eq!(report["exit_code"], 11);
    assert_eq!(report["command_exit"], 0, "the script ran in the shadow");
    let mut fired = blocking(&report);
    fired.retain(|(r, _)| r == "live-credential-broken");
    assert_eq!(
        fired,
        pairs(&[
            ("live-credential-broken", "items"),
            ("live-credential-broken", "search")
        ]),
        "{report:#}"
    );
    let targets: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["target"].as_str().unwrap())
        .collect();
    for quiet in ["diff_tool", "replication_manager", "internal_model_tool"] {
        assert!(!targets.contains(&quiet), "{quiet} flagged: {report:#}");
    }
    let search = violation(&report, "live-credential-broken", "search");
    let mut want = env.replica.consumer_refs("search");
    want.sort();
    assert_eq!(search["consumers"], serde_json::json!(want));

    let r = &report["rehearsal"];
    assert_eq!(r["live_unchanged"], true, "{r:#}");
    assert_eq!(r["live_changes"], serde_json::json!([]));
    let rewritten: Vec<&str> = r["env_rewritten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "ES_URL"] {
        assert!(rewritten.contains(&name), "{name} not rewritten: {r:#}");
    }
    assert!(r["aws_endpoint"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_ne!(r["aws_endpoint"], env.replica.account.endpoint.as_str());
    assert_eq!(r["seeded"]["services"], 4, "{r:#}");
    assert!(r["seeded"]["users"].as_u64().unwrap() >= 5, "{r:#}");
    for phase in [
        "live_snapshot",
        "shadow_seeding",
        "emulator_start",
        "seed_elasticsearch",
        "seed_aws",
        "shadow_snapshot",
        "command",
        "verdict",
    ] {
        assert!(r["timings_ms"][phase].is_u64(), "{phase}: {r:#}");
    }
    // The shadow is gone: its emulator's pid no longer exists.
    let pid: u32 = r["aws"]
        .as_str()
        .unwrap()
        .split("pid ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {r:#}"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "shadow emulator {pid} still running"
    );
    assert!(out.stderr.contains("PREDICTED"), "{}", out.stderr);
    assert!(
        out.stderr.contains("live environment: unchanged"),
        "{}",
        out.stderr
    );

    // Live is exactly as before, and the original passwords still work.
    assert_eq!(live_snapshot(&env), before);
    assert_before_state(&env, &["search", "items", "diff_tool"]).await;
    no_leak(&env, &out, &text);
}

/// What a person at a terminal reads when the 2021 script is rehearsed: the
/// real binary's stderr, with what differs from run to run (ports, run id,
/// pid, times, temporary paths, the account, ARN suffixes, version ids,
/// value fingerprints, timings) filtered out.
#[tokio::test]
async fn the_2021_script_rehearsed_reads_like_this() {
    let env = setup().await;
    rehearsable(&env, "");
    let (out, report, _) = rehearse_script(&env, "create_elastic_users.py");
    out.assert_code(11);
    assert_eq!(report["outcome"], "violated", "{report:#}");
    let literal = opsguard_testkit::snap::literal;
    let venv = venv_dir().display().to_string();
    let root = script("").display().to_string();
    let dir = env.dir.path().display().to_string();
    let extra = [
        (
            literal(&python().display().to_string()),
            "[PYTHON]".to_owned(),
        ),
        (literal(root.trim_end_matches('/')), "[EXAMPLES]".to_owned()),
        (literal(&venv), "[VENV]".to_owned()),
        (literal(&dir), "[DIR]".to_owned()),
        (r"/tmp/[^\s'\x22,)]+".to_owned(), "[TMP]".to_owned()),
        (literal(&env.replica.account.id), "[ACCOUNT]".to_owned()),
        (
            r"\d{8}T\d{6}Z-[0-9a-f]{4}".to_owned(),
            "[RUN_ID]".to_owned(),
        ),
        (
            r"127\.0\.0\.1:\d+".to_owned(),
            "127.0.0.1:[PORT]".to_owned(),
        ),
        (r"pid \d+".to_owned(), "pid [PID]".to_owned()),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?".to_owned(),
            "[TIME]".to_owned(),
        ),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".to_owned(),
            "[UUID]".to_owned(),
        ),
        (
            r"(secret:[^\s:,)]+)-[A-Za-z0-9]{6}\b".to_owned(),
            "$1-[SUFFIX]".to_owned(),
        ),
        // Version ids and value fingerprints, shortened to 8 hex digits.
        (r"\b[0-9a-f]{8}\b".to_owned(), "[ID]".to_owned()),
        (r"\b([a-z_]+) \d+ ms\b".to_owned(), "$1 [N] ms".to_owned()),
    ];
    let extra: Vec<(String, &str)> = extra.iter().map(|(p, w)| (p.clone(), w.as_str())).collect();
    let mut settings = opsguard_testkit::snap::settings(&extra);
    settings.set_prepend_module_to_snapshot(true);
    settings.bind(|| insta::assert_snapshot!("rehearse_2021_script_human", out.stderr));
}

#[tokio::test]
async fn a_proper_rotation_rehearsed_predicts_nothing() {
    let env = setup().await;
    rehearsable(&env, "");
    let (out, report, text) = rehearse_script(&env, "scenarios/rotate_search_properly.py");
    out.assert_code(0);
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert!(blocking(&report).is_empty(), "{report:#}");
    assert_eq!(report["rehearsal"]["live_unchanged"], true);
    // It did rotate, in the shadow: the change is reported...
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "secret"
                && c["target"] == "elasticsearch/catalogue_api/search/password"),
        "{report:#}"
    );
    // ... and not live.
    assert_before_state(&env, &["search"]).await;
    no_leak(&env, &out, &text);
}

#[tokio::test]
async fn a_command_exit_code_that_collides_with_a_verdict_is_folded_to_1() {
    let env = setup().await;
    rehearsable(&env, "");
    let (out, report, _) = opsguard(&env, &["rehearse"], &["sh", "-c", "exit 11"]);
    // 11 would read as "blocking violations predicted".
    out.assert_code(1);
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert_eq!(report["command_exit"], 11, "{report:#}");
    assert_eq!(report["command_exit_folded"], true, "{report:#}");
    assert!(
        out.stderr.contains("opsguard exits 1 instead"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn run_rehearse_blocks_the_2021_script_before_it_runs_for_real() {
    let env = setup().await;
    rehearsable(&env, "");
    let py = python().display().to_string();
    let s = script("create_elastic_users.py").display().to_string();
    let (out, report, text) = opsguard(
        &env,
        &["run", "--rehearse", "--on-violation", "rollback"],
        &[&py, &s],
    );
    out.assert_code(11);
    assert_eq!(report["subcommand"], "run");
    assert_eq!(report["outcome"], "violated");
    assert_eq!(report["command_exit"], Value::Null, "not run for real");
    assert!(report["remediation"].is_null(), "{report:#}");
    assert_eq!(report["rehearsal"]["live_unchanged"], true);
    assert!(blocking(&report).contains(&("live-credential-broken".into(), "search".into())));
    assert_before_state(&env, &["search", "items"]).await;
    no_leak(&env, &out, &text);
}

#[tokio::test]
async fn run_rehearse_runs_a_safe_script_for_real() {
    let env = setup().await;
    rehearsable(&env, "");
    let py = python().display().to_string();
    let s = script("scenarios/create_unused_user.py")
        .display()
        .to_string();
    let (out, report, text) = opsguard(
        &env,
        &["run", "--rehearse", "--on-violation", "block"],
        &[&py, &s],
    );
    out.assert_code(0);
    assert_eq!(report["subcommand"], "run");
    assert_eq!(report["outcome"], "ok", "{report:#}");
    assert_eq!(report["command_exit"], 0);
    assert_eq!(report["rehearsal"]["live_unchanged"], true);
    // It ran for real: the live environment now has the user.
    let live = live_snapshot(&env);
    assert!(
        live["elasticsearch"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "reindex_worker"),
        "the script did not run against live"
    );
    no_leak(&env, &out, &text);
}

/// A script that finds live by itself, not through its environment.
const ESCAPE: &str = r#"
import base64, json, sys, urllib.request
url = open(sys.argv[1]).read().strip()
pw = open(sys.argv[2]).read().strip()
req = urllib.request.Request(url + "/_security/user/diff_tool/_disable", method="PUT")
req.add_header("Authorization", "Basic " + base64.b64encode(("elastic:" + pw).encode()).decode())
urllib.request.urlopen(req).read()
print("disabled diff_tool behind opsguard's back")
"#;

#[tokio::test]
async fn a_script_that_reaches_live_by_itself_is_reported_as_escaped() {
    let env = setup().await;
    rehearsable(&env, "");
    let dir = env.dir.path();
    std::fs::write(dir.join("escape.py"), ESCAPE).unwrap();
    std::fs::write(dir.join("endpoint.txt"), &env.replica.es_url).unwrap();
    std::fs::write(dir.join("pw.txt"), ADMIN_PW).unwrap();
    let py = python().display().to_string();
    let (out, report, text) = opsguard(
        &env,
        &["rehearse"],
        &[&py, "escape.py", "endpoint.txt", "pw.txt"],
    );
    out.assert_code(12);
    assert_eq!(report["outcome"], "escaped", "{report:#}");
    let r = &report["rehearsal"];
    assert_eq!(r["live_unchanged"], false);
    assert!(
        r["live_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "user" && c["target"] == "diff_tool"),
        "{r:#}"
    );
    assert!(out.stderr.contains("ESCAPED"), "{}", out.stderr);
    no_leak(&env, &out, &text);
}

#[tokio::test]
async fn no_emulator_is_exit_13_with_help_and_the_command_is_not_run() {
    let env = setup().await;
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str("\n[rehearse]\naws_emulator = [\"/nonexistent/bin/ministack\"]\n");
    std::fs::write(&env.config, text).unwrap();
    let marker = env.dir.path().join("ran");
    let m = marker.display().to_string();
    let (out, report, _) = opsguard(&env, &["rehearse"], &["touch", &m]);
    out.assert_code(13);
    assert_eq!(report["outcome"], "preflight_failed");
    assert!(!marker.exists(), "the command ran");
    let why = report["preflight_error"].as_str().unwrap();
    assert!(why.contains("/nonexistent/bin/ministack"), "{why}");
    assert!(why.contains("pip install ministack"), "{why}");
    assert!(out.stderr.contains("aws_emulator"), "{}", out.stderr);
}

#[tokio::test]
async fn the_shadow_is_torn_down_when_opsguard_is_told_to_stop() {
    let env = setup().await;
    rehearsable(&env, "");
    let dir = env.dir.path();
    let seen = dir.join("endpoint-seen");
    let script = format!(
        "printf '%s' \"$AWS_ENDPOINT_URL\" > {0}.tmp && mv {0}.tmp {0}; sleep 30",
        seen.display()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(["rehearse", "--config"])
        .arg(&env.config)
        .args(["--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !seen.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let endpoint = std::fs::read_to_string(&seen).unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_ne!(endpoint, env.replica.account.endpoint);
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // While the shadow holds copies of the secrets, nothing it keeps on
    // disk (the emulator's home and the command's empty AWS files) holds one.
    let pid = child.id();
    let shadow_dirs = || -> Vec<std::path::PathBuf> {
        let prefix = format!("opsguard-shadow-{pid}-");
        let env_prefix = format!("opsguard-shadow-env-{pid}-");
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) || n.starts_with(&env_prefix)
            })
            .map(|e| e.path())
            .collect()
    };
    let dirs = shadow_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let mut files = Vec::new();
    let mut stack = dirs.clone();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                files.push((
                    e.path().display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    let hay: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_no_leak_named(&hay, &env.replica.secret_values);
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the shadow emulator still listens on {port}"
    );
    assert!(shadow_dirs().is_empty(), "{:?} left behind", shadow_dirs());
    assert_before_state(&env, &["search"]).await;
}

/// Rehearsals only read live, so one live replica serves several of them;
/// after each, live must still be exactly the first snapshot.
#[tokio::test]
async fn each_breaking_scenario_is_predicted_and_live_stays_put() {
    let env = setup().await;
    rehearsable(&env, "");
    let before = live_snapshot(&env);
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (
            "scenarios/rotate_es_only.py",
            &[
                ("live-credential-broken", "search"),
                ("secret-out-of-sync", "search"),
            ],
        ),
        (
            "scenarios/rotate_secret_only.py",
            &[
                ("secret-out-of-sync", "search"),
                ("secret-rotated-without-redeploy", "search"),
            ],
        ),
        (
            "scenarios/delete_search_user.py",
            &[
                ("credential-in-use-removed", "search"),
                ("live-credential-broken", "search"),
                ("secret-out-of-sync", "search"),
            ],
        ),
        (
            "scenarios/disable_search_user.py",
            &[
                ("credential-in-use-removed", "search"),
                ("live-credential-broken", "search"),
                ("secret-out-of-sync", "search"),
            ],
        ),
    ];
    for (script_rel, want) in cases {
        let (out, report, text) = rehearse_script(&env, script_rel);
        out.assert_code(11);
        assert_eq!(blocking(&report), pairs(want), "{script_rel}: {report:#}");
        assert_eq!(report["rehearsal"]["live_unchanged"], true, "{script_rel}");
        assert_eq!(live_snapshot(&env), before, "{script_rel} changed live");
        no_leak(&env, &out, &text);
    }
    assert_before_state(&env, &["search", "items"]).await;
}

#[tokio::test]
async fn the_api_key_variant_is_predicted_with_the_key_copied_by_id() {
    let env = setup().await;
    unguarded(&env, "scenarios/seed_api_key.py");
    rehearsable(
        &env,
        "\n[[credentials]]\nkind = \"elasticsearch-api-key\"\napi_key_env = \"es_apikey\"\n",
    );
    let before = live_snapshot(&env);
    let (out, report, text) = rehearse_script(&env, "scenarios/rotate_api_key.py");
    out.assert_code(11);
    let got = blocking(&report);
    let key_secret = "elasticsearch/catalogue_api/search/api_key";
    for rule in ["live-credential-broken", "secret-rotated-without-redeploy"] {
        assert!(
            got.contains(&(rule.to_owned(), key_secret.to_owned())),
            "{rule} missing: {report:#}"
        );
    }
    assert!(report["rehearsal"]["seeded"]["api_keys"].as_u64().unwrap() >= 1);
    assert_eq!(report["rehearsal"]["live_unchanged"], true);
    assert_eq!(live_snapshot(&env), before);
    let mut secrets = env.replica.secret_values.clone();
    // The API key's own secret value, read from live, must not leak either.
    let sm = aws_sdk_secretsmanager::Client::new(&env.replica.account.sdk_config().await);
    let key = sm
        .get_secret_value()
        .secret_id(key_secret)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned();
    secrets.push(key);
    let hay = [
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("report", text.as_str()),
    ];
    assert_no_leak_named(&hay, &secrets);
}

/// A script that reads the Elasticsearch URL from Secrets Manager (a common
/// habit): with `extra_secrets` the secret is copied into the shadow and
/// pointed at the shadow's Elasticsearch, so the script breaks the shadow,
/// not live.
const FROM_SECRET: &str = r#"
import os, secrets, sys
import boto3
from elasticsearch import Elasticsearch
sm = boto3.client("secretsmanager")
url = sm.get_secret_value(SecretId="catalogue/es_endpoint")["SecretString"]
es = Elasticsearch(url, basic_auth=("elastic", os.environ["ES_PASSWORD"]))
es.security.change_password(username="search", password=secrets.token_hex())
print("changed search's password at the endpoint the secret names")
"#;

#[tokio::test]
async fn an_endpoint_read_from_a_secret_is_pointed_at_the_shadow() {
    let env = setup().await;
    rehearsable(&env, "extra_secrets = [\"catalogue/*\"]\n");
    let sm = aws_sdk_secretsmanager::Client::new(&env.replica.account.sdk_config().await);
    sm.create_secret()
        .name("catalogue/es_endpoint")
        .secret_string(&env.replica.es_url)
        .send()
        .await
        .unwrap();
    let before = live_snapshot(&env);
    std::fs::write(env.dir.path().join("from_secret.py"), FROM_SECRET).unwrap();
    let py = python().display().to_string();
    let (out, report, text) = opsguard(&env, &["rehearse"], &[&py, "from_secret.py"]);
    out.assert_code(11);
    assert!(
        blocking(&report).contains(&("live-credential-broken".into(), "search".into())),
        "{report:#}"
    );
    let r = &report["rehearsal"];
    assert_eq!(
        r["secrets_rewritten"],
        serde_json::json!(["catalogue/es_endpoint"])
    );
    assert_eq!(r["live_unchanged"], true, "{r:#}");
    assert_eq!(live_snapshot(&env), before);
    assert_before_state(&env, &["search"]).await;
    no_leak(&env, &out, &text);
}

#[tokio::test]
async fn a_config_with_aws_targets_is_refused_with_exit_13_before_live_is_read() {
    let env = setup().await;
    rehearsable(&env, "");
    let text = std::fs::read_to_string(&env.config).unwrap();
    let ecs = format!("[ecs]\nclusters = [{:?}]\n", env.replica.cluster);
    assert!(text.contains(&ecs), "{text}");
    let targets = format!(
        "[[aws.targets]]\nname = \"catalogue\"\naccount = {:?}\nclusters = [{:?}]\n\n[[aws.targets]]\nname = \"identity\"\naccount = \"222222222222\"\nclusters = [\"identity\"]\n\n[[credentials]]",
        env.replica.account.id, env.replica.cluster
    );
    let text = text
        .replace(&ecs, "")
        .replacen("[[credentials]]", &targets, 1);
    std::fs::write(&env.config, text).unwrap();
    let marker = env.dir.path().join("ran");
    let m = marker.display().to_string();
    for args in [&["rehearse"][..], &["run", "--rehearse"][..]] {
        let (out, report, _) = opsguard(&env, args, &["touch", &m]);
        out.assert_code(13);
        assert_eq!(report["outcome"], "preflight_failed", "{args:?}");
        assert!(!marker.exists(), "{args:?}: the command ran");
        let why = report["preflight_error"].as_str().unwrap();
        assert!(why.contains("one AWS account"), "{why}");
        assert!(
            why.contains("2 [[aws.targets]] (catalogue, identity)"),
            "{why}"
        );
        assert!(why.contains("help: rehearse one target at a time"), "{why}");
        assert!(out.stderr.contains("[[aws.targets]]"), "{}", out.stderr);
        // Refused before anything was read or started.
        let r = &report["rehearsal"];
        assert!(r["timings_ms"].as_object().unwrap().is_empty(), "{r:#}");
        assert_eq!(r["aws_endpoint"], "", "{r:#}");
    }
}
