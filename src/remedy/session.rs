//! One remedy attempt, from its first journal line to its last.
//!
//! A remedy writes its journal before every act, so that a crash can be
//! finished by `resume`. A journal line that cannot be written is therefore
//! not a detail to ignore: before a step it means "do not act" (a crash
//! afterwards could not be resumed), and after one it means the journal no
//! longer says what was done. [`Session`] owns the journal and handles a
//! failed append here, in one place: the step is not started, and the
//! failure is kept and reported with the outcome.

use super::journal::{Event, Journal};
use super::plan::Plan;
use std::path::Path;

pub struct Session {
    journal: Journal,
    /// The first append that failed, if any.
    broken: Option<String>,
}

impl Session {
    /// Open the run's journal and, unless it already has one, write the
    /// `begin` line. Fails when the journal cannot be written: then no
    /// remedy may start.
    pub fn begin(
        run_dir: &Path,
        run_id: &str,
        mode: crate::config::Mode,
        already_begun: bool,
    ) -> Result<Session, String> {
        let journal =
            Journal::open(run_dir).map_err(|e| format!("cannot open the remedy journal: {e}"))?;
        let mut s = Session {
            journal,
            broken: None,
        };
        if !already_begun {
            s.record(Event::Begin {
                run_id: run_id.to_owned(),
                mode,
            })?;
        }
        Ok(s)
    }

    /// Journal the plan about to be applied. Without it nothing may act.
    pub fn plan(&mut self, plan: &Plan) -> Result<(), String> {
        self.record(Event::Plan { plan: plan.clone() })
    }

    /// Append one event. A failure is kept (see [`Session::broken`]) and
    /// returned, so a caller about to act can refuse to.
    pub fn record(&mut self, event: Event) -> Result<(), String> {
        match self.journal.append(event) {
            Ok(()) => Ok(()),
            Err(e) => {
                let why = format!(
                    "cannot write the remedy journal {}: {e}",
                    self.journal.path().display()
                );
                tracing::error!("{why}");
                if self.broken.is_none() {
                    self.broken = Some(why.clone());
                }
                Err(why)
            }
        }
    }

    pub fn verified(&mut self, ok: bool) {
        let _ = self.record(Event::Verified { ok });
    }

    pub fn finish(&mut self, exit_code: u8) {
        let _ = self.record(Event::Finished { exit_code });
    }

    /// Why the journal stopped being written, if it did.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }
}
