//! The command line around the pipeline: `--verbose` showing the API calls
//! (never a secret), completions and the man page generated from the clap
//! definitions, every subcommand's `--help` naming its exit codes, and errors
//! that say what to do next.

mod common;

use common::*;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use serde_json::Value;

const SUBCOMMANDS: [&str; 12] = [
    "run",
    "rehearse",
    "check",
    "snapshot",
    "diff",
    "rules",
    "resume",
    "hook",
    "init",
    "completions",
    "man",
    "validate",
];

fn opsguard() -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard")).env("NO_COLOR", "1")
}

/// The `ecs:DescribeServices`-style operations logged as API calls on stderr.
fn logged_calls(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("API call"))
        .filter_map(|l| {
            let at = l.find(" call=")? + " call=".len();
            let rest = &l[at..];
            let end = rest.find(' ').unwrap_or(rest.len());
            Some(rest[..end].trim_matches('"').to_owned())
        })
        .collect()
}

#[tokio::test]
async fn verbose_snapshot_logs_every_api_call_and_no_secret() {
    let env = setup().await;
    let snapshot = |verbosity: Option<&str>, rust_log: Option<&str>| -> Output {
        let mut cmd = opsguard()
            .envs(env.replica.env())
            .env_remove("RUST_LOG")
            .current_dir(env.dir.path());
        if let Some(v) = verbosity {
            cmd = cmd.arg(v);
        }
        if let Some(l) = rust_log {
            cmd = cmd.env("RUST_LOG", l);
        }
        let out = cmd.args(["snapshot", "--config"]).arg(&env.config).output();
        out.assert_code(0);
        out
    };

    let quiet = snapshot(None, None);
    assert!(logged_calls(&quiet.stderr).is_empty(), "{}", quiet.stderr);
    assert!(log_records(&quiet.stderr).is_empty(), "{}", quiet.stderr);

    let verbose = snapshot(Some("-v"), None);
    let calls = logged_calls(&verbose.stderr);
    assert!(
        calls.iter().any(|c| c == "ecs:DescribeServices"),
        "{}",
        verbose.stderr
    );
    // One line per call, as the snapshot counts them.
    let snap: Value = serde_json::from_str(&verbose.stdout).unwrap();
    let counted = snap["collection"]["api_calls"].as_object().unwrap();
    for (op, n) in counted {
        let logged = calls.iter().filter(|c| *c == op).count() as u64;
        assert_eq!(logged, n.as_u64().unwrap(), "{op}: {}", verbose.stderr);
    }
    for op in [
        "ecs:DescribeClusters",
        "ecs:ListTasks",
        "ecs:DescribeTaskDefinition",
        "secretsmanager:ListSecrets",
        "secretsmanager:BatchGetSecretValue",
    ] {
        assert!(calls.iter().any(|c| c == op), "{op} logged: {calls:?}");
    }

    // Each call with how long it took and what it answered.
    for l in verbose.stderr.lines().filter(|l| l.contains(" call=")) {
        assert!(l.contains(" ms=") && l.contains(" result="), "{l}");
    }
    assert!(
        verbose
            .stderr
            .lines()
            .any(|l| l.contains("call=secretsmanager:ListSecrets") && l.contains("secrets, page 1")),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose
            .stderr
            .lines()
            .any(|l| l.contains("call=elasticsearch:security.get_user")
                && l.contains("HTTP 200, ")
                && l.contains(" users")),
        "{}",
        verbose.stderr
    );
    // -v does not show each attempt; -vv does, with AWS's request id.
    assert!(
        !verbose.stderr.contains("AWS answered"),
        "{}",
        verbose.stderr
    );
    let very = snapshot(Some("-vv"), None);
    let attempts: Vec<&str> = very
        .stderr
        .lines()
        .filter(|l| l.contains("AWS answered"))
        .collect();
    assert!(!attempts.is_empty(), "{}", very.stderr);
    assert!(
        attempts
            .iter()
            .any(|l| l.contains("request_id=") && !l.contains("request_id=\"-\"")),
        "{attempts:?}"
    );
    assert!(
        very.stderr.lines().count() > verbose.stderr.lines().count(),
        "-vv adds detail"
    );
    // -vvv: the libraries' own debug records too.
    let most = snapshot(Some("-vvv"), None);
    assert!(
        most.stderr.lines().count() > very.stderr.lines().count(),
        "-vvv adds the libraries' debug log"
    );
    let by_env = snapshot(None, Some("opsguard=debug"));
    assert!(
        logged_calls(&by_env.stderr).contains(&"ecs:DescribeServices".to_owned()),
        "RUST_LOG works too: {}",
        by_env.stderr
    );

    let mut secrets = env.replica.secret_values.clone();
    secrets.extend(env.replica.passwords.values().cloned());
    for (name, o) in [
        ("-v", &verbose),
        ("-vv", &very),
        ("-vvv", &most),
        ("RUST_LOG", &by_env),
    ] {
        assert_no_leak_named(&[(name, &o.stdout), (name, &o.stderr)], &secrets);
    }
}

