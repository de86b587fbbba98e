//! `opsguard hook install` and the pre-push hook it writes, in real git
//! repositories: where the hook goes, what it refuses, forces and chains, and
//! — run directly, as git would — that it passes on a healthy replica of the
//! 2021 environment and stops a push when that environment is broken, when a
//! waiver has expired, or when a rule's own test fails.

mod common;

use common::*;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MARKER: &str = "# opsguard-managed-hook: pre-push";
const REFS: &str = "refs/heads/main 1111111111111111111111111111111111111111 refs/heads/main 0000000000000000000000000000000000000000\n";

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh repository, as `git init` makes it.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["config", "user.name", "opsguard test"]);
    git(
        dir.path(),
        &["config", "user.email", "test@opsguard.invalid"],
    );
    dir
}

fn opsguard_at(bin: &Path, dir: &Path) -> Cmd {
    Cmd::new(bin).current_dir(dir).env("NO_COLOR", "1")
}

fn install(dir: &Path, flags: &[&str]) -> Output {
    opsguard_at(Path::new(env!("CARGO_BIN_EXE_opsguard")), dir)
        .args(["hook", "install"])
        .args(flags)
        .output()
}

fn hook_path(repo: &Path) -> PathBuf {
    repo.join(".git/hooks/pre-push")
}

/// Run the hook as git would: `pre-push REMOTE URL`, the refs on stdin.
fn run_hook(repo: &Path, cwd: &Path, vars: &[(String, String)]) -> Output {
    Cmd::new("sh")
        .arg(hook_path(repo))
        .args(["origin", "https://git.example.invalid/catalogue.git"])
        .stdin(REFS)
        .current_dir(cwd)
        .envs(vars.iter().cloned())
        .env("NO_COLOR", "1")
        .output()
}

