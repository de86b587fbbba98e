//! The shadow's AWS: an emulator opsguard starts and stops itself
//! (`ministack` by default), or one already running that the config names.
//!
//! Why the care: the emulator holds copies of live secret values in its
//! memory, so it must never outlive the rehearsal and never write them to
//! disk. It is started with persistence off (`PERSIST_STATE=0`), bound to
//! 127.0.0.1 only, with a scrubbed environment (a developer's own `AWS_*`
//! must not change it), in a process group of its own, and with
//! `PR_SET_PDEATHSIG = SIGKILL` so the kernel kills it if opsguard dies
//! without unwinding (SIGKILL, a crash). On every other path its
//! [`Drop`] kills the group by the PID it started and reaps it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const PORT_ATTEMPTS: u32 = 4;

#[derive(Debug, Error)]
pub enum EmulatorError {
    #[error("the AWS emulator `{program}` was not found{}", if *.on_path { " on PATH" } else { "" })]
    NotFound { program: String, on_path: bool },
    #[error("cannot start the AWS emulator `{program}`: {message}")]
    Start { program: String, message: String },
}

impl EmulatorError {
    /// What to do about it, for the report and the human output.
    pub fn help(&self) -> &'static str {
        "rehearsal needs an AWS emulator for its shadow: `pip install ministack==1.5.33` \
         (into a venv whose bin/ is on PATH), or name it in opsguard.toml with \
         [rehearse] aws_emulator = [\"/path/to/venv/bin/ministack\"], or point at one \
         already running on loopback with [rehearse] aws_endpoint_url = \"http://127.0.0.1:4566\""
    }
}

/// An emulator that opsguard started: spawned by [`AwsEmulator::spawn`],
/// answering once [`AwsEmulator::ready`] returns it.
pub struct AwsEmulator {
    endpoint: String,
    pid: u32,
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    program: String,
    path: PathBuf,
    args: Vec<String>,
    region: String,
    spawned: Instant,
}

impl std::fmt::Debug for AwsEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEmulator")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.pid)
            .finish()
    }
}

impl AwsEmulator {
    /// Start `argv` (program and arguments) on a free loopback port, without
    /// waiting for it: it boots while opsguard does other work, and
    /// [`AwsEmulator::ready`] waits until it answers HTTP. Dropped before
    /// then, it is stopped all the same.
    pub fn spawn(argv: &[String], region: &str) -> Result<AwsEmulator, EmulatorError> {
        let program = argv.first().cloned().unwrap_or_default();
        let path = resolve(&program)?;
        AwsEmulator::spawn_at(path, argv[1..].to_vec(), program, region.to_owned())
    }

    /// Wait until the emulator answers; on a port taken meanwhile, start it
    /// again on another (a bounded number of times).
    pub async fn ready(mut self) -> Result<AwsEmulator, EmulatorError> {
        let mut last = String::new();
        for attempt in 1..=PORT_ATTEMPTS {
            match self.answering().await {
                Ok(()) => return Ok(self),
                Err(Retry::Fatal(e)) => return Err(e),
                Err(Retry::PortTaken(why)) => {
                    last = why;
                    if attempt < PORT_ATTEMPTS {
                        let (path, args) = (self.path.clone(), self.args.clone());
                        let (program, region) = (self.program.clone(), self.region.clone());
                        // The old one is stopped as it is replaced.
                        self = AwsEmulator::spawn_at(path, args, program, region)?;
                    }
                }
            }
        }
        Err(EmulatorError::Start {
            program: self.program.clone(),
            message: format!("no free port could be bound: {last}"),
        })
    }

