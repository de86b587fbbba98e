//! `opsguard check --fix redeploy` end to end against ministack and the ES
//! double: the services whose running tasks hold a stale credential value
//! are redeployed with `run`'s remedy, and the fix is verified by a fresh
//! snapshot. What a redeploy cannot fix (a deleted user) is left alone and
//! named, with exit 11.

mod common;

use common::*;
use opsguard_testkit::{Cmd, Output};
use serde_json::Value;

/// `opsguard check [ARGS]` in the env's dir: output and JSON report.
fn check(env: &Env, args: &[&str]) -> (Output, Value, String) {
    let report = env.dir.path().join("check.json");
    let _ = std::fs::remove_file(&report);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
        .args(["check", "--config"])
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .args(args)
        .output();
    let text = std::fs::read_to_string(&report).unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (out, json, text)
}

/// ECS start times have whole-second resolution, and a task started in the
/// same second as a new secret version counts as fresh: let a second pass
/// between the seeded tasks and the rotation, as in any real environment.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn redeployed(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["remediation"]["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["kind"] == "redeploy")
                .map(|x| x["target"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Run ids, times, ports and temp paths out of a snapshot of human output.
fn snapshot_filtered(env: &Env, name: &str, text: &str) {
    let text = text.replace(&env.dir.path().display().to_string(), "[DIR]");
    let mut settings = opsguard_testkit::snap::settings(&[]);
    settings.set_prepend_module_to_snapshot(true);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[tokio::test]
async fn the_incident_rotation_is_redeployed_verified_and_check_is_clean_after() {
    let env = setup().await;
    next_second();
    // The 2021 script: ES passwords and secrets rotated, nothing redeployed.
    unguarded(&env, "create_elastic_users.py");
    let since = time::OffsetDateTime::now_utc().unix_timestamp() - 1;

    let (out, report, text) = check(&env, &["--fix", "redeploy"]);
    out.assert_code(10);
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(report["subcommand"], "check");
    assert_eq!(report["remediation"]["mode"], "redeploy");
    assert_eq!(report["remediation"]["verified"], true);
    let got = fired(&report);
    for user in ["search", "items"] {
        for rule in ["live-credential-broken", "secret-rotated-without-redeploy"] {
            assert!(
                got.contains(&(rule.to_owned(), user.to_owned())),
                "{rule} on {user} missing: {got:?}"
            );
        }
    }
    // Exactly the consumers of the rotated credentials, nothing else.
    let mut want = env.replica.consumer_refs("search");
    want.extend(env.replica.consumer_refs("items"));
    want.sort();
    assert_eq!(redeployed(&report), want);
    assert!(
        report["remediation"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] == "redeploy" && a["ok"] == true),
        "{report:#}"
    );
    assert_documented(&env, &report);
    assert_nothing_leaked(&env, &out, &text, &[]);
    // Journalled like a run: resumable from its folder.
    let run_id = only_run_id(&env);
    let journal = std::fs::read_to_string(
        env.dir
            .path()
            .join(".opsguard/runs")
            .join(&run_id)
            .join("journal.jsonl"),
    )
    .unwrap();
    assert!(journal.contains("\"redeploy\""), "{journal}");
    // Rolled forward, not back: the new passwords are the ones in use.
    assert!(!authenticates(&env, "search", env.replica.password("search")).await);
    // The tasks running now started after the rotation.
    let snap = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .output();
    snap.assert_code(0);
    let snap: Value = serde_json::from_str(&snap.stdout).unwrap();
    let mut checked = 0;
    for svc in snap["services"].as_array().unwrap() {
        let name = svc["service"].as_str().unwrap();
        if !want.iter().any(|w| w == name) {
            continue;
        }
        for t in svc["tasks"].as_array().unwrap() {
            let started = time::OffsetDateTime::parse(
                t["started_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
            .unix_timestamp();
            assert!(
                started >= since,
                "{name}: a task from before the fix is still running"
            );
            checked += 1;
        }
    }
    assert!(checked >= want.len(), "{checked} tasks checked");

    // And now nothing is left to fix, with or without --fix.
    let (after, report, _) = check(&env, &[]);
    after.assert_code(0);
    assert!(fired(&report)
        .iter()
        .all(|(r, _)| r == "shared-credential-across-environments"));
    let (again, report, _) = check(&env, &["--fix", "redeploy"]);
    again.assert_code(0);
    assert!(report["remediation"].is_null(), "{report:#}");
    assert!(redeployed(&report).is_empty());
    assert!(fired(&report)
        .iter()
        .all(|(r, _)| r == "shared-credential-across-environments"));
}

#[tokio::test]
async fn a_deleted_user_cannot_be_fixed_by_a_redeploy_and_says_why() {
    let env = setup().await;
    next_second();
    unguarded(&env, "scenarios/delete_search_user.py");
    let (out, report, _) = check(&env, &["--fix", "redeploy"]);
    out.assert_code(11);
    assert_eq!(report["outcome"], "violated", "{report:#}");
    assert!(
        report["remediation"].is_null(),
        "nothing was redeployed: {report:#}"
    );
    let notes = report["notes"].to_string();
    assert!(notes.contains("a redeploy cannot fix this"), "{notes}");
    assert!(
        notes.contains("Elasticsearch has no user `search` (deleted?)"),
        "{notes}"
    );
    assert!(
        !notes.contains("--on-violation"),
        "check has no such flag: {notes}"
    );
    snapshot_filtered(&env, "check_fix_redeploy_cannot_human", &out.stderr);
    assert!(
        fired(&report)
            .iter()
            .any(|(r, t)| r == "secret-out-of-sync" && t == "search"),
        "{report:#}"
    );
    // No run folder: nothing was journalled because nothing was done.
    assert!(!env.dir.path().join(".opsguard/runs").exists());
    assert!(
        out.stderr.contains("a redeploy cannot fix this"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_healthy_environment_needs_nothing() {
    let env = setup().await;
    let (out, report, _) = check(&env, &["--fix", "redeploy"]);
    out.assert_code(0);
    assert!(report["remediation"].is_null(), "{report:#}");
    assert!(!env.dir.path().join(".opsguard/runs").exists());
}

#[tokio::test]
async fn human_output_of_a_fix() {
    let env = setup().await;
    next_second();
    unguarded(&env, "create_elastic_users.py");
    let (out, _, _) = check(&env, &["--fix", "redeploy"]);
    out.assert_code(10);
    only_run_id(&env);
    snapshot_filtered(&env, "check_fix_redeploy_human", &out.stderr);
}

/// A fix killed half-way (after its second redeploy started) is finished by
/// `opsguard resume`, from the journal and the held snapshot of its folder.
#[cfg(feature = "failpoints")]
#[tokio::test]
async fn a_fix_killed_half_way_is_finished_by_resume() {
    let env = setup().await;
    next_second();
    unguarded(&env, "create_elastic_users.py");
    let killed = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .env("OPSGUARD_FAILPOINT", "kill-after-started:2")
        .current_dir(env.dir.path())
        .args(["check", "--fix", "redeploy", "--config"])
        .arg(&env.config)
        .output();
    killed.assert_code(128 + 9);
    let run_id = only_run_id(&env);
    let (out, report) = resume_run(&env, &run_id, &[]);
    out.assert_code(10);
    assert_eq!(report["remediation"]["verified"], true, "{report:#}");
    let mut want = env.replica.consumer_refs("search");
    want.extend(env.replica.consumer_refs("items"));
    want.sort();
    assert_eq!(redeployed(&report), want, "{report:#}");
    let (after, _, _) = check(&env, &["--fix", "redeploy"]);
    after.assert_code(0);
}

/// ECS refuses every new deployment: the fix fails, says so, and exits 12.
#[tokio::test]
async fn a_redeploy_that_fails_exits_12() {
    use opsguard_testkit::proxy::{Fault, FaultProxy, Match};
    let env = setup().await;
    next_second();
    unguarded(&env, "create_elastic_users.py");
    let proxy = FaultProxy::start(&env.replica.account.endpoint);
    proxy.add(Match::aws("UpdateService"), Fault::AwsInternal, None);
    let ep = &env.replica.account.endpoint;
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace(&format!("\"{ep}\""), &format!("\"{}\"", proxy.url()));
    std::fs::write(&env.config, text).unwrap();
    let (out, report, text) = check(&env, &["--fix", "redeploy"]);
    out.assert_code(12);
    assert!(proxy.faults() > 0);
    assert_eq!(report["outcome"], "remediation_failed", "{report:#}");
    assert_eq!(report["remediation"]["verified"], false);
    let failed: Vec<&Value> = report["remediation"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "redeploy" && a["ok"] == false)
        .collect();
    assert!(!failed.is_empty(), "{report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("opsguard resume"), "{notes}");
    assert!(out.stderr.contains("a human is needed"), "{}", out.stderr);
    assert_nothing_leaked(&env, &out, &text, &[]);
}