#[test]
fn completions_name_every_subcommand_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = opsguard().args(["completions", shell]).output();
        out.assert_code(0);
        assert!(out.stdout.len() > 500, "{shell}: {}", out.stdout);
        for sub in SUBCOMMANDS {
            assert!(out.stdout.contains(sub), "{shell} completes {sub}");
        }
        // Nested subcommands and flags too.
        for word in ["install", "on-violation", "chain"] {
            assert!(out.stdout.contains(word), "{shell} completes {word}");
        }
    }
    assert!(opsguard()
        .args(["completions", "bash"])
        .output()
        .stdout
        .contains("complete -F _opsguard"));
    let bad = opsguard().args(["completions", "tcsh"]).output();
    bad.assert_code(2);
    assert!(bad.stderr.contains("possible values"), "{}", bad.stderr);
}

#[test]
fn the_man_page_names_the_subcommands_and_each_has_its_own() {
    let out = opsguard().arg("man").output();
    out.assert_code(0);
    assert!(out.stdout.contains(".TH opsguard 1"), "{}", out.stdout);
    assert!(out.stdout.contains(".SH SUBCOMMANDS"), "{}", out.stdout);
    for sub in SUBCOMMANDS {
        assert!(
            out.stdout.contains(&format!("opsguard\\-{sub}(1)")),
            "{sub}: {}",
            out.stdout
        );
    }
    // The exit codes keep their table layout (no-fill), and the sections a
    // man page reader looks for are there.
    for section in [
        ".SH \"EXIT STATUS\"\n.nf",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXAMPLES",
    ] {
        assert!(out.stdout.contains(section), "{section}: {}", out.stdout);
    }
    assert!(!out.stdout.contains(".SH EXTRA"), "{}", out.stdout);
    assert!(out.stdout.contains("OPSGUARD_CONFIG"), "{}", out.stdout);
    // --config and -v mean nothing to the commands that describe the CLI.
    for sub in ["completions", "man"] {
        let page = opsguard().args(["man", sub]).output();
        page.assert_code(0);
        assert!(page.stdout.contains(".SH OPTIONS"), "{}", page.stdout);
        assert!(!page.stdout.contains("config"), "{sub}: {}", page.stdout);
        assert!(!page.stdout.contains("verbose"), "{sub}: {}", page.stdout);
        let help = opsguard().args([sub, "--help"]).output();
        help.assert_code(0);
        assert!(!help.stdout.contains("--config"), "{sub}: {}", help.stdout);
    }

    let page = opsguard().args(["man", "hook", "install"]).output();
    page.assert_code(0);
    assert!(
        page.stdout.contains(".TH opsguard-hook-install 1"),
        "{}",
        page.stdout
    );
    assert!(page.stdout.contains("\\-\\-chain"), "{}", page.stdout);

    let dir = tempfile::tempdir().unwrap();
    opsguard()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .assert_code(0);
    for page in [
        "opsguard.1",
        "opsguard-run.1",
        "opsguard-rules-test.1",
        "opsguard-init.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }

    let bad = opsguard().args(["man", "nope"]).output();
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("help: one of: run, check"),
        "{}",
        bad.stderr
    );
}

