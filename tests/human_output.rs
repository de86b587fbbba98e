//! What a person reads: the human report on stderr of the real binary,
//! against ministack and the ES double, snapshotted with insta. Run ids,
//! times, version ids, task ids and paths are filtered, so the snapshots
//! hold only what the report says.
//!
//! Each test is one environment put through several commands in turn (a
//! seeded replica costs seconds).

mod common;

use common::*;
use opsguard_testkit::ministack::workspace_root;
use opsguard_testkit::{Cmd, Output};
use std::path::Path;

/// The human text of `out`, with what differs between runs filtered.
fn human(env: &Env, out: &Output) -> String {
    let python = python().display().to_string();
    let root = workspace_root().display().to_string();
    let dir = env.dir.path().display().to_string();
    out.stderr
        .replace(&python, "python3")
        .replace(&root, "[ROOT]")
        .replace(&dir, "[DIR]")
        .replace(&env.replica.account.id, "[ACCOUNT]")
}

fn settings() -> insta::Settings {
    // Secret version ids and task ids, shortened to eight characters.
    opsguard_testkit::snap::settings(&[
        (
            r"moved [0-9a-f]{8} → [0-9a-f]{8}".to_owned(),
            "moved [V1] → [V2]",
        ),
        (r"\btask [0-9a-f]{8}\b".to_owned(), "task [TASK]"),
    ])
}

fn opsguard(env: &Env, args: &[&str]) -> Output {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .output()
}

fn snapshot_to(env: &Env, file: &Path) {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .current_dir(env.dir.path())
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .arg("-o")
        .arg(file)
        .output()
        .assert_code(0);
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

/// A healthy `check`, a failing command, the 2021 incident under `run`, and
/// `diff` of the snapshots around it.
#[tokio::test]
async fn the_incident_and_its_neighbours_read_as_reviewed() {
    let env = setup().await;
    let s = settings();

    let out = opsguard(&env, &["check"]);
    out.assert_code(0);
    s.bind(|| insta::assert_snapshot!("real_check_healthy", human(&env, &out)));
    // check keeps no run folder: no run id to show.
    assert!(!out.stderr.contains("check 2"), "{}", out.stderr);

    // A failed command is not OK.
    let (out, report, _) = guarded_command(&env, "block", &[], &[], &["false".into()]);
    out.assert_code(1);
    assert_eq!(report["outcome"], "ok", "the JSON outcome is unchanged");
    assert!(!last_line(&out.stderr).starts_with("OK"), "{}", out.stderr);
    s.bind(|| insta::assert_snapshot!("real_run_false", human(&env, &out)));

    let before = env.dir.path().join("before.json");
    snapshot_to(&env, &before);
    let (out, report, _) = guarded(&env, "block", "create_elastic_users.py");
    out.assert_code(11);
    s.bind(|| insta::assert_snapshot!("real_incident_block", human(&env, &out)));
    // The run id shown is the run's folder, the one `resume` takes.
    let run_id = report["run_id"].as_str().unwrap();
    assert!(env.dir.path().join(".opsguard/runs").join(run_id).is_dir());
    assert!(
        out.stderr.contains(&format!("run {run_id} ·")),
        "{}",
        out.stderr
    );
    // Said once: the credential, and each rule's why.
    assert_eq!(out.stderr.matches("\ncredential search\n").count(), 1);
    assert_eq!(
        out.stderr
            .matches("ECS injects a secret into a task only when")
            .count(),
        1,
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("@@ secrets @@"), "the diff is -v only");

    let after = env.dir.path().join("after.json");
    snapshot_to(&env, &after);
    let diff = |extra: &[&str]| {
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .env("NO_COLOR", "1")
            .current_dir(env.dir.path())
            .arg("diff")
            .args(extra)
            .arg(&before)
            .arg(&after)
            .output()
    };
    let out = diff(&[]);
    out.assert_code(11);
    s.bind(|| insta::assert_snapshot!("real_diff", human(&env, &out)));
    // diff keeps no run folder either.
    assert!(!out.stderr.contains("diff 2"), "{}", out.stderr);
    // --quiet: the verdict line, and it is the full report's last line.
    let quiet = diff(&["--quiet"]);
    quiet.assert_code(11);
    assert_eq!(quiet.stderr.trim_end(), last_line(&out.stderr));
    assert!(quiet.stderr.starts_with("BLOCKED: "), "{}", quiet.stderr);
    // -v: the diff too.
    let verbose = diff(&["-v"]);
    assert!(
        verbose.stderr.contains("@@ secrets @@"),
        "{}",
        verbose.stderr
    );
}

/// The incident put right by `--on-violation redeploy`.
#[tokio::test]
async fn a_redeploy_reads_as_reviewed() {
    let env = setup().await;
    let (out, _, _) = guarded(&env, "redeploy", "create_elastic_users.py");
    out.assert_code(10);
    settings().bind(|| insta::assert_snapshot!("real_run_redeploy", human(&env, &out)));
    assert!(
        out.stderr
            .contains("  done:        redeploy applied (4 steps) and verified\n"),
        "{}",
        out.stderr
    );
}

/// A redeploy refused (the new value does not authenticate either), the
/// broken environment it leaves under `check`, and `--skip-preflight` on it.
#[tokio::test]
async fn a_refused_remedy_and_a_broken_check_say_what_is_true() {
    let env = setup().await;
    let (out, report, _) = guarded(&env, "redeploy", "scenarios/rotate_es_only.py");
    out.assert_code(12);
    let verdict = last_line(&out.stderr);
    assert!(
        verdict.contains(
            "; redeploy refused: credential search: its current value does not authenticate"
        ),
        "{verdict}"
    );
    assert!(!verdict.contains("could not be verified"), "{verdict}");
    let run_id = report["run_id"].as_str().unwrap();
    assert!(
        out.stderr
            .contains(&format!("  next:        opsguard resume {run_id} ")),
        "the real run id: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("RUN_ID"), "{}", out.stderr);

    let out = opsguard(&env, &["check"]);
    out.assert_code(11);
    settings().bind(|| insta::assert_snapshot!("real_check_broken", human(&env, &out)));
    // check has no before state to roll back to.
    assert!(!out.stderr.contains("roll back"), "{}", out.stderr);
    assert!(!out.stderr.contains("before state is in"), "{}", out.stderr);

    let (out, _, _) = guarded_command(&env, "block", &[], &["--skip-preflight"], &["true".into()]);
    assert!(!out.stderr.contains("not checked"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("already violated 1 blocking rule(s) before the command"),
        "{}",
        out.stderr
    );
}

/// A disabled user is called disabled; an unseen rotation is not "none".
#[tokio::test]
async fn headlines_name_the_real_state() {
    let env = setup().await;
    let (out, _, _) = guarded(&env, "block", "scenarios/disable_search_user.py");
    out.assert_code(11);
    assert!(
        out.stderr
            .contains("credential-in-use-removed: user search was disabled, while "),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("enabled false"), "{}", out.stderr);

    let env = setup().await;
    let (out, _, _) = guarded(&env, "block", "scenarios/rotate_unused_user.py");
    out.assert_code(0);
    assert!(!out.stderr.contains("changes: none\n"), "{}", out.stderr);
}
