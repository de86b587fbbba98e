//! The process helper and the leak scanner.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use opsguard_testkit::{assert_no_leak, assert_no_leak_named, is_alive, Cmd};

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn sh(script: &str) -> Cmd {
    Cmd::new("/bin/sh").arg("-c").arg(script)
}

#[test]
fn captures_stdout_stderr_and_the_exit_code() {
    let out = sh("echo out; echo err >&2; exit 3").output();
    assert_eq!(out.status_code, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn a_signal_is_reported_as_128_plus_its_number() {
    assert_eq!(sh("kill -9 $$").output().status_code, 137);
}

#[test]
fn passes_args_env_stdin_and_current_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = sh(r#"printf '%s|%s|%s|' "$1" "$GREETING" "$(pwd)"; cat"#)
        .args(["sh", "first-arg"]) // $0 and $1
        .env("GREETING", "hello")
        .current_dir(dir.path())
        .stdin("from stdin")
        .output();
    out.assert_code(0);
    let pwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        out.stdout,
        format!("first-arg|hello|{}|from stdin", pwd.display())
    );
}

#[test]
fn assert_code_shows_the_output() {
    let out = sh("echo visible-in-panic; exit 4").output();
    let msg = panic_message(|| {
        out.assert_code(0);
    });
    assert!(
        msg.contains("got 4") && msg.contains("visible-in-panic"),
        "{msg}"
    );
}

#[test]
fn a_program_past_its_timeout_is_killed_with_everything_it_started() {
    let started = Instant::now();
    let msg = panic_message(|| {
        sh("sleep 600 & echo bg=$!; wait")
            .timeout(Duration::from_millis(500))
            .output();
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(msg.contains("ran longer than 500ms"), "{msg}");
    let pid: u32 = msg
        .split("\nbg=")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the panic shows the output so far: {msg}"));
    assert!(!is_alive(pid), "the background sleep {pid} survived");
}

#[test]
fn what_a_program_leaves_running_is_killed_when_it_exits() {
    let out = sh("sleep 600 >/dev/null 2>&1 & echo $!").output();
    out.assert_code(0);
    let pid: u32 = out.stdout.trim().parse().unwrap();
    assert!(!is_alive(pid), "the background sleep {pid} survived");
}

/// Not a test: the child process for `inherited_aws_and_opsguard_variables_are_removed`.
#[test]
#[ignore = "helper process, run by other tests"]
fn helper_print_env() {
    if std::env::var_os("TESTKIT_HELPER_MODE").is_none() {
        return;
    }
    let out = Cmd::new("/usr/bin/env")
        .env("AWS_REGION", "set-explicitly")
        .output();
    println!("{}", out.stdout);
}

#[test]
fn inherited_aws_and_opsguard_variables_are_removed() {
    // The helper inherits these from std's Command (not Cmd, which would
    // scrub them already) and runs `env` through Cmd.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["helper_print_env", "--exact", "--ignored", "--nocapture"])
        .env("TESTKIT_HELPER_MODE", "env")
        .env("AWS_PROFILE", "developers-own")
        .env("OPSGUARD_CONFIG", "/somewhere/else.toml")
        .env("KEPT_VARIABLE", "kept")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("KEPT_VARIABLE=kept"), "{stdout}");
    assert!(stdout.contains("AWS_REGION=set-explicitly"), "{stdout}");
    assert!(!stdout.contains("AWS_PROFILE"), "{stdout}");
    assert!(!stdout.contains("OPSGUARD_CONFIG"), "{stdout}");
}

#[tokio::test]
async fn output_async_leaves_the_runtime_free() {
    // A current-thread runtime: a blocking wait would starve this server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut socket, _) = listener.accept().await.unwrap();
        socket
            .write_all(b"served by the test runtime\n")
            .await
            .unwrap();
    });
    let python = format!(
        "import socket; s = socket.create_connection(('127.0.0.1', {port})); print(s.recv(100).decode(), end='')"
    );
    let out = Cmd::new("python3")
        .args(["-c", &python])
        .timeout(Duration::from_secs(20))
        .output_async()
        .await;
    out.assert_code(0);
    assert_eq!(out.stdout, "served by the test runtime\n");
    server.await.unwrap();
}

#[test]
fn no_leak_passes_clean_text() {
    assert_no_leak(
        &["nothing here", "user search authenticated"],
        &["5f2b9c0e8d7a6b5c4d3e2f1a0b9c8d7e".to_string()],
    );
}

#[test]
fn a_leak_names_the_haystack_and_never_prints_the_secret() {
    let secrets = vec![
        "0123456789abcdef0123456789abcdef".to_string(),
        "fedcba9876543210fedcba9876543210".to_string(),
    ];
    let stderr = format!("error: password {} rejected for user search", secrets[1]);
    let msg = panic_message(|| {
        assert_no_leak_named(&[("stdout", "all good"), ("stderr", &stderr)], &secrets);
    });
    assert!(msg.contains("stderr contains secret #1"), "{msg}");
    assert!(msg.contains("password <secret #1> rejected"), "{msg}");
    assert!(!msg.contains("stdout contains"), "{msg}");
    for secret in &secrets {
        assert!(
            !msg.contains(secret.as_str()),
            "the message leaks a secret: {msg}"
        );
    }

    let msg = panic_message(|| assert_no_leak(&["clean", &stderr], &secrets));
    assert!(msg.contains("haystack #1 contains secret #1"), "{msg}");
}

#[test]
fn an_empty_secret_is_a_mistake() {
    let msg = panic_message(|| assert_no_leak(&["text"], &[String::new()]));
    assert!(msg.contains("secret #0 is empty"), "{msg}");
}