#[test]
fn every_subcommand_help_names_the_exit_codes_it_can_return() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["run"], &["0 ", "N ", "2 ", "10 ", "11 ", "12 ", "13 "]),
        (&["check"], &["0 ", "2 ", "10 ", "11 ", "12 ", "13 "]),
        (&["rehearse"], &["0 ", "N ", "2 ", "11 ", "12 ", "13 "]),
        (&["snapshot"], &["0 ", "2 ", "13 "]),
        (&["diff"], &["0 ", "2 ", "11 "]),
        (&["rules"], &["0 ", "1 ", "2 "]),
        (&["rules", "list"], &["0 ", "2 "]),
        (&["rules", "show"], &["0 ", "2 "]),
        (&["rules", "test"], &["0 ", "1 ", "2 "]),
        (&["resume"], &["10 ", "12 ", "2 ", "13 "]),
        (&["hook"], &["0 ", "2 "]),
        (&["hook", "install"], &["0 ", "2 "]),
        (&["init"], &["0 ", "2 ", "13 "]),
        (&["completions"], &["0 ", "2 "]),
        (&["man"], &["0 ", "2 "]),
        (&["validate"], &["0 ", "2 "]),
    ];
    for (path, codes) in cases {
        let out = opsguard().args(*path).arg("--help").output();
        out.assert_code(0);
        let at = out
            .stdout
            .find("Exit codes:")
            .unwrap_or_else(|| panic!("{path:?} --help names no exit codes:\n{}", out.stdout));
        let section = &out.stdout[at..];
        for code in *codes {
            assert!(
                section.contains(&format!("\n  {code}")),
                "{path:?} --help lacks exit code {code:?}:\n{section}"
            );
        }
    }
    // And those of the hook it installs.
    let hook = opsguard().args(["hook", "install", "--help"]).output();
    assert!(
        hook.stdout.contains("11 (blocking violation"),
        "{}",
        hook.stdout
    );
    // Every subcommand is covered above.
    let top = opsguard().arg("--help").output();
    for sub in SUBCOMMANDS {
        assert!(cases.iter().any(|(p, _)| p[0] == sub), "{sub}");
        assert!(top.stdout.contains(&format!("  {sub} ")), "{sub} in --help");
    }
}

#[test]
fn errors_say_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("opsguard.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["check", "--config", "missing.toml"], 2),
        (vec!["init", "-o", config.to_str().unwrap()], 2),
        (vec!["hook", "install"], 2),
        (vec!["diff", "missing-a.json", "missing-b.json"], 2),
        (
            vec![
                "resume",
                "no-such-run",
                "--config",
                config.to_str().unwrap(),
            ],
            2,
        ),
    ];
    for (args, code) in cases {
        let out = opsguard().current_dir(dir.path()).args(&args).output();
        out.assert_code(code);
        assert!(
            out.stderr.contains("help:"),
            "{args:?} names no next step:\n{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn the_state_folder_never_reaches_git() {
    let env = setup().await;
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(env.dir.path())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    opsguard()
        .envs(env.replica.env())
        .current_dir(env.dir.path())
        .args(["snapshot", "-o", "snap.json", "--config"])
        .arg(&env.config)
        .output()
        .assert_code(0);
    let state = env.dir.path().join(".opsguard");
    assert!(state.join("fingerprint.key").is_file(), "the key was made");
    let untracked = git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        untracked.contains("snap.json"),
        "git sees new files: {untracked}"
    );
    assert!(
        !untracked.contains(".opsguard"),
        "the state folder is ignored: {untracked}"
    );
}

