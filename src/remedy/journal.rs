//! The remedy journal: `.opsguard/runs/RUN_ID/journal.jsonl`.
//!
//! Every step is written down (and fsynced) *before* it acts and again when
//! it is done, so a remedy interrupted at any instant — even by SIGKILL — can
//! be finished by `opsguard resume RUN_ID`: steps not marked done are applied
//! again, which is safe because every step is idempotent. The journal holds
//! no secret values: a password is referred to by the secret version that
//! holds it.

use super::plan::Plan;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FILE: &str = "journal.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A remedy begins: its mode, and when the command it repairs ended.
    Begin {
        run_id: String,
        mode: crate::config::Mode,
    },
    Plan {
        plan: Plan,
    },
    Started {
        step: usize,
        kind: String,
        target: String,
    },
    Done {
        step: usize,
    },
    Failed {
        step: usize,
        detail: String,
    },
    /// The fresh snapshot after the remedy: were all blocking violations gone?
    Verified {
        ok: bool,
    },
    Finished {
        exit_code: u8,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    at: String,
    #[serde(flatten)]
    event: Event,
}

pub struct Journal {
    path: PathBuf,
    file: File,
    seq: u64,
}

impl Journal {
    /// Open (creating, or continuing) the journal of a run.
    pub fn open(run_dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(run_dir)?;
        let path = run_dir.join(FILE);
        // A line torn by a crash mid-write is cut off, so that what is
        // appended next starts on a line of its own.
        if let Ok(bytes) = std::fs::read(&path) {
            let keep = bytes
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            if keep < bytes.len() {
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(keep as u64)?;
            }
        }
        let seq = read(&path).map(|r| r.events.len() as u64).unwrap_or(0);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Journal { path, file, seq })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event and make it durable before returning.
    pub fn append(&mut self, event: Event) -> std::io::Result<()> {
        self.seq += 1;
        let line = Line {
            seq: self.seq,
            at: crate::model::now_rfc3339(),
            event,
        };
        let mut text = serde_json::to_string(&line).expect("journal lines serialise");
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        failpoint(&line.event);
        Ok(())
    }
}

