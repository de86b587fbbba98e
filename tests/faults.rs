//! opsguard under bad luck: servers that fail, throttle and hang behind a
//! fault-injecting loopback proxy (see `opsguard_testkit::proxy`), an
//! identity that may read but not write, and a journal damaged on disk.
//! Each ends non-zero, never "ok", and never leaves a credential whose
//! secret holds a value Elasticsearch refuses.
//!
//! The crash points need feature `failpoints` (scripts/test enables it).

mod common;

use common::*;
use opsguard_testkit::proxy::{Fault, FaultProxy, Match};
use opsguard_testkit::Output;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The replica's config, pointed at `es_url` and/or `aws_url` instead.
fn config_via(env: &Env, es_url: Option<&str>, aws_url: Option<&str>, extra: &str) {
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    if let Some(u) = es_url {
        text = text.replace(&format!("\"{}\"", env.replica.es_url), &format!("\"{u}\""));
    }
    if let Some(u) = aws_url {
        let ep = &env.replica.account.endpoint;
        text = text.replace(&format!("\"{ep}\""), &format!("\"{u}\""));
    }
    text.push_str(extra);
    std::fs::write(&env.config, text).unwrap();
}

/// `opsguard run --on-violation MODE [ARGS] -- sh -c SCRIPT` in the env's dir.
fn run_sh(
    env: &Env,
    mode: &str,
    args: &[&str],
    vars: &[(&str, &str)],
    sh: &str,
) -> (Output, Value) {
    let command = ["sh".into(), "-c".into(), sh.into()];
    let (out, json, _) = guarded_command(env, mode, vars, args, &command);
    (out, json)
}

fn the_2021_script() -> String {
    format!(
        "{} {}",
        python().display(),
        script("create_elastic_users.py").display()
    )
}

