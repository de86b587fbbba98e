//! What a person reads when opsguard stops on an error: the message, its
//! cause said once, and the help — never an internal code such as
//! `opsguard::config::invalid`. Real runs of the binary, snapshotted, with
//! ports and temporary paths filtered.

mod common;

use common::*;
use opsguard_testkit::{Cmd, Output};

fn opsguard() -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
}

/// Ports and temporary folders differ each run.
fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"/tmp/[^\s`'\]\):]+", "[TMP]");
    s.add_filter(r"\.tmp[A-Za-z0-9]+", "[TMP]");
    s
}

/// No line of what a person reads names an internal error code.
fn assert_no_code(stderr: &str) {
    for l in stderr.lines() {
        assert!(
            !l.trim().starts_with("opsguard::"),
            "an error code: {stderr}"
        );
    }
    assert!(!stderr.contains("opsguard::"), "{stderr}");
}

fn stderr_of(out: &Output, code: i32) -> String {
    out.assert_code(code);
    assert_no_code(&out.stderr);
    out.stderr.clone()
}

#[test]
fn a_missing_config_says_which_file_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard()
        .current_dir(dir.path())
        .args(["check", "--config", "missing.toml"])
        .output();
    let text = stderr_of(&out, 2);
    assert!(text.contains("help:"), "{text}");
    settings().bind(|| insta::assert_snapshot!("missing_config", text));
}

#[test]
fn an_unknown_config_key_is_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsguard.toml");
    std::fs::write(
        &config,
        "[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"ES_PW\"\nbogus = 1\n",
    )
    .unwrap();
    let out = opsguard()
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .output();
    let text = stderr_of(&out, 2);
    assert!(text.contains("bogus"), "{text}");
    settings().bind(|| insta::assert_snapshot!("unknown_config_key", text));
}

#[tokio::test]
async fn a_command_that_does_not_exist_is_said_once() {
    let env = setup().await;
    let (out, _, _) = guarded_command(&env, "block", &[], &[], &["/no/such/command-j2".into()]);
    let text = stderr_of(&out, 2);
    // The cause is said once, not in the message and again below it.
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
    assert!(text.contains("help:"), "{text}");
    settings().bind(|| insta::assert_snapshot!("command_not_found", text));
}
