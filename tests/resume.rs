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
