//! The AWS emulator: `ministack` (PyPI, pinned to [`MINISTACK_VERSION`]),
//! started from the workspace venv on a free loopback port.
//!
//! Two ways to get one:
//!
//! * [`Ministack::shared`]: one per test binary, started on first use. Tests
//!   sharing it stay apart by each taking a [`Ministack::fresh_account`]:
//!   ministack scopes every resource by account, and takes the account id from
//!   the request's access key id when that is a 12-digit number (checked by
//!   `tests/ministack.rs`: a secret created in one account is invisible from
//!   another, and ARNs carry the account id).
//! * [`Ministack::start`]: a private instance, killed and reaped on drop; for
//!   tests that need [`Ministack::reset`] or must not share.
//!
//! No test may leak a process, so the emulator is guarded three ways: it is
//! forked from a thread that lives as long as the test process, with
//! `PR_SET_PDEATHSIG = SIGKILL` (the kernel kills it when the test process
//! dies, even by SIGKILL); it leads a process group of its own; and a small
//! Python bootstrap ([`WATCHDOG`]) kills it when its lifeline pipe (its stdin,
//! whose write end only the test process holds) reaches end-of-file or when it
//! finds itself re-parented.
//!
//! Where the venv is: `$OPSGUARD_VENV`, else `<workspace>/.venv`, which
//! `scripts/test` creates. A missing venv is a panic that says so, never a
//! silently skipped test.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use crate::process;

/// The ministack release every emulator behaviour listed in docs/testing.md
/// was checked against.
pub const MINISTACK_VERSION: &str = "1.5.33";

/// The one region the whole test environment lives in: ministack scopes
/// resources by the request's signing region.
pub const REGION: &str = "eu-west-1";

/// How long ministack may take to answer its health check (it needs ~0.3 s).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// Runs ministack's own entry script (argv[1]) after starting two watchdog
/// threads; either one kills the whole process group when the test process
/// is gone even though PR_SET_PDEATHSIG somehow did not fire.
pub const WATCHDOG: &str = r#"
import os, runpy, signal, sys, threading, time

owner = int(os.environ.pop("OPSGUARD_TESTKIT_OWNER_PID"))

def die(why):
    try:
        sys.stderr.write("opsguard-testkit watchdog: %s; exiting\n" % why)
        sys.stderr.flush()
    finally:
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os._exit(1)

def lifeline():
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    die("lifeline pipe closed: the test process is gone")

def parent():
    while True:
        if os.getppid() != owner:
            die("re-parented: owner %d is gone" % owner)
        time.sleep(0.2)

if os.getppid() != owner:
    die("re-parented before start: owner %d is gone" % owner)
threading.Thread(target=lifeline, daemon=True).start()
threading.Thread(target=parent, daemon=True).start()
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"#;

/// A running ministack. See the [module docs](self).
pub struct Ministack {
    endpoint: String,
    pid: u32,
    log_path: PathBuf,
    /// `None` once dropped; a `Mutex` so the shared instance can be `Sync`.
    child: Mutex<Option<Running>>,
    /// Deleted on drop for a private instance; the shared instance's is kept
    /// (statics are never dropped) and swept by the next launch.
    dir: Option<tempfile::TempDir>,
}

struct Running {
    child: Child,
    /// The write end of the watchdog's lifeline; closing it stops ministack.
    _lifeline: ChildStdin,
}

