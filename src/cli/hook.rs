//! `opsguard hook install [--force] [--chain]`: the git pre-push hook.
//!
//! The hook is a small POSIX shell script, so it needs nothing but `sh` and
//! `git` at push time. From the repository root it runs `opsguard rules test`
//! (a broken rule never reaches main), `opsguard rules list` (loads the config,
//! the rules and the waivers: an expired waiver or an unknown rule id fails)
//! `opsguard check` (the steady-state rules on the configured environment)
//! and `opsguard plan --if-configured` (the plan rules on the Terraform plan
//! that `[plan]` in the config names, when it names one), stopping at the
//! first failure with that command's exit code.
//!
//! Why these choices:
//! * the hooks folder comes from `git rev-parse --git-path hooks`, so linked
//!   worktrees and `core.hooksPath` get the hook where git looks for it;
//! * a hook opsguard wrote carries [`MARKER`]; any other is somebody's work
//!   and is never overwritten silently: `--force` replaces it (keeping a
//!   copy), `--chain` keeps it as `pre-push.opsguard-chained` and runs it
//!   first, with the same arguments and stdin;
//! * the binary is found by the absolute path recorded at install time (a GUI
//!   git client may not have cargo's bin folder on PATH), then on PATH;
//! * there is no environment variable that skips the checks: the only way
//!   past them is git's own `git push --no-verify`, which is visible and
//!   deliberate.

use clap::{Args, Subcommand};
use miette::Diagnostic;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The line that says opsguard wrote a hook (and may rewrite it).
pub const MARKER: &str = "# opsguard-managed-hook: pre-push";
/// What `--chain` renames a foreign hook to; the hook runs it first.
pub const CHAINED: &str = "pre-push.opsguard-chained";
/// What `--force` keeps a replaced foreign hook as (a number is added if taken).
pub const REPLACED: &str = "pre-push.opsguard-replaced";

pub const EXIT_CODES: &str = "\
Exit codes:
  0   the hook is installed (or was already, unchanged)
  2   not in a git repository, a foreign pre-push hook is in the way (see
      --force, --chain), or the hooks folder cannot be written

The installed hook exits 0 when every check passes, else with the code of the
first command that failed: 1 (a rule test failed), 2 (config, rule or waiver
error), 11 (blocking violation on the live environment), 13 (the environment
could not be snapshotted). Skip it for one push with `git push --no-verify`.";

#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    pub command: HookCommand,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write the pre-push hook of the git repository in the current directory:
    /// before every push it runs `opsguard rules test`, `opsguard rules list`,
    /// `opsguard check` and, when [plan] is configured, `opsguard plan` from
    /// the repository root.
    #[command(after_help = EXIT_CODES)]
    Install(InstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Replace a pre-push hook opsguard did not write (a copy is kept as
    /// pre-push.opsguard-replaced).
    #[arg(long)]
    pub force: bool,

    /// Keep a pre-push hook opsguard did not write: it is renamed to
    /// pre-push.opsguard-chained and runs first, with the same arguments and
    /// stdin; the push stops if it fails.
    #[arg(long)]
    pub chain: bool,
}

#[derive(Debug, Error, Diagnostic)]
pub enum HookError {
    #[error("cannot run git: {0}")]
    #[diagnostic(
        code(opsguard::hook::git),
        help("opsguard asks git where the hooks folder is; install git or put it on PATH")
    )]
    NoGit(std::io::Error),

    #[error("not inside a git repository: {message}")]
    #[diagnostic(
        code(opsguard::hook::not_a_repository),
        help(
            "run `opsguard hook install` from inside the repository whose pushes it should guard"
        )
    )]
    NotARepository { message: String },

    #[error("{} is a pre-push hook opsguard did not write", path.display())]
    #[diagnostic(
        code(opsguard::hook::foreign),
        help("pass --chain to keep it and run it before opsguard's checks, or --force to replace it (a copy is kept as {REPLACED})")
    )]
    Foreign { path: PathBuf },

    #[error("{} is a pre-push hook opsguard did not write, and {} exists already", path.display(), chained.display())]
    #[diagnostic(
        code(opsguard::hook::chain_taken),
        help("merge the two hooks into {CHAINED} by hand (or move one away), then run `opsguard hook install` again")
    )]
    ChainTaken { path: PathBuf, chained: PathBuf },

    #[error("cannot write {}: {cause}", path.display())]
    #[diagnostic(
        code(opsguard::hook::write),
        help("check that the hooks folder exists and is writable by you (`git rev-parse --git-path hooks` names it)")
    )]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

