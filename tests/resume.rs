//! `opsguard resume`: a rollback of the incident replica killed (SIGKILL) at
//! every one of its steps, and before it had even planned, is finished by
//! `resume`, which restores the before state every time.
//!
//! Needs the crash points of feature `failpoints` (scripts/test enables it).
#![cfg(feature = "failpoints")]

mod common;

use common::*;

/// The number of steps in the rollback of the 2021 script on the replica:
/// two passwords, two users' attributes, four secrets.
const STEPS: usize = 8;

/// Kill the rollback at `failpoint`, resume it, and check the before state
/// is back. Returns resume's stderr.
async fn killed_then_resumed(failpoint: &str) -> String {
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

#[tokio::test]
async fn killed_before_planning() {
    let stderr = killed_then_resumed("kill-at:before-plan").await;
    opsguard_testkit::snap::settings(&[]).bind(|| insta::assert_snapshot!("resume_human", stderr));
}

#[tokio::test]
async fn killed_at_every_step() {
    for step in 1..=STEPS {
        killed_then_resumed(&format!("kill-after-started:{step}")).await;
    }
}

#[tokio::test]
async fn the_step_count_is_what_the_kills_cover() {
    // If the plan grows a step, killed_at_every_step must cover it too.
    let env = setup().await;
    let (out, report, _) = guarded(&env, "rollback", "create_elastic_users.py");
    out.assert_code(10);
    assert_eq!(
        report["remediation"]["actions"].as_array().unwrap().len(),
        STEPS
    );
}

#[tokio::test]
async fn resuming_an_unknown_run_is_a_usage_error() {
    let env = setup().await;
    let (out, _) = resume_run(&env, "20990101T000000Z-dead", &[]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no run 20990101T000000Z-dead"),
        "{}",
        out.stderr
    );
    let (out, _) = resume_run(&env, "../etc", &[]);
    out.assert_code(2);
}