impl Ministack {
    /// The instance shared by every test in this test binary, started on first
    /// use. It dies with the test process. Do not [`reset`](Self::reset) it:
    /// other tests are using it; take a [`fresh_account`](Self::fresh_account).
    pub fn shared() -> &'static Ministack {
        static SHARED: OnceLock<Ministack> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut ministack = Ministack::launch();
            // Keep the log for a post-mortem; the next launch sweeps it.
            if let Some(dir) = ministack.dir.take() {
                let _ = dir.keep();
            }
            ministack
        })
    }

    /// A private instance, killed and reaped when dropped.
    pub fn start() -> Ministack {
        Ministack::launch()
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The emulator's process id (for tests that check it is gone).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where ministack's stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Drop every resource in every account (`POST /_ministack/reset`).
    pub fn reset(&self) {
        let (status, body) =
            http(&self.endpoint, "POST", "/_ministack/reset").unwrap_or_else(|e| {
                panic!(
                    "ministack reset at {}: {e}{}",
                    self.endpoint,
                    self.log_hint()
                )
            });
        assert!(
            status == 200,
            "ministack reset answered HTTP {status}: {body}{}",
            self.log_hint()
        );
    }

    /// A new account on this emulator, different from every other account
    /// this process has handed out, so tests sharing one emulator cannot see
    /// each other's resources.
    pub fn fresh_account(&self) -> Account {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // Six digits from the pid (never starting with 0, so never ministack's
        // default account 000000000000) and six from a counter: distinct
        // within a process, and across processes that share an emulator
        // unless their pids collide modulo 900000.
        let id = format!(
            "{:06}{:06}",
            100_000 + std::process::id() % 900_000,
            n % 1_000_000
        );
        Account {
            access_key_id: id.clone(),
            secret_access_key: format!("testkit-secret-{id}"),
            region: REGION.to_string(),
            endpoint: self.endpoint.clone(),
            id,
        }
    }

    fn launch() -> Ministack {
        let venv = venv_dir();
        let (python, entry) = check_venv(&venv);
        sweep_stale_dirs();
        // A port found free may be taken before ministack binds it; ministack
        // then exits at once saying so, and another port is tried.
        let mut last_failure = String::new();
        for _ in 0..5 {
            match Ministack::try_launch(&python, &entry) {
                Ok(ministack) => return ministack,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("ministack would not start:\n{last_failure}");
    }

    fn try_launch(python: &Path, entry: &Path) -> Result<Ministack, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("opsguard-ministack-{}-", std::process::id()))
            .tempdir()
            .expect("create a temporary directory for ministack");
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let log_path = dir.path().join("ministack.log");
        let log = File::create(&log_path).expect("create the ministack log file");

        let mut cmd = Command::new(python);
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg(entry)
            .current_dir(dir.path())
            // Only what ministack needs: a developer's own AWS_*, SERVICES,
            // PERSIST_STATE, MINISTACK_* ... must not change the emulator.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("HOME", dir.path())
            .env("TMPDIR", dir.path()) // its pid file goes here, not in /tmp
            .env("PYTHONUNBUFFERED", "1") // the log is complete when it dies
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("MINISTACK_REGION", REGION)
            .env("PERSIST_STATE", "0")
            .env("OPSGUARD_TESTKIT_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log);
        let mut child = process::spawn_guarded(cmd)
            .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), entry.display()));
        let lifeline = child.stdin.take().expect("ministack's stdin is piped");
        let pid = child.id();
        let ministack = Ministack {
            endpoint,
            pid,
            log_path,
            child: Mutex::new(Some(Running {
                child,
                _lifeline: lifeline,
            })),
            dir: Some(dir),
        };

        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http(&ministack.endpoint, "GET", "/_ministack/health") {
                return Ok(ministack);
            }
            let exited = {
                let mut guard = ministack.child.lock().unwrap();
                let running = guard.as_mut().expect("not dropped yet");
                running.child.try_wait().expect("wait for ministack")
            };
            if let Some(status) = exited {
                let log = ministack.log_tail();
                if log.contains("already in use") {
                    return Err(format!("port {port} taken:\n{log}"));
                }
                panic!(
                    "ministack exited ({status}) before it became healthy at {}; log {}:\n{log}",
                    ministack.endpoint,
                    ministack.log_path.display()
                );
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                panic!(
                    "ministack did not answer GET {}/_ministack/health within {STARTUP_TIMEOUT:?}; log {}:\n{}",
                    ministack.endpoint,
                    ministack.log_path.display(),
                    ministack.log_tail()
                );
            }
            thread::sleep(HEALTH_POLL);
        }
    }

    /// The last lines of ministack's log, for error messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn log_hint(&self) -> String {
        format!(
            "\nministack log {}:\n{}",
            self.log_path.display(),
            self.log_tail()
        )
    }
}

impl Drop for Ministack {
    fn drop(&mut self) {
        let running = self
            .child
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut running) = running {
            // Kill the group before reaping the leader, while its id cannot
            // have been reused.
            process::kill_group(self.pid);
            let _ = running.child.wait();
        }
    }
}

/// One isolated AWS account on a ministack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// 12 digits; also the access key id, which is how ministack picks it.
    pub id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Always [`REGION`].
    pub region: String,
    /// The emulator, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Account {
    /// An SDK config for this account: static credentials, the region and the
    /// emulator's endpoint, and nothing read from the environment or
    /// `~/.aws`, so a developer's own AWS setup cannot leak into a test.
    pub async fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .endpoint_url(self.endpoint.clone())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                self.access_key_id.clone(),
                self.secret_access_key.clone(),
                None,
                None,
                "opsguard-testkit",
            )))
            .build()
    }

    /// Environment for a child process (the opsguard binary, a provisioning
    /// script) that must talk to this account and nothing else.
    /// [`crate::Cmd`] also removes every inherited `AWS_*` variable.
    pub fn env(&self) -> Vec<(String, String)> {
        let (config, credentials) = empty_aws_files();
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", &self.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret_access_key),
            ("AWS_REGION", &self.region),
            ("AWS_DEFAULT_REGION", &self.region),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", config),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// Two empty files standing in for `~/.aws/config` and `~/.aws/credentials`.
fn empty_aws_files() -> (&'static str, &'static str) {
    static FILES: OnceLock<(String, String)> = OnceLock::new();
    let (config, credentials) = FILES.get_or_init(|| {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("opsguard-testkit-{uid}"));
        fs::create_dir_all(&dir).expect("create the testkit directory for empty AWS files");
        let path = |name: &str| {
            let path = dir.join(name);
            File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            path.to_str().expect("temp dir is UTF-8").to_string()
        };
        (path("empty-aws-config"), path("empty-aws-credentials"))
    });
    (config, credentials)
}