pub fn execute(args: HookArgs) -> Result<u8, HookError> {
    match args.command {
        HookCommand::Install(a) => install(Path::new("."), &a, &mut std::io::stderr().lock()),
    }
}

/// Install into the repository containing `dir`; what was done goes to `log`.
pub fn install(dir: &Path, args: &InstallArgs, log: &mut dyn Write) -> Result<u8, HookError> {
    let hooks = hooks_dir(dir)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |cause| HookError::Io { path, cause }
    };
    std::fs::create_dir_all(&hooks).map_err(io(&hooks))?;
    let target = hooks.join("pre-push");
    let chained = hooks.join(CHAINED);

    let existing = match std::fs::read(&target) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink reads as missing but still occupies the name.
            std::fs::symlink_metadata(&target)
                .ok()
                .map(|_| String::new())
        }
        Err(e) => return Err(io(&target)(e)),
    };
    let mut notes = Vec::new();
    match existing {
        Some(text) if !is_ours(&text) => {
            if args.chain {
                if std::fs::symlink_metadata(&chained).is_ok() {
                    return Err(HookError::ChainTaken {
                        path: target,
                        chained,
                    });
                }
                std::fs::rename(&target, &chained).map_err(io(&chained))?;
                notes.push(format!(
                    "kept the existing hook as {}: it runs first",
                    chained.display()
                ));
            } else if args.force {
                let backup = free_name(&hooks.join(REPLACED));
                std::fs::rename(&target, &backup).map_err(io(&backup))?;
                notes.push(format!(
                    "replaced the existing hook; a copy is in {}",
                    backup.display()
                ));
            } else {
                return Err(HookError::Foreign { path: target });
            }
        }
        Some(_) | None => {}
    }
    if std::fs::symlink_metadata(&chained).is_ok() && notes.is_empty() {
        notes.push(format!("{} runs first", chained.display()));
    }

    let recorded = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let text = script(recorded.as_deref());
    let unchanged = std::fs::read_to_string(&target).is_ok_and(|t| t == text)
        && std::fs::metadata(&target).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111);
    if !unchanged {
        write_executable(&target, &text).map_err(io(&target))?;
    }
    let _ = writeln!(
        log,
        "{} the pre-push hook {}: it runs `opsguard rules test`, `opsguard rules list`, `opsguard check` and (with [plan] configured) `opsguard plan` before each push",
        if unchanged { "already installed:" } else { "installed" },
        target.display()
    );
    let _ = match &recorded {
        Some(p) => writeln!(log, "  opsguard: {} (else the one on PATH)", p.display()),
        None => writeln!(log, "  opsguard: the one on PATH"),
    };
    for n in notes {
        let _ = writeln!(log, "  {n}");
    }
    let _ = writeln!(log, "  skip it for one push with `git push --no-verify`");
    Ok(crate::exit::OK)
}

/// Where git looks for hooks, for the repository containing `dir`.
fn hooks_dir(dir: &Path) -> Result<PathBuf, HookError> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(dir)
        .output()
        .map_err(HookError::NoGit)?;
    if !out.status.success() {
        return Err(HookError::NotARepository {
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches(['\n', '\r']));
    Ok(if path.is_absolute() {
        path
    } else {
        dir.join(path)
    })
}

fn is_ours(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == MARKER)
}

/// `base`, or `base.1`, `base.2`, … whichever does not exist yet.
fn free_name(base: &Path) -> PathBuf {
    let mut candidate = base.to_owned();
    let mut n = 0;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{}.{n}", base.display()));
    }
    candidate
}