    fn spawn_at(
        path: PathBuf,
        args: Vec<String>,
        program: String,
        region: String,
    ) -> Result<AwsEmulator, EmulatorError> {
        let fatal = |message: String| EmulatorError::Start {
            program: program.clone(),
            message,
        };
        let port = free_port().map_err(|e| fatal(format!("no free loopback port: {e}")))?;
        let dir = std::env::temp_dir().join(format!(
            "opsguard-shadow-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| fatal(format!("{}: {e}", dir.display())))?;
        let log_path = dir.join("emulator.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| fatal(format!("{}: {e}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| fatal(format!("{}: {e}", log_path.display())))?;
        let mut cmd = Command::new(&path);
        cmd.args(&args)
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("HOME", &dir)
            .env("TMPDIR", &dir)
            .env("PYTHONUNBUFFERED", "1")
            .env("BIND_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", port.to_string())
            .env("MINISTACK_REGION", &region)
            .env("PERSIST_STATE", "0")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // (PDEATHSIG follows the thread that forks: spawn from a thread that
        // lives as long as opsguard does, never from a blocking-pool thread.)
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            fatal(e.to_string())
        })?;
        Ok(AwsEmulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            pid: child.id(),
            port,
            child: Some(child),
            dir,
            program,
            path,
            args,
            region,
            spawned: Instant::now(),
        })
    }

    /// Poll until it answers, exits or runs out of time.
    async fn answering(&mut self) -> Result<(), Retry> {
        let fatal = |program: &str, message: String| {
            Retry::Fatal(EmulatorError::Start {
                program: program.to_owned(),
                message,
            })
        };
        let port = self.port;
        loop {
            // The probe blocks (a connect and a read, each bounded): off the
            // runtime's threads. It starts no process.
            let answered = tokio::task::spawn_blocking(move || answers_http(port))
                .await
                .unwrap_or(false);
            if answered {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let tail = self.log_tail();
                if tail.contains("already in use") || tail.contains("Address in use") {
                    return Err(Retry::PortTaken(tail));
                }
                return Err(fatal(
                    &self.program,
                    format!(
                        "it exited ({status}) before answering on port {port}; its last output:\n{tail}"
                    ),
                ));
            }
            if self.spawned.elapsed() > STARTUP_TIMEOUT {
                let tail = self.log_tail();
                return Err(fatal(
                    &self.program,
                    format!(
                        "it did not answer on port {port} within {STARTUP_TIMEOUT:?}; its last output:\n{tail}"
                    ),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("emulator.log")) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for AwsEmulator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Kill the group before reaping its leader, while the id cannot
            // have been reused; the leader is our own child, by PID.
            if let Ok(pid) = libc::pid_t::try_from(self.pid) {
                // SAFETY: signals our own child's process group.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Retry {
    PortTaken(String),
    Fatal(EmulatorError),
}

/// A program name without a slash is looked up on PATH, as a shell would.
fn resolve(program: &str) -> Result<PathBuf, EmulatorError> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(EmulatorError::NotFound {
                program: program.to_owned(),
                on_path: false,
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| EmulatorError::NotFound {
            program: program.to_owned(),
            on_path: true,
        })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Whether something on the port answers an HTTP request with a status line.
fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        b"GET /_ministack/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_emulator_is_named_with_help() {
        let e =
            AwsEmulator::spawn(&["opsguard-no-such-emulator-xyz".into()], "eu-west-1").unwrap_err();
        assert!(matches!(e, EmulatorError::NotFound { on_path: true, .. }));
        assert!(e.to_string().contains("opsguard-no-such-emulator-xyz"));
        assert!(e.help().contains("aws_emulator"));
        let e = AwsEmulator::spawn(&["/nonexistent/ministack".into()], "eu-west-1").unwrap_err();
        assert!(matches!(e, EmulatorError::NotFound { on_path: false, .. }));
    }

    #[tokio::test]
    async fn an_emulator_that_dies_at_once_is_an_error_not_a_hang() {
        let spawned = AwsEmulator::spawn(&["/bin/false".into()], "eu-west-1").unwrap();
        let e = tokio::time::timeout(Duration::from_secs(20), spawned.ready())
            .await
            .expect("ready() hung")
            .unwrap_err();
        assert!(matches!(e, EmulatorError::Start { .. }), "{e}");
        assert!(e.to_string().contains("exited"), "{e}");
    }
}
