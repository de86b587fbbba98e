//! `opsguard completions SHELL` and `opsguard man`: shell completions and a
//! man page, generated from the clap definitions, so they cannot drift from
//! the commands they describe.

use clap::Args;
use clap_mangen::roff::{bold, roman, Roff};
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
fn man_page(cmd: clap::Command) -> Page {
    Page(
        clap_mangen::Man::new(cmd.clone())
            .source(format!("opsguard {}", env!("CARGO_PKG_VERSION"))),
        cmd,
    )
}

/// clap_mangen's sections, with the exit codes under EXIT STATUS kept as the
/// table they are (its EXTRA section re-fills them into one paragraph), and
/// the ENVIRONMENT, FILES and EXAMPLES sections a man page reader looks for.
struct Page(clap_mangen::Man, clap::Command);

impl Page {
    fn render(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let (man, cmd) = (&self.0, &self.1);
        man.render_title(w)?;
        man.render_name_section(w)?;
        man.render_synopsis_section(w)?;
        man.render_description_section(w)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(w)?;
        }
        if cmd.has_subcommands() {
            man.render_subcommands_section(w)?;
        }
        let mut roff = Roff::default();
        if let Some(after) = cmd.get_after_help() {
            roff.control("SH", ["EXIT STATUS"]);
            preformatted(&mut roff, &after.to_string());
        }
        let name = cmd.get_name();
        if !matches!(name, "completions" | "man") {
            roff.control("SH", ["ENVIRONMENT"]);
            for (var, what) in ENVIRONMENT {
                roff.control("TP", [])
                    .text([bold(*var)])
                    .text([roman(*what)]);
            }
            roff.control("SH", ["FILES"]);
            for (file, what) in FILES {
                roff.control("TP", [])
                    .text([bold(*file)])
                    .text([roman(*what)]);
            }
        }
        if let Some(lines) = examples(cmd.get_display_name().unwrap_or(name)) {
            roff.control("SH", ["EXAMPLES"]);
            preformatted(&mut roff, lines);
        }
        roff.to_writer(w)?;
        if cmd.get_version().is_some() {
            man.render_version_section(w)?;
        }
        Ok(())
    }

    fn generate_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let name = self.1.get_display_name().unwrap_or(self.1.get_name());
        let mut file = std::fs::File::create(dir.join(format!("{name}.1")))?;
        self.render(&mut file)
    }
}

fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([roman(line)]).control("br", []);
    }
    roff.control("fi", []);
}

const ENVIRONMENT: &[(&str, &str)] = &[
    ("OPSGUARD_CONFIG", "The config file, when --config is not given (default ./opsguard.toml)."),
    ("OPSGUARD_FINGERPRINT_KEY", "The key of the value fingerprints, instead of .opsguard/fingerprint.key; set the same one wherever snapshots are compared."),
    ("NO_COLOR", "No colour in human output, even on a terminal."),
    ("RUST_LOG", "Log filter (e.g. opsguard=debug); -v and -vv set one."),
    ("AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE, ...", "The standard AWS chain, unless [aws] in the config says otherwise."),
    ("GITHUB_ACTIONS, GITHUB_STEP_SUMMARY", "Under GitHub Actions, findings are also annotations and the Markdown report is appended to the step summary."),
];

const FILES: &[(&str, &str)] = &[
    ("opsguard.toml", "The config: what to watch, how to reach it, credentials, rules, waivers."),
    (".opsguard/", "State beside the config, ignored by git (it holds its own .gitignore): fingerprint.key, lock, and runs/RUN_ID/ with each run's snapshots, facts, remedy journal and report."),
];

/// A few command lines a reader can copy, per page.
fn examples(page: &str) -> Option<&'static str> {
    Some(match page {
        "opsguard" => "opsguard init\nopsguard check\nopsguard run -- python3 create_users.py\nopsguard resume 20261124T101500Z-3f2a",
        "opsguard-run" => "opsguard run -- python3 create_users.py\nopsguard run --on-violation block --report report.json -- ./rotate.sh\nopsguard run --watch -- terraform apply",
        "opsguard-check" => "opsguard check\nopsguard check --format markdown >> \"$GITHUB_STEP_SUMMARY\"",
        "opsguard-snapshot" => "opsguard snapshot -o before.json",
        "opsguard-diff" => "opsguard diff before.json after.json --format json",
        "opsguard-resume" => "opsguard resume 20261124T101500Z-3f2a",
        "opsguard-rules" | "opsguard-rules-list" | "opsguard-rules-test" => "opsguard rules list\nopsguard rules test my-rules/",
        "opsguard-hook-install" | "opsguard-hook" => "opsguard hook install --chain",
        "opsguard-init" => "opsguard init -o opsguard.toml",
        "opsguard-completions" => "mkdir -p ~/.local/share/bash-completion/completions\nopsguard completions bash > ~/.local/share/bash-completion/completions/opsguard",
        "opsguard-man" => "opsguard man --dir /usr/local/share/man/man1",
        _ => return None,
    })
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
