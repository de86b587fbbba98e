//! `opsguard rules list | test [DIR]` through the binary: what a person
//! sees, and the exit codes scripts branch on (0 ok, 1 a test failed, 2 a
//! rule or waiver does not load). Offline: no emulator, no ES double.

use opsguard_testkit::{Cmd, Output};
use std::path::Path;

/// A user rule (not in the built-in pack), one file shared by the unit
/// tests in src/cli/rules.rs and these.
const RULE: &str = include_str!("fixtures/secret-scheduled-for-deletion.toml");

const CONFIG: &str = r#"
[elasticsearch]
url = "https://es.example:9243"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[ecs]
clusters = ["catalogue"]

[rules]
paths = ["my-rules"]
"#;

fn opsguard(dir: &Path) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn last_line(out: &Output) -> &str {
    out.stdout.lines().last().unwrap_or("")
}

#[test]
fn list_without_a_config_shows_the_builtin_pack() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{}", out.stdout);
    for id in [
        "plan-credential-replaced",
        "plan-password-changed",
        "plan-secret-rotated-without-redeploy",
        "plan-runs-provisioner",
        "plan-desired-count-changed",
        "live-credential-broken",
        "secret-rotated-without-redeploy",
        "secret-out-of-sync",
        "credential-in-use-removed",
        "credential-in-use-lost-roles",
        "service-degraded",
        "desired-count-changed",
        "shared-credential-across-environments",
    ] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", out.stdout));
        assert!(row.contains(" built-in "), "{row}");
    }
}

#[test]
fn test_runs_the_builtin_tests() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard(dir.path()).args(["rules", "test"]).output();
    out.assert_code(0);
    let n = out.stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(n >= 24, "{}", out.stdout);
    assert_eq!(last_line(&out), format!("{n} passed, 0 failed"));
}

#[test]
fn test_dir_with_a_failing_test_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "extra/failing.toml",
        &RULE.replace("expect = \"fire\"", "expect = \"pass\""),
    );
    let out = opsguard(dir.path())
        .args(["rules", "test", "extra"])
        .output();
    out.assert_code(1);
    assert!(
        out.stdout.contains(
            "FAILED  secret-scheduled-for-deletion: scheduled (extra/failing.toml:10:1): expected pass, got fire"
        ),
        "{}",
        out.stdout
    );
    assert!(
        last_line(&out).ends_with(" passed, 1 failed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_rule_that_does_not_load_exits_2_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "extra/bad.toml",
        &RULE.replace("secret.live &&", "secret.alive &&"),
    );
    let out = opsguard(dir.path())
        .args(["rules", "test", "extra"])
        .output();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("extra/bad.toml:5:16: `secret` has no fact `alive`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `secret.live`?"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn the_config_adds_rule_paths_and_its_waivers_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "my-rules/mine.toml", RULE);
    write(
        dir.path(),
        "my-rules/scale.toml",
        &RULE.replace(
            "id = \"secret-scheduled-for-deletion\"",
            "id = \"desired-count-changed\"",
        ),
    );
    write(dir.path(), "opsguard.toml", CONFIG);
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 15, "{}", out.stdout);
    assert!(
        out.stdout.contains("(overrides built-in)"),
        "{}",
        out.stdout
    );
    let out = opsguard(dir.path()).args(["rules", "test"]).output();
    out.assert_code(0);

    write(
        dir.path(),
        "opsguard.toml",
        &format!(
            "{CONFIG}\n[[waivers]]\nrule = \"shared-credential\"\ntarget = \"search\"\nreason = \"ticket 123\"\nexpires = \"2099-01-31\"\n"
        ),
    );
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("waiver names rule `shared-credential`, which is not a rule in force"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("opsguard.toml:"), "{}", out.stderr);
}
