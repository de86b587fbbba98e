//! Child processes that cannot outlive the test process.
//!
//! Linux's `PR_SET_PDEATHSIG` sends a signal to a child when the *thread* that
//! forked it exits, not when the parent process exits. Test harnesses run every
//! test on a short-lived thread, so a child that must outlive one test (the
//! shared ministack) is forked from [`spawn_guarded`]'s dedicated thread, which
//! lives until the process exits.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Arrange for `cmd`'s child to get SIGKILL when the thread that spawns it
/// exits, and to be the leader of a process group of its own (so it and
/// everything it starts can be killed at once with [`kill_group`]).
pub(crate) fn die_with_spawning_thread(cmd: &mut Command) {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    cmd.process_group(0);
    // SAFETY: the closure only calls async-signal-safe functions (prctl,
    // getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal
            // will ever come, so refuse to start.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited before the child started"));
            }
            Ok(())
        });
    }
}

/// Spawn `cmd` from a thread that lives as long as the process, with
/// [`die_with_spawning_thread`] applied: the child gets SIGKILL when the test
/// process exits, however it exits.
pub(crate) fn spawn_guarded(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    die_with_spawning_thread(&mut cmd);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static and is never dropped, so the
                // loop above never ends; should it, the thread must still not
                // exit, or every child it spawned would be killed.
                loop {
                    thread::park();
                }
            })
            .expect("start the testkit spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((cmd, reply_tx))
        .expect("the testkit spawner thread is gone");
    reply_rx
        .recv()
        .expect("the testkit spawner thread dropped a request")
}

/// SIGKILL the process group led by `pid` (see [`die_with_spawning_thread`])
/// and wait, up to 5 s, until none of its members is alive any more. Call it
/// before reaping the leader, while the group id cannot be reused.
pub(crate) fn kill_group(pid: u32) {
    // SAFETY: plain syscall; a group that is already gone gives ESRCH.
    if unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) } != 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_members(pid).into_iter().any(is_alive) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
}

/// The processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name: state, ppid, pgrp.
            stat.rfind(')').and_then(|end| {
                stat[end + 1..]
                    .split_whitespace()
                    .nth(2)?
                    .parse::<u32>()
                    .ok()
            }) == Some(pgid)
        })
        .collect()
}

/// Whether `pid` is a live process: one of its threads is not yet dead. (A
/// killed multi-threaded process shows its leader as a zombie while its other
/// threads are still exiting and holding its sockets open.)
pub fn is_alive(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        match std::fs::read_to_string(thread.path().join("stat")) {
            // The state follows the parenthesised command name, which may
            // itself contain spaces or parentheses.
            Ok(stat) => match stat.rfind(')') {
                Some(end) => {
                    !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X'))
                }
                None => true,
            },
            Err(_) => false,
        }
    })
}

/// Whether the child has exited, without reaping it (`waitid` with
/// `WNOWAIT`), so its process group id stays reserved until [`kill_group`].
pub(crate) fn has_exited(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain data; waitid writes it.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        // rc == -1 (ECHILD): already reaped, so certainly exited.
        rc != 0 || info.si_pid() != 0
    }
}
