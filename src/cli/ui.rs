//! How the person at the terminal is spoken to, decided once from the global
//! flags (`--quiet`, `--color`, `-v`) and the environment (`NO_COLOR`,
//! whether stderr is a terminal), then read by every subcommand: the human
//! report, the progress lines and the log all follow the same choice.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`: when the human output on stderr may use ANSI colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set and not empty.
    #[default]
    Auto,
    /// Always, even into a pipe or a file (and despite `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

/// The choices, fixed for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// ANSI colour in the human output and the log.
    pub colour: bool,
    /// `--quiet`: the human report is the verdict line only; no progress.
    pub quiet: bool,
    /// `-v` count: 0 the report, 1 more detail and the calls made, 2 and 3
    /// ever more of the log.
    pub verbose: u8,
    /// Progress lines for slow steps: stderr is a terminal, not quiet, and
    /// not a GitHub Actions log (which keeps every redraw as a line).
    pub progress: bool,
}

impl Ui {
    /// Decide from the flags and the process's environment.
    pub fn decide(color: ColorChoice, quiet: bool, verbose: u8) -> Ui {
        let terminal = std::io::stderr().is_terminal();
        let actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        Ui {
            colour,
            quiet,
            verbose,
            progress: terminal && !quiet && !actions,
        }
    }
}

static UI: OnceLock<Ui> = OnceLock::new();

/// Fix the choices for this process (the first call wins).
pub fn set(ui: Ui) {
    let _ = UI.set(ui);
}

static PROGRESS: OnceLock<crate::progress::Progress> = OnceLock::new();

/// The process's progress lines: drawn on stderr when [`Ui::progress`],
/// hidden otherwise. Handed down to the pipeline as an option; the log
/// writer lifts them around each record.
pub fn progress() -> crate::progress::Progress {
    PROGRESS
        .get_or_init(|| {
            if get().progress {
                crate::progress::Progress::stderr()
            } else {
                crate::progress::Progress::hidden()
            }
        })
        .clone()
}

/// The choices; when [`set`] was never called (a library caller, a unit
/// test), what `--color auto` and no other flag would give.
pub fn get() -> Ui {
    *UI.get_or_init(|| Ui::decide(ColorChoice::Auto, false, 0))
}
