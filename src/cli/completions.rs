//! `opsguard completions SHELL` and `opsguard man`: shell completions and a
//! man page, generated from the clap definitions, so they cannot drift from
//! the commands they describe.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  0   written to standard output
  2   usage error (an unknown shell)";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`run`, `hook install`, …);
    /// default: the main page, opsguard(1).
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Vec<String>,

    /// Write every page (opsguard.1, opsguard-run.1, …) into DIR instead.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<PathBuf>,
}

/// Completions for `shell`, on stdout.
pub fn completions(args: CompletionsArgs) -> u8 {
    let mut cmd = super::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "opsguard", &mut out);
    write_stdout(&out)
}

/// A man page (roff) on stdout (`opsguard man > opsguard.1`), or every page
/// into `--dir`.
pub fn man(args: ManArgs) -> u8 {
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = &args.dir {
        return match write_pages(&cmd, dir) {
            Ok(()) => {
                eprintln!("man pages written to {}", dir.display());
                crate::exit::OK
            }
            Err(e) => {
                eprintln!(
                    "Error: cannot write the man pages to {}: {e}\n  help: create the folder first, or print one page to stdout with `opsguard man [SUBCOMMAND]`",
                    dir.display()
                );
                crate::exit::USAGE
            }
        };
    }
    let mut page = cmd;
    for name in &args.subcommand {
        let Some(sub) = page.find_subcommand(name).cloned() else {
            let names: Vec<&str> = page.get_subcommands().map(|c| c.get_name()).collect();
            eprintln!(
                "Error: `{}` has no subcommand `{name}`\n  help: one of: {}",
                page.get_display_name().unwrap_or(page.get_name()),
                names.join(", ")
            );
            return crate::exit::USAGE;
        };
        page = sub;
    }
    let mut out = Vec::new();
    // Rendering into memory cannot fail.
    let _ = man_page(page).render(&mut out);
    write_stdout(&out)
}

/// A page, its source naming opsguard and its version (clap would take the
/// subcommand's own, which it does not have).
fn man_page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(format!("opsguard {}", env!("CARGO_PKG_VERSION")))
}

/// `cmd`'s page and those of all its subcommands, into `dir`.
fn write_pages(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    man_page(cmd.clone()).generate_to(dir).map(|_| ())
}

/// A closed pipe (`| head`) is the reader's choice; the page was still made.
fn write_stdout(bytes: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
    crate::exit::OK
}