fn kinds(report: &Value) -> Vec<(String, String, bool)> {
    report["remediation"]["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|a| {
                    (
                        a["kind"].as_str().unwrap_or("").to_owned(),
                        a["target"].as_str().unwrap_or("").to_owned(),
                        a["ok"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---- 1. A crash (or a failure) before the plan -------------------------------

/// Reproducible without timing: the after snapshot fails because only
/// `GET /_cluster/health` fails once the command is done; resume with ES
/// healthy must restore the passwords as well as the secrets.
#[tokio::test]
async fn an_after_snapshot_that_fails_is_finished_by_resume_with_the_passwords() {
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.es_url);
    let control = env.dir.path().join("faults");
    proxy.control_file(control.clone());
    config_via(&env, Some(&proxy.url()), None, "");
    let sh = format!(
        "{} && echo 'GET /_cluster/health 503' > {}",
        the_2021_script(),
        control.display()
    );
    let (out, report) = run_sh(&env, "rollback", &[], &[], &sh);
    out.assert_code(12);
    assert_eq!(report["outcome"], "remediation_failed", "{report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("no remedy was attempted"), "{notes}");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or("")
            .contains("after snapshot failed"),
        "{report:#}"
    );
    assert!(proxy.faults() > 0);

    std::fs::remove_file(&control).unwrap();
    let run = only_run_id(&env);
    let (out, report) = resume_run(&env, &run, &[]);
    out.assert_code(10);
    assert!(
        kinds(&report).iter().any(|k| k.0 == "es-password" && k.2),
        "the password is restored too: {report:#}"
    );
    assert_before_state(&env, &["search", "items"]).await;
    assert_consistent(&env, &["search", "items"]).await;
    let (again, _) = resume_run(&env, &run, &[]);
    again.assert_code(10);
}

/// Every moment between the command's exit and the end of the remedy that
/// the step kills (tests/resume.rs) do not cover.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn killed_between_the_command_and_the_plan_and_after_it() {
    for point in [
        "kill-at:after-command",
        "kill-at:after-snapshot",
        "kill-at:after-facts",
        "kill-at:after-plan",
        "kill-at:after-verified",
    ] {
        killed_then_resumed(point).await;
    }
}

// ---- 2. Steps of one credential succeed or fail together ----------------------

/// An admin identity that may read users but not change them.
async fn read_only_identity(env: &Env) -> (String, String) {
    let pw = "ops-read-only-pw-77aa".to_owned();
    use elasticsearch::auth::Credentials;
    use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
    use elasticsearch::security::{SecurityPutRoleParts, SecurityPutUserParts};
    let t = TransportBuilder::new(SingleNodeConnectionPool::new(
        env.replica.es_url.parse().unwrap(),
    ))
    .auth(Credentials::Basic("elastic".into(), ADMIN_PW.into()))
    .build()
    .unwrap();
    let es = elasticsearch::Elasticsearch::new(t);
    let r = es
        .security()
        .put_role(SecurityPutRoleParts::Name("ops_ro"))
        .body(serde_json::json!({"cluster": ["monitor", "read_security"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status_code().is_success(), "role: {}", r.status_code());
    let r = es
        .security()
        .put_user(SecurityPutUserParts::Username("ops_ro"))
        .body(serde_json::json!({"password": pw, "roles": ["ops_ro"]}))
        .send()
        .await
        .unwrap();
    assert!(r.status_code().is_success(), "user: {}", r.status_code());
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("username = \"elastic\"", "username = \"ops_ro\"");
    std::fs::write(&env.config, text).unwrap();
    ("OPSGUARD_ES_PASSWORD".into(), pw)
}

#[tokio::test]
async fn an_identity_without_manage_security_is_refused_before_the_command() {
    let env = setup().await;
    let (k, v) = read_only_identity(&env).await;
    let marker = env.dir.path().join("ran");
    let sh = format!("touch {}", marker.display());
    let (out, report) = run_sh(&env, "rollback", &[], &[(&k, &v)], &sh);
    out.assert_code(13);
    assert!(!marker.exists(), "the command was not run");
    let why = report["preflight_error"].as_str().unwrap_or("");
    assert!(why.contains("manage_security"), "{report:#}");
    assert!(why.contains("ops_ro"), "{why}");
    assert!(out.stderr.contains("manage_security"), "{}", out.stderr);
    // Block mode needs no write privilege.
    let (out, _) = run_sh(&env, "block", &[], &[(&k, &v)], &sh);
    out.assert_code(0);
    assert!(marker.exists());
}

#[tokio::test]
async fn a_refused_password_keeps_the_secrets_where_es_agrees() {
    let env = setup().await;
    let (k, v) = read_only_identity(&env).await;
    let (out, report) = run_sh(
        &env,
        "rollback",
        &["--skip-preflight"],
        &[(&k, &v)],
        &the_2021_script(),
    );
    out.assert_code(12);
    let acts = kinds(&report);
    assert!(
        acts.iter().any(|a| a.0 == "es-password" && !a.2),
        "the password restore is refused: {acts:?}"
    );
    assert!(
        !acts.iter().any(|a| a.0 == "secret-current-back" && a.2),
        "no secret moved back while ES keeps the new password: {acts:?}"
    );
    assert!(report.to_string().contains("not moved back"), "{report:#}");
    // secret-out-of-sync does not newly fire: every secret matches ES.
    assert_consistent(&env, &["search", "items"]).await;
    let notes = report["notes"].to_string();
    assert!(!notes.contains("secret-out-of-sync"), "{notes}");
    assert!(notes.contains("--skip-preflight"), "{notes}");

    // Resumed with an identity that may write, the remedy re-plans from the
    // current state instead of doing nothing.
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("username = \"ops_ro\"", "username = \"elastic\"");
    std::fs::write(&env.config, text).unwrap();
    let run = only_run_id(&env);
    let (out, report) = resume_run(&env, &run, &[]);
    out.assert_code(10);
    assert!(
        report["notes"].to_string().contains("planned again"),
        "{report:#}"
    );
    assert_before_state(&env, &["search", "items"]).await;
}

#[tokio::test]
async fn a_throttled_secret_move_undoes_the_password_it_follows() {
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.account.endpoint);
    proxy.add(
        Match::aws("UpdateSecretVersionStage"),
        Fault::AwsThrottling,
        None,
    );
    config_via(&env, None, Some(&proxy.url()), "");
    let (out, report) = run_sh(&env, "rollback", &[], &[], &the_2021_script());
    out.assert_code(12);
    assert_ne!(report["outcome"], "ok");
    assert!(proxy.hits("POST / ") > 0);
    assert!(proxy.faults() > 0);
    let notes = report["notes"].to_string();
    assert!(notes.contains("undone"), "{notes}");
    assert_consistent(&env, &["search", "items"]).await;
}

// ---- 3. Hangs and failures end in a clear error, in bounded time --------------

#[tokio::test]
async fn a_hung_elasticsearch_is_named_within_the_timeout() {
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.es_url);
    proxy.add(Match::path("GET", "/_cluster/health"), Fault::Hang, None);
    config_via(&env, Some(&proxy.url()), None, "");
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[aws]", "timeout_seconds = 2\n\n[aws]");
    std::fs::write(&env.config, text).unwrap();
    let started = Instant::now();
    let (out, report) = run_sh(&env, "rollback", &[], &[], "true");
    let took = started.elapsed();
    out.assert_code(13);
    let why = report["preflight_error"].as_str().unwrap_or("");
    assert!(
        why.contains("timed out after 2 s waiting for Elasticsearch GET /_cluster/health"),
        "{why}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    eprintln!("FIGURE hung-es time-to-error: {took:?}");
}

#[tokio::test]
async fn a_hung_aws_is_named_within_the_timeout() {
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.account.endpoint);
    proxy.add(Match::aws("DescribeClusters"), Fault::Hang, None);
    config_via(&env, None, Some(&proxy.url()), "");
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[ecs]", "timeout_seconds = 3\n\n[ecs]");
    std::fs::write(&env.config, text).unwrap();
    let started = Instant::now();
    let (out, report) = run_sh(&env, "rollback", &[], &[], "true");
    let took = started.elapsed();
    out.assert_code(13);
    assert_eq!(report["outcome"], "preflight_failed");
    // The cause, the wait and the setting, in words.
    assert!(
        report["preflight_error"]
            .as_str()
            .unwrap_or("")
            .contains("timed out after 3 s waiting for AWS"),
        "{report:#}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    eprintln!("FIGURE hung-aws time-to-error: {took:?}");
}

/// Faults of every kind, before and after the command: none ends "ok".
#[tokio::test]
async fn every_injected_fault_fails_closed() {
    let env = setup().await;
    let es = FaultProxy::start(&env.replica.es_url);
    let aws = FaultProxy::start(&env.replica.account.endpoint);
    config_via(&env, Some(&es.url()), Some(&aws.url()), "");
    let faults: Vec<(&FaultProxy, Match, Fault)> = vec![
        (
            &es,
            Match::path("GET", "/_security/user"),
            Fault::Status(503),
        ),
        (
            &es,
            Match::path("GET", "/_cluster/health"),
            Fault::Status(429),
        ),
        (&es, Match::path("GET", "/"), Fault::Status(500)),
        (&aws, Match::aws("ListSecrets"), Fault::AwsInternal),
        (&aws, Match::aws("DescribeServices"), Fault::AwsThrottling),
        (&aws, Match::aws("BatchGetSecretValue"), Fault::AwsInternal),
    ];
    let mut tried = 0;
    for (proxy, when, fault) in faults {
        proxy.add(when.clone(), fault.clone(), None);
        let (out, report) = run_sh(&env, "rollback", &[], &[], "true");
        proxy.clear();
        tried += 1;
        assert_ne!(out.status_code, 0, "{when:?} {fault:?}: {}", out.stderr);
        assert_ne!(report["outcome"], "ok", "{when:?} {fault:?}");
        assert!(proxy.faults() > 0, "{when:?} was hit");
    }
    eprintln!("FIGURE faults tried {tried}, failed closed {tried}");
}

// ---- 4. A damaged journal -------------------------------------------------------

#[tokio::test]
async fn a_damaged_journal_is_named_not_a_panic() {
    let env = setup().await;
    let (out, _, _) = guarded(&env, "rollback", "create_elastic_users.py");
    out.assert_code(10);
    let run = only_run_id(&env);
    let journal = env
        .dir
        .path()
        .join(".opsguard/runs")
        .join(&run)
        .join("journal.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mid = lines.len() / 2;
    let mut damaged: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    damaged.insert(mid, "garbage {".into());
    damaged.push("{\"seq\":99,\"at\":\"x\",\"event\":\"done\",\"step\":999}".into());
    text = damaged.join("\n") + "\n";
    std::fs::write(&journal, text).unwrap();
    let (out, report) = resume_run(&env, &run, &[]);
    assert_ne!(out.status_code, 101, "no panic: {}", out.stderr);
    out.assert_code(10);
    let notes = report["notes"].to_string();
    assert!(
        notes.contains(&format!("journal.jsonl:{}", mid + 1)),
        "{notes}"
    );
    assert!(notes.contains("step 999"), "{notes}");
}

// ---- 5. A custom rule that fails at run time -------------------------------------

#[tokio::test]
async fn a_broken_custom_rule_fails_closed_but_the_others_are_still_remedied() {
    let env = setup().await;
    let rules = env.dir.path().join("myrules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("sixth-consumer.toml"),
        r#"id = "sixth-consumer"
summary = "Reads a sixth consumer, which no credential has"
severity = "warn"
each = "credentials"
when = 'credential.stale_tasks == 0 || credential.consumers[5] == "x"'
message = "credential {id}: sixth consumer"
why = "A rule that fails at run time."
remedies = []

[[test]]
name = "no stale task"
expect = "fire"
[test.facts]
id = "search"
"#,
    )
    .unwrap();
    config_via(&env, None, None, "\n[rules]\npaths = [\"myrules\"]\n");
    let (out, report) = run_sh(&env, "rollback", &[], &[], &the_2021_script());
    out.assert_code(12);
    assert_eq!(report["outcome"], "remediation_failed", "{report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("sixth-consumer"), "{notes}");
    assert!(notes.contains("could not be evaluated"), "{notes}");
    assert!(
        kinds(&report).iter().any(|k| k.0 == "es-password" && k.2),
        "the built-in rules' violations are still remedied: {report:#}"
    );
    assert_before_state(&env, &["search", "items"]).await;
}

/// On a terminal, a hung Elasticsearch is not silence: the progress line
/// names what is waited for, its elapsed time counting, until the timeout
/// names the cause.
#[tokio::test]
async fn a_hung_elasticsearch_shows_what_is_waited_for_on_a_terminal() {
    use std::io::Read;
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("SKIPPED: util-linux `script` is not installed, so no terminal to test on");
        return;
    }
    let env = setup().await;
    let proxy = FaultProxy::start(&env.replica.es_url);
    proxy.add(Match::path("GET", "/_cluster/health"), Fault::Hang, None);
    config_via(&env, Some(&proxy.url()), None, "");
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[aws]", "timeout_seconds = 3\n\n[aws]");
    std::fs::write(&env.config, text).unwrap();
    let line = format!(
        "'{}' check --config '{}'",
        env!("CARGO_BIN_EXE_opsguard"),
        env.config.display()
    );
    let started = Instant::now();
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line])
        // Its copy of the session goes to a file of the test's own, not
        // /dev/null (in some containers a plain file others read).
        .arg(env.dir.path().join("typescript"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("RUST_LOG")
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut first_line = None;
    let mut buf = [0u8; 4096];
    loop {
        let n = stdout.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if first_line.is_none() && seen.contains("snapshot: ") {
            first_line = Some(started.elapsed());
        }
        assert!(started.elapsed() < Duration::from_secs(60), "bounded");
    }
    let _ = child.wait();
    let took = started.elapsed();
    let waiting = "snapshot: Elasticsearch cluster, health and users…";
    assert!(seen.contains(waiting), "the wait is not named:\n{seen:?}");
    // Redrawn while it lasts, the elapsed time counting up.
    let redraws = seen.matches(waiting).count();
    let counted: std::collections::BTreeSet<&str> = seen
        .split(waiting)
        .skip(1)
        // The elapsed time drawn after the label: the first word like "1s".
        .filter_map(|rest| {
            rest.split_whitespace()
                .find(|w| w.ends_with('s') && w.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert!(redraws > 5, "{redraws} redraws:\n{seen:?}");
    assert!(counted.len() >= 2, "elapsed never counted: {counted:?}");
    // And the end names the cause.
    assert!(
        seen.contains("timed out after 3 s waiting for Elasticsearch GET /_cluster/health"),
        "{seen:?}"
    );
    let first = first_line.expect("a progress line");
    assert!(first < Duration::from_secs(2), "first line after {first:?}");
    eprintln!(
        "FIGURE hung-es on a terminal: first progress line after {first:?}, the wait named in {redraws} redraws, elapsed shown {counted:?}, cause named after {took:?}"
    );
}