/// `$OPSGUARD_VENV`, else `<workspace>/.venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("OPSGUARD_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join(".venv"),
    }
}

/// The cargo workspace this crate lives in (`tests/testkit/../..`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The venv's python and ministack entry script, or a panic that says how to
/// make them.
fn check_venv(venv: &Path) -> (PathBuf, PathBuf) {
    let python = venv.join("bin/python");
    let entry = venv.join("bin/ministack");
    let how = format!(
        "run `scripts/test` from the workspace root ({}) to create the venv with ministack=={MINISTACK_VERSION}, \
         or point OPSGUARD_VENV at a venv that has it",
        workspace_root().display()
    );
    if !python.exists() || !entry.exists() {
        panic!(
            "no ministack in the venv {} ({} or {} is missing): {how}",
            venv.display(),
            python.display(),
            entry.display()
        );
    }
    let wanted = format!("ministack-{MINISTACK_VERSION}.dist-info");
    let found: Vec<String> = fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|py| {
            fs::read_dir(py.path().join("site-packages"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ministack-") && name.ends_with(".dist-info"))
        .collect();
    if !found.contains(&wanted) {
        panic!(
            "the venv {} has {found:?}, not {wanted}: the tests rely on that exact release; {how}",
            venv.display()
        );
    }
    (python, entry)
}

/// Remove the directories of shared instances whose test process is gone.
fn sweep_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("opsguard-ministack-"))
        else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if pid != std::process::id() && !process::is_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// A minimal HTTP/1.1 exchange for the health check and reset: blocking, no
/// runtime, so it works from sync code and from inside an async test alike.
fn http(endpoint: &str, method: &str, path: &str) -> io::Result<(u16, String)> {
    let addr: SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| io::Error::other(format!("bad endpoint {endpoint}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {response:.200}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watchdog alone (no PR_SET_PDEATHSIG) kills ministack when it is
    /// orphaned: `sh` starts it in the background, waits until it is healthy
    /// and is then killed, so ministack is re-parented while its lifeline
    /// pipe (held by this test) stays open.
    #[test]
    fn watchdog_kills_an_orphaned_ministack() {
        let (python, entry) = check_venv(&venv_dir());
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("ministack.log");
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<&0; OPSGUARD_TESTKIT_OWNER_PID=$$ "$0" -c "$1" "$2" <&3 3<&- >"$3" 2>&1 & echo $!; exec sleep 600 3<&-"#)
            .arg(&python)
            .arg(WATCHDOG)
            .arg(&entry)
            .arg(&log)
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped()) // held open below: only re-parenting can stop it
            .stdout(Stdio::piped())
            .spawn()
            .expect("run sh");
        let _lifeline = sh.stdin.take();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(sh.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid: u32 = line.trim().parse().expect("sh printed the background pid");

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !matches!(http(&endpoint, "GET", "/_ministack/health"), Ok((200, _))) {
            if Instant::now() > deadline {
                kill_both(&mut sh, pid);
                panic!(
                    "ministack never became healthy:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            thread::sleep(HEALTH_POLL);
        }
        sh.kill().unwrap();
        sh.wait().unwrap();

        let deadline = Instant::now() + Duration::from_secs(10);
        while process::is_alive(pid) {
            if Instant::now() > deadline {
                kill_both(&mut sh, pid);
                panic!("orphaned ministack {pid} still alive after 10 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
        let log = fs::read_to_string(&log).unwrap();
        assert!(
            log.contains("re-parented: owner"),
            "the parent watchdog fired; log:\n{log}"
        );
        assert!(
            http(&endpoint, "GET", "/_ministack/health").is_err(),
            "something still answers on {endpoint}"
        );
    }

    /// Do not leak the test's processes even when it fails.
    fn kill_both(sh: &mut Child, pid: u32) {
        let _ = sh.kill();
        let _ = sh.wait();
        // SAFETY: plain syscall on a pid this test started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }

    /// Closing the lifeline pipe (what happens when the test process dies)
    /// stops ministack even when PR_SET_PDEATHSIG does not apply.
    #[test]
    fn watchdog_stops_ministack_when_the_lifeline_closes() {
        let ministack = Ministack::start();
        let pid = ministack.pid();
        let Running {
            mut child,
            _lifeline: lifeline,
        } = ministack.child.lock().unwrap().take().expect("running");
        drop(lifeline);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                process::kill_group(pid);
                let _ = child.wait();
                panic!("ministack {pid} ignored its closed lifeline for 10 s");
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert!(
            !status.success(),
            "the watchdog exits with a failure, got {status}"
        );
        let log = ministack.log_tail();
        assert!(
            log.contains("lifeline pipe closed"),
            "the lifeline watchdog fired; log:\n{log}"
        );
        assert!(!process::is_alive(pid));
    }
}
