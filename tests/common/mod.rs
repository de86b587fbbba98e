//! Helpers shared by the end-to-end tests of `run`, remedies and `resume`:
//! a seeded incident replica per test, the scenario scripts, and scanning
//! for leaked secrets.
//!
//! Each test binary compiles this module and uses part of it, so every helper
//! that some binary leaves unused says which binaries use it, rather than one
//! allowance for the whole file hiding a helper nobody uses any more.

use es_double::EsDouble;
use opsguard_testkit::ministack::{venv_dir, workspace_root};
use opsguard_testkit::schema::{assert_conforms, Schema};
use opsguard_testkit::{assert_no_leak_named, seed, Cmd, Ministack, Output, Replica};
use serde_json::Value;
use std::path::PathBuf;

pub const ADMIN_PW: &str = "elastic-admin-pw-2b9e";

pub struct Env {
    /// Held so the double lives as long as the test (it stops on drop).
    #[allow(
        dead_code,
        reason = "read by some tests only; always held for its lifetime"
    )]
    pub es: EsDouble,
    pub replica: Replica,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub async fn setup() -> Env {
    let account = Ministack::shared().fresh_account();
    let es = EsDouble::start(ADMIN_PW);
    let replica = seed(&account, &es, ADMIN_PW).await;
    let dir = tempfile::tempdir().unwrap();
    let config = replica.write_config(dir.path());
    Env {
        es,
        replica,
        dir,
        config,
    }
}

#[allow(
    dead_code,
    reason = "used by the accounts, ci_gate, hook, remedy, resume, run tests only"
)]
pub fn python() -> PathBuf {
    venv_dir().join("bin/python")
}

#[allow(
    dead_code,
    reason = "used by the accounts, ci_gate, hook, remedy, resume, run, snapshot tests only"
)]
pub fn script(rel: &str) -> PathBuf {
    workspace_root().join("examples/incident").join(rel)
}

/// Run a scenario script under `opsguard run --on-violation MODE`.
#[allow(dead_code, reason = "used by the remedy, resume, run tests only")]
pub fn guarded(env: &Env, mode: &str, script_rel: &str) -> (Output, Value, String) {
    guarded_with(env, mode, script_rel, &[], &[])
}

/// [`guarded`] with extra environment variables and `run` arguments.
#[allow(
    dead_code,
    reason = "used by the ci_gate, remedy, resume, run tests only"
)]
pub fn guarded_with(
    env: &Env,
    mode: &str,
    script_rel: &str,
    vars: &[(&str, &str)],
    args: &[&str],
) -> (Output, Value, String) {
    let command = [
        python().into_os_string(),
        script(script_rel).into_os_string(),
    ];
    guarded_command(env, mode, vars, args, &command)
}

/// `opsguard run --on-violation MODE [ARGS] -- COMMAND` in the env's dir,
/// with the admin identity in the environment: the output, the JSON report
/// (`null` when none was written) and its text.
#[allow(
    dead_code,
    reason = "used by the ci_gate, faults, remedy, resume, run tests only"
)]
pub fn guarded_command(
    env: &Env,
    mode: &str,
    vars: &[(&str, &str)],
    args: &[&str],
    command: &[std::ffi::OsString],
) -> (Output, Value, String) {
    let report = env.dir.path().join("report.json");
    let _ = std::fs::remove_file(&report);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .envs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .env("NO_COLOR", "1")
        .env("ES_URL", &env.replica.es_url)
        .env("ES_USERNAME", "elastic")
        .env("ES_PASSWORD", ADMIN_PW)
        .current_dir(env.dir.path())
        .args(["run", "--config"])
        .arg(&env.config)
        .args(["--on-violation", mode, "--report"])
        .arg(&report)
        .args(args)
        .arg("--")
        .args(command)
        .output();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out, json, text)
}

/// `opsguard resume RUN_ID` with extra environment variables: the output
/// and the JSON report (`null` when none was written).
#[allow(dead_code, reason = "used by the faults, resume tests only")]
pub fn resume_run(env: &Env, run_id: &str, vars: &[(&str, &str)]) -> (Output, Value) {
    let report = env.dir.path().join("resume.json");
    let _ = std::fs::remove_file(&report);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .envs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
        .args(["resume", run_id, "--config"])
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .output();
    let json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(Value::Null);
    (out, json)
}