/// Test-only crash injection (feature `failpoints`): with
/// `OPSGUARD_FAILPOINT=kill-after-started:N`, opsguard SIGKILLs itself right
/// after journalling the start of step N (1-based), so tests can prove that
/// `resume` finishes a remedy interrupted at every step.
#[cfg(feature = "failpoints")]
fn failpoint(event: &Event) {
    if let (Ok(fp), Event::Started { step, .. }) = (std::env::var("OPSGUARD_FAILPOINT"), event) {
        if fp
            .strip_prefix("kill-after-started:")
            .and_then(|n| n.parse::<usize>().ok())
            == Some(step + 1)
        {
            // SAFETY: signalling ourselves.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_: &Event) {}

/// A named crash point (feature `failpoints`): `OPSGUARD_FAILPOINT=kill-at:NAME`.
#[cfg(feature = "failpoints")]
pub fn failpoint_at(name: &str) {
    if std::env::var("OPSGUARD_FAILPOINT").ok().as_deref() == Some(&format!("kill-at:{name}")) {
        // SAFETY: signalling ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(not(feature = "failpoints"))]
pub fn failpoint_at(_: &str) {}

/// What a journal holds: its events in order, and what was wrong with it.
///
/// A journal is read back as untrusted input (a disk, an editor, another
/// process may have damaged it): a line that is not an event is skipped and
/// named; an event that contradicts the plan (a step the plan does not have)
/// is dropped and named (see [`Progress::checked`]); nothing in it can make
/// opsguard panic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Read {
    pub events: Vec<Event>,
    /// `journal.jsonl:N: what is wrong`, for the report.
    pub problems: Vec<String>,
}

/// Every event of a journal, in order, with the lines that could not be used.
pub fn read(path: &Path) -> std::io::Result<Read> {
    let bytes = std::fs::read(path)?;
    Ok(parse(&bytes))
}

/// [`read`] on bytes already in memory.
pub fn parse(bytes: &[u8]) -> Read {
    let mut out = Read::default();
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(l) => out.events.push(l.event),
            // A torn last line (killed mid-write, no newline yet) is not an
            // event, and not worth a word.
            Err(_) if i == last => {}
            Err(e) => out.problems.push(format!(
                "{FILE}:{}: not a journal event, skipped ({})",
                i + 1,
                crate::report::escape::line(&e.to_string(), 200)
            )),
        }
    }
    out
}

/// What a journal says about its remedy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub mode: Option<crate::config::Mode>,
    pub plan: Option<Plan>,
    /// Steps marked done.
    pub done: Vec<usize>,
    /// Steps whose last attempt failed, with why.
    pub failed: Vec<(usize, String)>,
    pub finished: Option<u8>,
    /// What the last verification said.
    pub verified: Option<bool>,
}

impl Progress {
    /// Replay the events. Events that name a step the plan in force does not
    /// have, or that come before any plan, are ignored (see
    /// [`Progress::checked`]); a new plan (a re-plan after an unverified
    /// remedy) starts its steps afresh.
    pub fn of(events: &[Event]) -> Progress {
        Progress::checked(events).0
    }

    /// [`Progress::of`], with what was ignored and why.
    pub fn checked(events: &[Event]) -> (Progress, Vec<String>) {
        let mut p = Progress::default();
        let mut problems = Vec::new();
        for (n, e) in events.iter().enumerate() {
            let steps = p.plan.as_ref().map(|pl| pl.steps.len());
            let mut step_ok = |step: usize| match steps {
                Some(len) if step < len => true,
                Some(len) => {
                    problems.push(format!(
                        "{FILE}: event {} names step {step}, but the plan has {len} step(s); ignored",
                        n + 1
                    ));
                    false
                }
                None => {
                    problems.push(format!(
                        "{FILE}: event {} names step {step} before any plan; ignored",
                        n + 1
                    ));
                    false
                }
            };
            match e {
                Event::Begin { mode, .. } => p.mode = Some(*mode),
                Event::Plan { plan } => {
                    p.plan = Some(plan.clone());
                    p.done.clear();
                    p.failed.clear();
                    p.finished = None;
                    p.verified = None;
                }
                Event::Started { step, .. } => {
                    if step_ok(*step) {
                        p.failed.retain(|(s, _)| s != step)
                    }
                }
                Event::Done { step } => {
                    if step_ok(*step) && !p.done.contains(step) {
                        p.done.push(*step);
                    }
                }
                Event::Failed { step, detail } => {
                    if step_ok(*step) {
                        p.failed.push((*step, detail.clone()))
                    }
                }
                Event::Verified { ok } => p.verified = Some(*ok),
                Event::Finished { exit_code } => p.finished = Some(*exit_code),
            }
        }
        (p, problems)
    }

    /// Steps still to apply, in plan order.
    pub fn pending(&self) -> Vec<usize> {
        let n = self.plan.as_ref().map(|p| p.steps.len()).unwrap_or(0);
        (0..n).filter(|i| !self.done.contains(i)).collect()
    }

    /// The last attempt ran to its end and its fresh snapshot did not prove
    /// it: finishing "its" pending steps is not enough; a new plan from the
    /// current state is needed.
    pub fn ended_unverified(&self) -> bool {
        self.plan.is_some()
            && (self.verified == Some(false)
                || self.finished.is_some_and(|c| c != crate::exit::REMEDIATED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceRef;
    use crate::remedy::plan::Step;

    fn plan() -> Plan {
        Plan {
            steps: vec![
                Step::DesiredCount {
                    service: ServiceRef::new("c", "a"),
                    desired: 1,
                },
                Step::Redeploy {
                    service: ServiceRef::new("c", "b"),
                },
            ],
            cannot: vec![],
        }
    }

    #[test]
    fn progress_survives_a_reopen_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(Event::Begin {
            run_id: "r".into(),
            mode: crate::config::Mode::Rollback,
        })
        .unwrap();
        j.append(Event::Plan { plan: plan() }).unwrap();
        j.append(Event::Started {
            step: 0,
            kind: "desired-count".into(),
            target: "c/a".into(),
        })
        .unwrap();
        j.append(Event::Done { step: 0 }).unwrap();
        j.append(Event::Started {
            step: 1,
            kind: "redeploy".into(),
            target: "c/b".into(),
        })
        .unwrap();
        drop(j);
        // Killed in the middle of writing the next line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap()
            .write_all(b"{\"seq\":6,\"at\":\"x\",\"ev")
            .unwrap();
        let p = Progress::of(&read(&dir.path().join(FILE)).unwrap().events);
        assert_eq!(p.mode, Some(crate::config::Mode::Rollback));
        assert_eq!(p.plan, Some(plan()));
        assert_eq!(p.done, vec![0]);
        assert_eq!(p.pending(), vec![1]);
        assert_eq!(p.finished, None);

        // Reopened, numbering continues.
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.seq, 5);
        j.append(Event::Failed {
            step: 1,
            detail: "boom".into(),
        })
        .unwrap();
        let p = Progress::of(&read(j.path()).unwrap().events);
        assert_eq!(p.failed, vec![(1, "boom".into())]);
    }

    #[test]
    fn the_journal_holds_no_values_only_version_references() {
        let step = Step::EsPassword {
            user: "search".into(),
            credential: "search".into(),
            value: crate::remedy::plan::ValueRef {
                secret: crate::model::SecretName::new("es/search/password"),
                version_id: "v1".into(),
                json_key: None,
                field: None,
            },
        };
        let json = serde_json::to_string(&Event::Plan {
            plan: Plan {
                steps: vec![step],
                cannot: vec![],
            },
        })
        .unwrap();
        assert!(json.contains("\"version_id\":\"v1\""), "{json}");
        assert!(!json.contains("password\":"), "no password field: {json}");
    }
}
