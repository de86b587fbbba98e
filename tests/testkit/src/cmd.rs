//! Run a program (the `opsguard` binary) the way an integration test needs:
//! environment scrubbed of the developer's AWS and opsguard settings, output
//! captured, a bounded run time, and no process left behind.
//!
//! ```no_run
//! # use opsguard_testkit::Cmd;
//! // In the main crate's integration tests: env!("CARGO_BIN_EXE_opsguard").
//! let out = Cmd::new("target/debug/opsguard")
//!     .args(["check", "--format", "json"])
//!     .env("NO_COLOR", "1")
//!     .output();
//! out.assert_code(0);
//! ```

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::process;

/// How long a program may run before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Inherited variables with these prefixes are removed: a developer's
/// `AWS_PROFILE` or `OPSGUARD_CONFIG` must not change what a test sees.
const SCRUBBED_PREFIXES: [&str; 3] = ["AWS_", "OPSGUARD_", "GITHUB_"];

/// A program to run; a builder, consumed by [`Cmd::output`].
#[derive(Debug, Clone)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

/// What the program did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code, or 128 + the signal number if a signal killed it.
    pub status_code: i32,
    /// Lossily decoded UTF-8.
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Set a variable (also one of the scrubbed `AWS_*` / `OPSGUARD_*`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    /// Set many, e.g. `.envs(account.env())`.
    pub fn envs<I, K, V>(mut self, vars: I) -> Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.envs.push((key.as_ref().to_os_string(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bytes for the program's stdin (default: none, stdin is `/dev/null`).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(input.into());
        self
    }

    /// Replace [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Run to completion and capture the output. Panics if the program cannot
    /// be started or runs longer than the timeout (it is then killed, with
    /// everything it started, and the panic shows what it printed so far).
    /// The program leads a process group of its own; whatever of that group
    /// is still running when it exits is killed, and it gets SIGKILL if the
    /// test process dies first.
    ///
    /// This blocks the calling thread: from an async test whose runtime also
    /// serves something the program talks to (an ES double), use
    /// [`Cmd::output_async`].
    pub fn output(self) -> Output {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str() {
                if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                    command.env_remove(&key);
                }
            }
        }
        for (key, value) in &self.envs {
            match value {
                Some(v) => command.env(key, v),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        process::die_with_spawning_thread(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.describe()));
        let pid = child.id();

        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // A program that never reads its stdin must not block us.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let stdout = read_in_background(child.stdout.take().expect("stdout is piped"));
        let stderr = read_in_background(child.stderr.take().expect("stderr is piped"));

        let started = Instant::now();
        while !process::has_exited(pid) {
            if started.elapsed() > self.timeout {
                process::kill_group(pid);
                let _ = child.wait();
                let grace = Duration::from_secs(5);
                panic!(
                    "{} ran longer than {:?} and was killed\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
                    self.describe(),
                    self.timeout,
                    stdout.recv_timeout(grace).unwrap_or_default(),
                    stderr.recv_timeout(grace).unwrap_or_default(),
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        // It has exited but is not reaped yet, so its group id is still its
        // own: kill what it left behind, then reap it.
        process::kill_group(pid);
        let status = child.wait().expect("reap the child");
        let status_code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        let grace = Duration::from_secs(10);
        let collect = |rx: mpsc::Receiver<String>, name: &str| {
            rx.recv_timeout(grace).unwrap_or_else(|_| {
                panic!(
                    "{}: its {name} stayed open {grace:?} after it exited (a process outside its group holds it)",
                    self.describe()
                )
            })
        };
        Output {
            status_code,
            stdout: collect(stdout, "stdout"),
            stderr: collect(stderr, "stderr"),
        }
    }

    /// [`Cmd::output`] on tokio's blocking pool, leaving the test's runtime
    /// free to serve the program meanwhile.
    pub async fn output_async(self) -> Output {
        match tokio::task::spawn_blocking(move || self.output()).await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("running the command was cancelled: {e}"),
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("`{}", self.program.display());
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s.push('`');
        s
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

impl Output {
    /// Panic, showing stdout and stderr, unless the exit code is `expected`.
    pub fn assert_code(&self, expected: i32) -> &Output {
        assert!(
            self.status_code == expected,
            "expected exit code {expected}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status_code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Panic if any of `secrets` occurs in any haystack, naming the haystack by
/// its position. See [`assert_no_leak_named`].
pub fn assert_no_leak(haystacks: &[&str], secrets: &[String]) {
    let named: Vec<(String, &str)> = haystacks
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("haystack #{i}"), *h))
        .collect();
    let named: Vec<(&str, &str)> = named.iter().map(|(n, h)| (n.as_str(), *h)).collect();
    assert_no_leak_named(&named, secrets);
}

/// Panic if any of `secrets` occurs in any haystack (`(name, text)`, e.g.
/// `("stderr", &out.stderr)`). The message names the haystack and the secret
/// by position, length and first two characters, and shows the surrounding
/// text with every secret replaced by `<secret #N>`: it never contains a
/// secret itself. An empty secret is a mistake in the test and panics too.
pub fn assert_no_leak_named(haystacks: &[(&str, &str)], secrets: &[String]) {
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !secret.is_empty(),
            "secret #{i} is empty: a leak scan for it would match everything"
        );
    }
    let mut leaks = Vec::new();
    for (name, text) in haystacks {
        let found: Vec<usize> = (0..secrets.len())
            .filter(|&i| text.contains(secrets[i].as_str()))
            .collect();
        if found.is_empty() {
            continue;
        }
        // Longest first, so a secret containing another is redacted whole.
        let mut order: Vec<usize> = (0..secrets.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(secrets[i].len()));
        let mut redacted = text.to_string();
        for &i in &order {
            redacted = redacted.replace(secrets[i].as_str(), &format!("<secret #{i}>"));
        }
        for i in found {
            let marker = format!("<secret #{i}>");
            let at = redacted.find(&marker).expect("a found secret was redacted");
            let context = excerpt(&redacted, at, marker.len(), 80);
            leaks.push(format!(
                "{name} contains secret #{i} ({}): …{context}…",
                hint(&secrets[i])
            ));
        }
    }
    assert!(leaks.is_empty(), "secret leaked:\n{}", leaks.join("\n"));
}

fn hint(secret: &str) -> String {
    let head: String = secret.chars().take(2).collect();
    format!("{} chars, begins {head:?}", secret.chars().count())
}

/// `text[at..at + len]` with up to `radius` bytes either side, cut at char
/// boundaries.
fn excerpt(text: &str, at: usize, len: usize, radius: usize) -> &str {
    let mut start = at.saturating_sub(radius);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + radius).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    &text[start..end]
}