/// Run a scenario script directly, without opsguard.
#[allow(dead_code, reason = "used by the ci_gate, hook, remedy tests only")]
pub fn unguarded(env: &Env, script_rel: &str) {
    Cmd::new(python())
        .envs(env.replica.env())
        .env("ES_URL", &env.replica.es_url)
        .env("ES_USERNAME", "elastic")
        .env("ES_PASSWORD", ADMIN_PW)
        .arg(script(script_rel))
        .output()
        .assert_code(0);
}

/// Whether `user:password` authenticates against the double right now.
#[allow(
    dead_code,
    reason = "used by the accounts, remedy, resume, snapshot tests only"
)]
pub async fn authenticates(env: &Env, user: &str, password: &str) -> bool {
    use elasticsearch::auth::Credentials;
    use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
    let t = TransportBuilder::new(SingleNodeConnectionPool::new(
        env.replica.es_url.parse().unwrap(),
    ))
    .auth(Credentials::Basic(user.into(), password.into()))
    .build()
    .unwrap();
    let resp = elasticsearch::Elasticsearch::new(t)
        .security()
        .authenticate()
        .send()
        .await
        .unwrap();
    resp.status_code().as_u16() == 200
}

/// The version AWSCURRENT is attached to, right now.
#[allow(dead_code, reason = "used by the accounts, remedy, resume tests only")]
pub async fn current_version(env: &Env, secret: &str) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&env.replica.account.sdk_config().await);
    let out = sm
        .list_secret_version_ids()
        .secret_id(secret)
        .send()
        .await
        .unwrap();
    let current: Vec<&str> = out
        .versions()
        .iter()
        .filter(|v| v.version_stages().iter().any(|s| s == "AWSCURRENT"))
        .map(|v| v.version_id().unwrap())
        .collect();
    assert_eq!(
        current.len(),
        1,
        "exactly one AWSCURRENT on {secret}: {current:?}"
    );
    current[0].to_owned()
}

/// Proof from the live state that `users` are as seeded: their original
/// passwords authenticate, and their secrets' AWSCURRENT is the seeded version.
#[allow(dead_code, reason = "used by the accounts, remedy, resume tests only")]
pub async fn assert_before_state(env: &Env, users: &[&str]) {
    for user in users {
        assert!(
            authenticates(env, user, env.replica.password(user)).await,
            "{user}'s original password no longer authenticates"
        );
        for field in ["username", "password"] {
            let s = env.replica.secret_of(user, field);
            assert_eq!(
                current_version(env, &s.name).await,
                s.version_id,
                "AWSCURRENT of {}",
                s.name
            );
        }
    }
}