fn write_hook(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A config that loads offline (no password read) with an expired waiver.
const EXPIRED_WAIVER: &str = r#"[elasticsearch]
url = "http://127.0.0.1:9"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[ecs]
clusters = ["catalogue-api-2021-04-26"]

[[waivers]]
rule = "shared-credential-across-environments"
target = "search"
reason = "prod and stage shared users until ticket 123"
expires = "2021-07-27"
"#;

#[test]
fn install_writes_an_executable_hook_and_reinstalling_changes_nothing() {
    let repo = repo();
    let out = install(repo.path(), &[]);
    out.assert_code(0);
    let path = hook_path(repo.path());
    let text = std::fs::read_to_string(&path).expect("the hook was written");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable: {mode:o}");
    assert!(text.starts_with("#!/bin/sh\n"), "{text}");
    assert!(text.lines().any(|l| l == MARKER), "{text}");
    let bin = Path::new(env!("CARGO_BIN_EXE_opsguard"))
        .canonicalize()
        .unwrap();
    assert!(
        text.contains(&format!("recorded='{}'", bin.display())),
        "the binary's absolute path is recorded:\n{text}"
    );
    assert!(out.stderr.contains("--no-verify"), "{}", out.stderr);
    let bin = Path::new(env!("CARGO_BIN_EXE_opsguard"));
    opsguard_testkit::snap::settings(&[
        (
            opsguard_testkit::snap::literal(&bin.canonicalize().unwrap().display().to_string()),
            "[OPSGUARD]",
        ),
        (
            opsguard_testkit::snap::literal(&bin.display().to_string()),
            "[OPSGUARD]",
        ),
    ])
    .bind(|| insta::assert_snapshot!("hook_install_human", out.stderr));

    let again = install(repo.path(), &[]);
    again.assert_code(0);
    assert!(
        again.stderr.contains("already installed"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn the_hook_goes_where_git_looks_for_hooks() {
    let repo = repo();
    git(repo.path(), &["config", "core.hooksPath", ".githooks"]);
    let sub = repo.path().join("deploy/scripts");
    std::fs::create_dir_all(&sub).unwrap();
    install(&sub, &[]).assert_code(0);
    let text = std::fs::read_to_string(repo.path().join(".githooks/pre-push"))
        .expect("core.hooksPath, relative to the root, not to the working directory");
    assert!(text.contains(MARKER));
    assert!(!hook_path(repo.path()).exists());

    let outside = tempfile::tempdir().unwrap();
    let out = install(outside.path(), &[]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("not inside a git repository"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_foreign_hook_is_refused_unless_forced() {
    let repo = repo();
    let path = hook_path(repo.path());
    let foreign = "#!/bin/sh\necho 'lint before push'\n";
    write_hook(&path, foreign);

    let out = install(repo.path(), &[]);
    out.assert_code(2);
    assert!(out.stderr.contains("did not write"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--chain") && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        foreign,
        "left alone"
    );

    install(repo.path(), &["--force"]).assert_code(0);
    assert!(std::fs::read_to_string(&path).unwrap().contains(MARKER));
    let kept = path.with_file_name("pre-push.opsguard-replaced");
    assert_eq!(
        std::fs::read_to_string(kept).unwrap(),
        foreign,
        "a copy is kept"
    );
    assert!(!path.with_file_name("pre-push.opsguard-chained").exists());
}

#[test]
fn a_chained_hook_runs_first_with_the_push_arguments_and_its_failure_stops_the_push() {
    let repo = repo();
    let path = hook_path(repo.path());
    let log = repo.path().join("chained.log");
    write_hook(
        &path,
        &format!(
            "#!/bin/sh\necho \"args: $*\" > '{log}'\ncat >> '{log}'\nexit 3\n",
            log = log.display()
        ),
    );
    install(repo.path(), &["--chain"]).assert_code(0);
    let chained = path.with_file_name("pre-push.opsguard-chained");
    assert!(std::fs::read_to_string(&chained)
        .unwrap()
        .contains("exit 3"));
    assert!(std::fs::read_to_string(&path).unwrap().contains(MARKER));

    let out = run_hook(repo.path(), repo.path(), &[]);
    out.assert_code(3);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("args: origin https://git.example.invalid/catalogue.git\n{REFS}")
    );
    assert!(out.stderr.contains("failed (exit 3)"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("opsguard pre-push: opsguard"),
        "no opsguard step after a failed chained hook: {}",
        out.stderr
    );

    // Re-installing keeps the chain; a second foreign hook cannot take its place.
    install(repo.path(), &[]).assert_code(0);
    assert!(chained.exists());
    write_hook(&path, "#!/bin/sh\nexit 0\n");
    let out = install(repo.path(), &["--chain"]);
    out.assert_code(2);
    assert!(out.stderr.contains("exists already"), "{}", out.stderr);
}

#[test]
fn the_hook_fails_on_an_expired_waiver_in_the_configured_file() {
    let repo = repo();
    install(repo.path(), &[]).assert_code(0);
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("catalogue.toml");
    std::fs::write(&config, EXPIRED_WAIVER).unwrap();

    let out = run_hook(
        repo.path(),
        repo.path(),
        &[("OPSGUARD_CONFIG".into(), config.display().to_string())],
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("expired on 2021-07-27"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`opsguard rules test` failed (exit 2)"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_hook_fails_on_a_rule_whose_test_fails_at_the_repository_root() {
    let repo = repo();
    install(repo.path(), &[]).assert_code(0);
    let mut config = EXPIRED_WAIVER[..EXPIRED_WAIVER.find("[[waivers]]").unwrap()].to_owned();
    config.push_str("[rules]\npaths = [\"rules\"]\n");
    std::fs::write(repo.path().join("opsguard.toml"), config).unwrap();
    std::fs::create_dir(repo.path().join("rules")).unwrap();
    std::fs::write(
        repo.path().join("rules/scaled.toml"),
        r#"id = "scaled"
summary = "A desired count changed"
severity = "warn"
each = "services"
when = "service.desired_before != service.desired_after"
message = "service {id} scaled"
why = "capacity"
remedies = []

[[test]]
name = "wrongly expects a scale-up to pass"
expect = "pass"
[test.facts]
desired_before = 1
desired_after = 3
"#,
    )
    .unwrap();

    // From a subdirectory, as a push may be: the hook works from the root.
    let sub = repo.path().join("rules");
    let out = run_hook(repo.path(), &sub, &[]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("wrongly expects a scale-up to pass"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`opsguard rules test` failed (exit 1)"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_hook_finds_opsguard_on_path_when_the_recorded_binary_is_gone() {
    let repo = repo();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("opsguard");
    std::fs::copy(env!("CARGO_BIN_EXE_opsguard"), &copy).unwrap();
    opsguard_at(&copy, repo.path())
        .args(["hook", "install"])
        .output()
        .assert_code(0);
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(repo.path().join("opsguard.toml"), EXPIRED_WAIVER).unwrap();

    let real_dir = Path::new(env!("CARGO_BIN_EXE_opsguard")).parent().unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", real_dir.display());
    let out = run_hook(repo.path(), repo.path(), &[("PATH".into(), path)]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("expired on 2021-07-27"),
        "opsguard ran: {}",
        out.stderr
    );

    let out = run_hook(
        repo.path(),
        repo.path(),
        &[("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
    );
    out.assert_code(127);
    assert!(
        out.stderr.contains("cannot find opsguard"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_hook_passes_on_a_healthy_environment_and_stops_a_push_on_a_broken_one() {
    let env = setup().await;
    let repo = repo();
    env.replica.write_config(repo.path());
    let log = repo.path().join("chained.log");
    write_hook(
        &hook_path(repo.path()),
        &format!("#!/bin/sh\necho \"args: $*\" > '{}'\n", log.display()),
    );
    install(repo.path(), &["--chain"]).assert_code(0);
    let vars = env.replica.env();

    let out = run_hook(repo.path(), repo.path(), &vars);
    out.assert_code(0);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .starts_with("args: origin "));
    for step in ["rules test", "rules list", "check", "plan --if-configured"] {
        assert!(
            out.stderr
                .contains(&format!("opsguard pre-push: opsguard {step}\n")),
            "{step}: {}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("all checks passed"), "{}", out.stderr);

    // ES password changed, secret not: every running task's credential breaks.
    unguarded(&env, "scenarios/rotate_es_only.py");
    let broken = run_hook(repo.path(), repo.path(), &vars);
    broken.assert_code(11);
    assert!(
        broken.stderr.contains("secret-out-of-sync"),
        "{}",
        broken.stderr
    );
    assert!(
        broken.stderr.contains("`opsguard check` failed (exit 11)"),
        "{}",
        broken.stderr
    );
    let mut secrets = env.replica.secret_values.clone();
    secrets.extend(env.replica.passwords.values().cloned());
    for o in [&out, &broken] {
        assert_no_leak_named(&[("stdout", &o.stdout), ("stderr", &o.stderr)], &secrets);
    }
}

/// YAML as Python's PyYAML reads it (installed with ministack, which needs
/// it), as JSON.
fn yaml(path: &Path) -> serde_json::Value {
    let out = Cmd::new(python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output();
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
fn pre_commit_hooks_run_check_and_rules_test_before_a_push() {
    let hooks = yaml(&opsguard_testkit::ministack::workspace_root().join(".pre-commit-hooks.yaml"));
    let hooks = hooks.as_array().expect("a list of hooks");
    let find = |id: &str| {
        hooks
            .iter()
            .find(|h| h["id"] == id)
            .unwrap_or_else(|| panic!("no hook {id}: {hooks:#?}"))
    };
    for (id, entry) in [
        ("opsguard-check", "opsguard check"),
        ("opsguard-rules-test", "opsguard rules test"),
        ("opsguard-plan", "opsguard plan --if-configured"),
    ] {
        let h = find(id);
        assert_eq!(h["entry"], entry);
        // pre-commit builds opsguard from this repository (cargo install).
        assert_eq!(h["language"], "rust");
        assert_eq!(h["pass_filenames"], false);
        assert_eq!(h["stages"], serde_json::json!(["pre-push"]));
        assert!(h["name"].is_string());
    }
}
