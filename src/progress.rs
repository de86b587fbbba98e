//! What opsguard is waiting for, on the terminal.
//!
//! A snapshot of a large environment, an emulator starting, a redeploy
//! becoming stable: each can take seconds to minutes, and a silent terminal
//! looks hung. A [`Progress`] draws one line per wait in progress ("before
//! snapshot: listing secrets (page 4)", "after snapshot: probing 300
//! credentials 57/300") on stderr, and clears each line when its wait ends.
//!
//! It is a handle, passed down as an option from the command line (which
//! decides, once, whether stderr is a terminal worth drawing on: not with
//! `--quiet`, not under GitHub Actions, not into a pipe). A hidden handle
//! draws nothing and costs nothing, so the pipeline (snapshots, providers,
//! remedies) calls it unconditionally and never asks the command line.
//!
//! The log shares stderr with the lines (and, without `-v`, carries the
//! warnings said as `opsguard: …` messages): its writer goes through
//! [`Progress::suspend`], which lifts the lines, writes, and draws them
//! again, so no text is torn. The wrapped command owns the terminal while it runs:
//! [`Progress::hold`] clears every line before it is spawned and draws
//! nothing until it has exited.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a spinner turns (and its elapsed time is redrawn).
const TICK: Duration = Duration::from_millis(120);

/// A handle to the progress lines; cloning it shares them.
#[derive(Clone, Default)]
pub struct Progress {
    shared: Option<Arc<Shared>>,
    /// What the current phase is called ("before snapshot"), put before
    /// every line of it.
    scope: Option<Arc<str>>,
}

struct Shared {
    multi: MultiProgress,
    /// The wrapped command runs: draw nothing.
    held: AtomicBool,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("shown", &self.is_shown())
            .field("scope", &self.scope)
            .finish()
    }
}

impl Progress {
    /// Draws nothing (not a terminal, `--quiet`, a library caller, a test).
    pub fn hidden() -> Progress {
        Progress::default()
    }

    /// Draws on stderr. The caller decides that stderr is a terminal a
    /// person reads (see `cli::ui`).
    pub fn stderr() -> Progress {
        Progress::drawing_to(ProgressDrawTarget::stderr_with_hz(10))
    }

    fn drawing_to(target: ProgressDrawTarget) -> Progress {
        Progress {
            shared: Some(Arc::new(Shared {
                multi: MultiProgress::with_draw_target(target),
                held: AtomicBool::new(false),
            })),
            scope: None,
        }
    }

    /// Whether anything is drawn at all.
    pub fn is_shown(&self) -> bool {
        self.shared.is_some()
    }

    /// The same lines, each prefixed with `scope` ("after snapshot").
    pub fn scoped(&self, scope: &str) -> Progress {
        Progress {
            shared: self.shared.clone(),
            scope: Some(Arc::from(scope)),
        }
    }

    fn label(&self, what: &str) -> String {
        match &self.scope {
            Some(s) => format!("{s}: {what}"),
            None => what.to_owned(),
        }
    }

    fn add(&self, bar: ProgressBar) -> Step {
        let Some(shared) = &self.shared else {
            return Step(None);
        };
        let bar = shared.multi.add(bar);
        bar.enable_steady_tick(TICK);
        bar.tick();
        Step(Some(bar))
    }

    /// One wait of unknown length: a spinner with `what` and the time spent.
    pub fn step(&self, what: impl AsRef<str>) -> Step {
        if self.shared.is_none() {
            return Step(None);
        }
        let bar = ProgressBar::no_length()
            .with_style(style("{spinner} {prefix}… {msg} {elapsed}"))
            .with_prefix(self.label(what.as_ref()));
        self.add(bar)
    }

    /// `total` waits of one kind: "describing task definitions 120/300".
    pub fn count(&self, what: impl AsRef<str>, total: u64) -> Step {
        if self.shared.is_none() {
            return Step(None);
        }
        let bar = ProgressBar::new(total)
            .with_style(style("{spinner} {prefix} {pos}/{len} {msg} {elapsed}"))
            .with_prefix(self.label(what.as_ref()));
        self.add(bar)
    }

    /// Run `f` (which writes to stderr) with the lines lifted, then draw
    /// them again: a log record or a message is never torn by a line.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.shared {
            Some(s) if !s.held.load(Ordering::Relaxed) => s.multi.suspend(f),
            _ => f(),
        }
    }

    /// The wrapped command is about to own the terminal: clear every line,
    /// say what runs (on a terminal only), and draw nothing until the
    /// returned guard is dropped (after the command exited).
    pub fn hold(&self, running: &str) -> Hold {
        let Some(shared) = &self.shared else {
            return Hold(None);
        };
        let _ = shared.multi.clear();
        shared
            .multi
            .suspend(|| eprintln!("{}", self.label(&format!("running: {running}"))));
        shared.held.store(true, Ordering::Relaxed);
        shared.multi.set_draw_target(ProgressDrawTarget::hidden());
        Hold(Some(shared.clone()))
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

/// One line, cleared when dropped.
#[must_use = "the line is cleared when the step is dropped"]
pub struct Step(Option<ProgressBar>);

impl Step {
    /// A step that draws nothing.
    pub fn none() -> Step {
        Step(None)
    }

    /// What, within the step, is being waited for now ("page 4").
    pub fn say(&self, msg: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.set_message(msg.into());
        }
    }

    /// One more of the counted waits is over.
    pub fn inc(&self) {
        if let Some(b) = &self.0 {
            b.inc(1);
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.finish_and_clear();
        }
    }
}

/// The wrapped command runs; dropped when it has exited.
pub struct Hold(Option<Arc<Shared>>);

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.multi
                .set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            s.held.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_handle_draws_and_holds_nothing() {
        let p = Progress::hidden().scoped("before snapshot");
        assert!(!p.is_shown());
        let s = p.count("probing 3 credentials", 3);
        s.inc();
        s.say("x");
        assert!(s.0.is_none());
        let h = p.hold("true");
        assert!(h.0.is_none());
        assert_eq!(p.suspend(|| 7), 7);
    }

    #[test]
    fn lines_carry_the_scope_and_hold_hides_them() {
        let p = Progress::drawing_to(ProgressDrawTarget::hidden()).scoped("after snapshot");
        assert_eq!(
            p.label("listing secrets"),
            "after snapshot: listing secrets"
        );
        let step = p.step("listing secrets");
        let bar = step.0.clone().expect("a bar");
        assert_eq!(bar.prefix(), "after snapshot: listing secrets");
        {
            let _held = p.hold("sleep 1");
            assert!(p.shared.as_ref().unwrap().held.load(Ordering::Relaxed));
        }
        assert!(!p.shared.as_ref().unwrap().held.load(Ordering::Relaxed));
        drop(step);
        assert!(bar.is_finished());
    }
}