/// The one run folder under `.opsguard/runs`.
#[allow(dead_code, reason = "used by the remedy, resume tests only")]
pub fn only_run_id(env: &Env) -> String {
    let runs: Vec<String> = std::fs::read_dir(env.dir.path().join(".opsguard/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// `(rule, target)` of every active violation, sorted.
#[allow(dead_code, reason = "used by the ci_gate, init, run tests only")]
pub fn fired(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations array in {report:#}"))
        .iter()
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

#[allow(dead_code, reason = "used by the init, run tests only")]
pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

/// Every file opsguard wrote for a run, as text, for leak scanning.
#[allow(dead_code, reason = "used by the ci_gate, remedy, run tests only")]
pub fn run_state(env: &Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let runs = env.dir.path().join(".opsguard/runs");
    for run in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push((
                f.path().display().to_string(),
                std::fs::read_to_string(f.path()).unwrap_or_default(),
            ));
        }
    }
    out
}

#[allow(dead_code, reason = "used by the ci_gate, remedy, run tests only")]
pub fn assert_nothing_leaked(env: &Env, out: &Output, report: &str, extra: &[String]) {
    let mut secrets = env.replica.secret_values.clone();
    secrets.extend_from_slice(extra);
    let state = run_state(env);
    assert!(!state.is_empty(), "run state was written");
    let mut hay: Vec<(&str, &str)> = vec![
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("report", report),
    ];
    hay.extend(state.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    assert_no_leak_named(&hay, &secrets);
}

/// The report matches the published JSON Schema (`docs/schema/report.v1.json`),
/// and so does every snapshot the run saved (`docs/schema/snapshot.v1.json`):
/// the documented contract checked against real output.
#[allow(dead_code, reason = "used by the remedy, run tests only")]
pub fn assert_documented(env: &Env, report: &Value) {
    assert_conforms(Schema::Report, report);
    let runs = env.dir.path().join(".opsguard/runs");
    let mut snapshots = 0;
    for run in std::fs::read_dir(&runs).into_iter().flatten().flatten() {
        for name in ["before.json", "after.json"] {
            let Ok(text) = std::fs::read_to_string(run.path().join(name)) else {
                continue;
            };
            let snap: Value = serde_json::from_str(&text).unwrap();
            assert_conforms(Schema::Snapshot, &snap);
            snapshots += 1;
        }
    }
    assert!(
        snapshots > 0,
        "the run saved no snapshot under {}",
        runs.display()
    );
}

/// Lines of stderr formatted as log records: a leading timestamp, or a
/// level word where a record has it.
#[allow(dead_code, reason = "used by the cli_misc, remedy tests only")]
pub fn log_records(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            let b = l.as_bytes();
            let stamped = b.len() > 11
                && b[..4].iter().all(u8::is_ascii_digit)
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T';
            let first = l.split_whitespace().next().unwrap_or("");
            stamped || ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&first)
        })
        .collect()
}

/// The violation of `rule` on `target` in a JSON report, or a panic that
/// shows the report.
#[allow(dead_code, reason = "used by the plan, rehearse, run tests only")]
pub fn violation<'a>(report: &'a Value, rule: &str, target: &str) -> &'a Value {
    report["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("no violations in {report:#}"))
        .iter()
        .find(|v| v["rule"] == rule && v["target"] == target)
        .unwrap_or_else(|| panic!("no {rule} on {target}: {report:#}"))
}

/// Every consumed credential is consistent: the value its secret holds now
/// is one Elasticsearch accepts (no task started now would fail).
#[allow(dead_code, reason = "used by the faults, resume tests only")]
pub async fn assert_consistent(env: &Env, users: &[&str]) {
    for user in users {
        let s = env.replica.secret_of(user, "password");
        let value = current_value(env, &s.name).await;
        assert!(
            authenticates(env, user, &value).await,
            "{user}: AWSCURRENT of {} holds a password Elasticsearch refuses",
            s.name
        );
    }
}

/// Kill the rollback at `failpoint`, resume it, and check the before state
/// is back. Returns resume's stderr.
#[allow(dead_code, reason = "used by the faults, resume tests only")]
pub async fn killed_then_resumed(failpoint: &str) -> String {
    let env = setup().await;
    let (out, _, _) = guarded_with(
        &env,
        "rollback",
        "create_elastic_users.py",
        &[("OPSGUARD_FAILPOINT", failpoint)],
        &[],
    );
    out.assert_code(128 + 9);
    let run = only_run_id(&env);
    let (out, report) = resume_run(&env, &run, &[]);
    out.assert_code(10);
    assert_eq!(report["outcome"], "remediated", "{failpoint}: {report:#}");
    assert_eq!(report["remediation"]["verified"], true);
    assert_before_state(&env, &["search", "items"]).await;
    assert_consistent(&env, &["search", "items"]).await;
    // The unconsumed users were not touched by the resumed remedy either.
    assert!(!authenticates(&env, "diff_tool", env.replica.password("diff_tool")).await);
    let mut secrets = env.replica.secret_values.clone();
    secrets.sort();
    opsguard_testkit::assert_no_leak_named(
        &[
            ("resume stdout", &out.stdout),
            ("resume stderr", &out.stderr),
        ],
        &secrets,
    );

    // Resuming a finished remedy changes nothing and verifies again.
    let (again, _) = resume_run(&env, &run, &[]);
    again.assert_code(10);
    out.stderr
}

/// The current AWSCURRENT value of a secret, read directly (not through a proxy).
#[allow(dead_code, reason = "used by the faults, resume tests only")]
pub async fn current_value(env: &Env, secret: &str) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&env.replica.account.sdk_config().await);
    sm.get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}