/// Write through a temporary file and a rename, so git never runs half a hook.
fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(".pre-push.opsguard-tmp-{}", std::process::id()));
    let result = (|| {
        std::fs::write(&tmp, text)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A word for `sh`, single-quoted.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook script. `opsguard` is the binary to prefer (the one installing).
pub fn script(opsguard: Option<&Path>) -> String {
    let recorded = opsguard
        .map(|p| sh_quote(&p.to_string_lossy()))
        .unwrap_or_else(|| "''".to_owned());
    format!(
        r#"#!/bin/sh
{MARKER}
# Written by `opsguard hook install` (opsguard {version}); running it again
# rewrites this file. Skip the hook for one push, the standard git way:
#   git push --no-verify
#
# From the repository root, stopping at the first failure (exit: its code):
#   opsguard rules test   every rule's test cases: a broken rule never reaches main
#   opsguard rules list   loads the config, rules and waivers: an expired waiver
#                         or an unknown rule id fails
#   opsguard check        the steady-state rules on the configured environment
#   opsguard plan --if-configured
#                         when [plan] in the config says where the Terraform
#                         plan JSON comes from: the plan rules on that plan
# The config is $OPSGUARD_CONFIG when set (relative to the root), else
# ./opsguard.toml. If {CHAINED} exists beside this file, it runs
# first, with the same arguments and stdin, and a failure there stops the push.

recorded={recorded}

hook_dir=$(cd -- "$(dirname -- "$0")" && pwd) || exit 1
chained="$hook_dir/{CHAINED}"
if [ -x "$chained" ]; then
    "$chained" "$@"
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "opsguard pre-push: $chained failed (exit $status); the push is stopped" >&2
        exit "$status"
    fi
elif [ -e "$chained" ]; then
    echo "opsguard pre-push: $chained is not executable, so it is not run (chmod +x it to run it)" >&2
fi

if [ -n "$recorded" ] && [ -x "$recorded" ]; then
    opsguard=$recorded
elif opsguard=$(command -v opsguard); then
    :
else
    echo "opsguard pre-push: cannot find opsguard (not at ${{recorded:-the path recorded at install}}, not on PATH); install it (cargo install --path .) and run \`opsguard hook install\` again" >&2
    exit 127
fi

root=$(git rev-parse --show-toplevel) || {{
    echo "opsguard pre-push: cannot find the repository root (git rev-parse --show-toplevel failed)" >&2
    exit 1
}}
cd "$root" || exit 1

# step quiet|loud ARGS: run `opsguard ARGS`; a failure stops the push with
# its exit code. A quiet step shows its output only when it fails.
step() {{
    mode=$1
    shift
    echo "opsguard pre-push: opsguard $*" >&2
    if [ "$mode" = quiet ]; then
        output=$("$opsguard" "$@" </dev/null 2>&1)
        status=$?
        if [ "$status" -ne 0 ]; then
            printf '%s\n' "$output" >&2
        fi
    else
        "$opsguard" "$@" </dev/null
        status=$?
    fi
    if [ "$status" -ne 0 ]; then
        echo "opsguard pre-push: \`opsguard $*\` failed (exit $status), so the push is stopped. Fix what it names; to push anyway, once: git push --no-verify" >&2
        exit "$status"
    fi
}}

step quiet rules test
step quiet rules list
step loud check
step loud plan --if-configured
echo "opsguard pre-push: all checks passed" >&2
exit 0
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_ours_and_quotes_the_recorded_path() {
        let s = script(Some(Path::new("/opt/it's here/opsguard")));
        assert!(is_ours(&s));
        assert!(s.contains(r"recorded='/opt/it'\''s here/opsguard'"), "{s}");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(!is_ours("#!/bin/sh\necho somebody else's hook\n"));
    }

    #[test]
    fn no_environment_variable_skips_the_checks() {
        let s = script(None);
        // The only variables the script reads are its own and $0/$@/$*.
        for line in s.lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(!line.contains("SKIP"), "{line}");
            assert!(!line.contains("OPSGUARD_"), "{line}");
        }
    }
}
