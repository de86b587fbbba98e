//! Running the wrapped command as if opsguard were not there: same stdin,
//! stdout, stderr, environment and working directory, its exit code recorded,
//! and signals passed on.
//!
//! The child stays in opsguard's process group, so a terminal's Ctrl-C reaches
//! it directly and an interactive script can still read the terminal. A signal
//! sent to opsguard alone (`kill -TERM <opsguard>`, a CI runner cancelling the
//! job) is forwarded to the child. SIGINT is forwarded only when it cannot
//! have come from the terminal — otherwise the child would get it twice.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::time::Duration;
use thiserror::Error;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Error)]
// The cause is the source, said once (below the message) where the error
// is printed.
#[error("cannot start `{program}`")]
pub struct SpawnError {
    pub program: String,
    #[source]
    pub source: std::io::Error,
}

/// How the command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Its exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
}

impl Ended {
    /// The code a shell would report: the exit code, or 128 + the signal.
    pub fn shell_code(&self) -> u8 {
        match (self.code, self.signal) {
            (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
            (None, Some(s)) => u8::try_from((128 + s) & 0xff).unwrap_or(1),
            (None, None) => 1,
        }
    }

    pub fn signal_name(&self) -> Option<String> {
        let s = self.signal?;
        Some(
            match s {
                libc::SIGINT => "SIGINT",
                libc::SIGTERM => "SIGTERM",
                libc::SIGKILL => "SIGKILL",
                libc::SIGHUP => "SIGHUP",
                libc::SIGQUIT => "SIGQUIT",
                libc::SIGSEGV => "SIGSEGV",
                libc::SIGABRT => "SIGABRT",
                libc::SIGPIPE => "SIGPIPE",
                _ => return Some(format!("signal {s}")),
            }
            .to_owned(),
        )
    }
}

/// Whether a SIGINT we received was also delivered to the child by the
/// terminal (we are in the terminal's foreground process group).
fn terminal_delivers_sigint() -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    // SAFETY: plain queries of process state, no memory is passed.
    unsafe { libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Run `argv` to completion, forwarding signals.
pub async fn run(argv: &[OsString]) -> Result<Ended, SpawnError> {
    run_with_env(argv, &[]).await
}

/// Changes to the inherited environment: `(NAME, Some(value))` sets,
/// `(NAME, None)` removes.
pub type EnvChanges = [(OsString, Option<OsString>)];

/// [`run`] with changes to the environment the command inherits (the
/// rehearsal points a command at its shadow this way).
pub async fn run_with_env(argv: &[OsString], env: &EnvChanges) -> Result<Ended, SpawnError> {
    let no_tripwire: Option<(std::future::Pending<()>, Duration)> = None;
    Ok(run_watched_in(argv, env, no_tripwire).await?.0)
}

/// Run `argv`; if `tripwire` completes first, stop the command: SIGTERM to its
/// process group, SIGKILL after the grace period. Returns how it ended and
/// what the tripwire said, if it fired.
///
/// With a tripwire the command runs in a process group of its own, so that
/// everything it started can be stopped at once; Ctrl-C then reaches it
/// through opsguard, which forwards it.
pub async fn run_watched<F, T>(
    argv: &[OsString],
    tripwire: Option<(F, Duration)>,
) -> Result<(Ended, Option<T>), SpawnError>
where
    F: std::future::Future<Output = T> + Unpin,
{
    run_watched_in(argv, &[], tripwire).await
}

async fn run_watched_in<F, T>(
    argv: &[OsString],
    env: &EnvChanges,
    tripwire: Option<(F, Duration)>,
) -> Result<(Ended, Option<T>), SpawnError>
where
    F: std::future::Future<Output = T> + Unpin,
{
    let program = argv.first().cloned().unwrap_or_default();
    let own_group = tripwire.is_some();
    let mut command = tokio::process::Command::new(&program);
    command.args(&argv[1..]).kill_on_drop(false);
    for (name, value) in env {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    if own_group {
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(|source| SpawnError {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    let pid = child.id().map(|p| p as libc::pid_t);
    let forward = |sig: libc::c_int| {
        if let Some(pid) = pid {
            tracing::debug!(signal = sig, pid, "forwarding signal to the command");
            // SAFETY: sending a signal to our own child (or its group), not yet reaped.
            unsafe {
                libc::kill(if own_group { -pid } else { pid }, sig);
            }
        }
    };
    let (mut tripwire, grace) = match tripwire {
        Some((f, g)) => (Some(f), g),
        None => (None, Duration::ZERO),
    };
    let mut tripped: Option<T> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let (mut int, mut term, mut hup, mut quit) = (
        signal(SignalKind::interrupt()).ok(),
        signal(SignalKind::terminate()).ok(),
        signal(SignalKind::hangup()).ok(),
        signal(SignalKind::quit()).ok(),
    );
    async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async fn trip<F: std::future::Future + Unpin>(f: &mut Option<F>) -> F::Output {
        match f {
            Some(f) => f.await,
            None => std::future::pending().await,
        }
    }
    async fn deadline(at: Option<tokio::time::Instant>) {
        match at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            t = trip(&mut tripwire), if tripped.is_none() => {
                tracing::debug!("tripwire tripped; SIGTERM to the command");
                eprintln!(
                    "opsguard: --watch tripwire: a credential the running tasks hold was refused; stopping the command (SIGTERM, SIGKILL after {} s)",
                    grace.as_secs()
                );
                tripped = Some(t);
                tripwire = None;
                forward(libc::SIGTERM);
                kill_at = Some(tokio::time::Instant::now() + grace);
            }
            _ = deadline(kill_at) => {
                tracing::debug!("grace period over; SIGKILL to the command");
                eprintln!(
                    "opsguard: the command did not stop within {} s of SIGTERM; SIGKILL",
                    grace.as_secs()
                );
                forward(libc::SIGKILL);
                kill_at = None;
            }
            _ = recv(&mut int) => if own_group || !terminal_delivers_sigint() { forward(libc::SIGINT) },
            _ = recv(&mut term) => forward(libc::SIGTERM),
            _ = recv(&mut hup) => forward(libc::SIGHUP),
            _ = recv(&mut quit) => forward(libc::SIGQUIT),
        }
    };
    let status = status.map_err(|source| SpawnError {
        program: program.to_string_lossy().into_owned(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok((
        Ended {
            code: status.code(),
            signal: status.signal(),
        },
        tripped,
    ))
}