/// Spinner frames and the carriage returns a progress line redraws with.
fn drawn_progress(text: &str) -> bool {
    text.contains('\r') || text.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `opsguard ARGS --config CONFIG [TAIL]` on a pseudo-terminal (util-linux
/// `script`): what the terminal showed.
fn terminal(env: &Env, args: &str, extra: &[(&str, &str)]) -> String {
    terminal_with(env, args, "", extra)
}

fn terminal_with(env: &Env, args: &str, tail: &str, extra: &[(&str, &str)]) -> String {
    let line = format!(
        "{} {args} --config {} {tail}",
        shell_quote(env!("CARGO_BIN_EXE_opsguard")),
        shell_quote(env.config.to_str().unwrap())
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line])
        // Its copy of the session goes to a file of the test's own, not
        // /dev/null (in some containers a plain file others read).
        .arg(env.dir.path().join("typescript"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("RUST_LOG")
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_script() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn progress_is_drawn_on_a_terminal_and_never_into_a_pipe() {
    let env = setup().await;
    // Into a pipe (as every other test runs it): no line is drawn.
    let piped = opsguard()
        .envs(env.replica.env())
        .env_remove("GITHUB_ACTIONS")
        .current_dir(env.dir.path())
        .args(["check", "--config"])
        .arg(&env.config)
        .output();
    let code = piped.status_code;
    assert!(code == 0 || code == 11, "{}", piped.stderr);
    assert!(!drawn_progress(&piped.stderr), "{:?}", piped.stderr);
    assert!(!piped.stderr.contains("snapshot: "), "{}", piped.stderr);

    // On a pseudo-terminal (util-linux `script`), it is.
    if !has_script() {
        eprintln!("SKIPPED the terminal half: util-linux `script` is not installed");
        return;
    }
    let run =
        |flags: &str, extra: &[(&str, &str)]| terminal(&env, &format!("{flags} check"), extra);
    let tty = run("", &[]);
    assert!(
        drawn_progress(&tty),
        "no progress drawn on a terminal:\n{tty:?}"
    );
    for what in ["snapshot: ", "probing", "credential(s)"] {
        assert!(tty.contains(what), "{what:?} not said:\n{tty:?}");
    }
    // Under GitHub Actions a redraw would be a line of the log each time.
    let actions = run("", &[("GITHUB_ACTIONS", "true")]);
    assert!(!actions.contains("snapshot: "), "{actions:?}");
    // --quiet: the verdict only.
    let quiet = run("--quiet", &[]);
    assert!(!quiet.contains("snapshot: "), "{quiet:?}");
    // -v: the log records are written above the lines, never through one:
    // each starts a line of its own (after the lines were lifted).
    let verbose = run("-v", &[]);
    let records: Vec<&str> = verbose
        .split('\n')
        .filter(|l| l.contains(" API call "))
        .collect();
    assert!(!records.is_empty(), "{verbose:?}");
    for r in &records {
        // What follows the last cursor movement or erase (`ESC [ 2A`).
        let after = r.rsplit("\u{1b}[").next().unwrap_or(r);
        let start = after
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .get(1..)
            .unwrap_or("")
            .trim_start_matches('\r');
        assert!(
            start.starts_with(|c: char| c.is_ascii_digit()),
            "a record torn by a progress line: {r:?}"
        );
        assert!(!start.contains("snapshot: "), "{r:?}");
    }
    assert!(
        verbose.contains("snapshot: "),
        "progress still drawn with -v"
    );
}

#[tokio::test]
async fn the_wrapped_command_owns_the_terminal_while_it_runs() {
    if !has_script() {
        eprintln!("SKIPPED: util-linux `script` is not installed, so no terminal to test on");
        return;
    }
    let env = setup().await;
    let shown = terminal_with(
        &env,
        "run --on-violation block",
        "-- sh -c 'sleep 0.5; echo OUTPUT-OF-THE-COMMAND'",
        &[],
    );
    let before = shown
        .find("before snapshot: ")
        .expect("before snapshot shown");
    let running = shown
        .find("running: sh -c sleep 0.5; echo OUTPUT-OF-THE-COMMAND")
        .unwrap_or_else(|| panic!("the command is not named:\n{shown:?}"));
    let output = shown
        .find("OUTPUT-OF-THE-COMMAND\r\n")
        .expect("the command's output");
    let after = shown
        .find("after snapshot: ")
        .expect("after snapshot shown");
    assert!(
        before < running && running < output && output < after,
        "{shown:?}"
    );
    // Nothing drawn while it runs: from the line naming it to its output.
    let during = &shown[running..output];
    let during = &during[during.find('\n').unwrap_or(0)..];
    assert!(
        !drawn_progress(during),
        "drawn while the command ran: {during:?}"
    );
}
