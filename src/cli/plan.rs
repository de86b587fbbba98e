//! `opsguard plan [PLAN_JSON]`: judge a Terraform/OpenTofu plan against the
//! live credential graph before it is applied. Exit 0, 11 on a blocking
//! finding, 13 when the live graph cannot be read (unless `--offline`), 2 for
//! an unreadable or malformed plan.

use super::output::{emit_to, Sink};
use super::state_dir;
use crate::config::{Config, PlanConfig};
use crate::error::Error;
use crate::exit;
use crate::guard;
use crate::plan::{self, PlanError, Redactor};
use crate::report::model::{Artifact, Outcome, ReportMode};
use crate::rules::RuleSet;
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const EXIT_CODES: &str = "\
Exit codes:
  0   no blocking finding (warnings are reported, and do not fail)
  2   the plan cannot be read or is not Terraform's JSON plan format (the
      file and JSON position are named), a usage or configuration error, or
      a rule or waiver that does not load
  11  blocking finding: applying this plan would break what live tasks hold
  13  the live credential graph could not be read (use --offline to judge
      by resource types alone)

Make the plan JSON with:
  terraform plan -out tfplan && terraform show -json tfplan > plan.json";

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The output of `terraform show -json PLANFILE` (or `tofu show -json`);
    /// `-` reads standard input. Omitted: [plan] in the config says where
    /// the plan JSON comes from.
    #[arg(value_name = "PLAN_JSON")]
    pub plan: Option<PathBuf>,

    /// Do not read the live environment: judge by resource types alone
    /// (every credential change counts as consumed).
    #[arg(long)]
    pub offline: bool,

    /// With no PLAN_JSON and no [plan] in the config, say so and exit 0
    /// (for hooks and CI gates shared by repositories without Terraform).
    #[arg(long)]
    pub if_configured: bool,

    #[command(flatten)]
    pub out: super::output::ReportArgs,
}

/// Where the plan JSON was read from.
enum Source {
    File(PathBuf),
    Stdin,
    Command(Vec<String>),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".into(),
            Source::Command(argv) => format!("`{}`", argv.join(" ")),
        }
    }
}

/// `config` is the live config, or (with `--offline`) the offline one if any.
pub async fn execute(config: Option<&Config>, args: PlanArgs) -> Result<u8, Error> {
    let source = match (&args.plan, config.and_then(|c| c.plan.as_ref())) {
        (Some(p), _) if p.as_os_str() == "-" => Source::Stdin,
        (Some(p), _) => Source::File(p.clone()),
        (None, Some(PlanConfig::File(p))) => Source::File(p.clone()),
        (None, Some(PlanConfig::Command { argv, .. })) => Source::Command(argv.clone()),
        (None, None) if args.if_configured => {
            eprintln!("opsguard plan: no PLAN_JSON and no [plan] in the config: nothing to judge");
            return Ok(exit::OK);
        }
        (None, None) => {
            return Err(Error::PlanSource(
                "no plan to judge: give PLAN_JSON, or configure [plan] in opsguard.toml".into(),
            ))
        }
    };
    let text = read_source(&source, config)?;
    let parsed = plan::parse(&text, &source.name())?;
    drop(text);
    let redactor = Redactor::from_plan(&parsed);

    let (rules, waivers) = match config {
        Some(c) => {
            let rules = RuleSet::load(&c.rules.paths)?;
            rules.check_waivers(&c.waivers)?;
            (rules, c.waivers.clone())
        }
        None => (RuleSet::builtin()?, Vec::new()),
    };

    let mut report = guard::new_report(
        "plan",
        guard::new_run_id(),
        if args.offline {
            ReportMode::Offline
        } else {
            ReportMode::Live
        },
    );
    let version = if parsed.terraform_version.is_empty() {
        "version unknown"
    } else {
        &parsed.terraform_version
    };
    report.notes.push(format!(
        "plan {} (format {}, terraform {version}): {} resource change(s)",
        source.name(),
        parsed.format_version,
        parsed.changes.len()
    ));
    report.artifact = Some(match &source {
        Source::File(p) => Artifact {
            uri: super::relative_to_cwd(p),
            lines: parsed.lines.clone(),
        },
        // No file to point at: live findings' file, the config.
        _ => config
            .map(|c| super::config_artifact(&c.path))
            .unwrap_or_else(|| Artifact {
                uri: "opsguard.toml".into(),
                ..Artifact::default()
            }),
    });

    let live = if args.offline {
        report.notes.push(
            "--offline: judged by resource types alone; the live credential graph was not read, so every credential change counts as consumed and consumers are unknown"
                .into(),
        );
        None
    } else {
        let config = config.expect("a live plan check loads the config");
        let key = super::fingerprint_key(&state_dir(config))?;
        match crate::snapshot::take_live(config, &key, &super::ui::progress().scoped("live read"))
            .await
        {
            Ok(t) => Some(t.snapshot),
            Err(e) => {
                exit::settle(&mut report, Outcome::PreflightFailed, None);
                report.preflight_error = Some(format!(
                    "cannot read the live credential graph: {e} (use --offline to judge by resource types alone)"
                ));
                None
            }
        }
    };
    if report.outcome != Outcome::PreflightFailed {
        let facts = plan::join::facts(&parsed, live.as_ref(), &redactor);
        let findings = plan::evaluate(&rules, &waivers, &facts)?;
        guard::settle_steady(&mut report, &findings);
        report.changes = plan::changes(&facts);
    }
    report.finished_at = guard::now_rfc3339();
    let filter = |s: &str| redactor.text(s);
    emit_to(
        &report,
        None,
        args.out.format,
        args.out.report.as_deref(),
        Sink {
            output: args.out.output.as_deref(),
            filter: Some(&filter),
        },
    )
}

fn read_source(source: &Source, config: Option<&Config>) -> Result<String, Error> {
    let unreadable = |message: String| {
        Error::Plan(PlanError {
            source_name: source.name(),
            position: None,
            message,
        })
    };
    match source {
        Source::File(p) => {
            std::fs::read_to_string(p).map_err(|e| unreadable(format!("cannot read: {e}")))
        }
        Source::Stdin => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| unreadable(format!("cannot read standard input: {e}")))?;
            Ok(s)
        }
        Source::Command(argv) => {
            let dir = match config.and_then(|c| c.plan.as_ref()) {
                Some(PlanConfig::Command { dir, .. }) => dir.clone(),
                _ => PathBuf::from("."),
            };
            run_plan_command(argv, &dir)
        }
    }
}

/// `[plan] command`: its stdout is the plan JSON; its stderr stays the
/// user's; a failure is a configuration problem (exit 2), not a verdict.
fn run_plan_command(argv: &[String], dir: &Path) -> Result<String, Error> {
    let shown = argv.join(" ");
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            Error::PlanSource(format!(
                "[plan] command `{shown}` could not be started in {}: {e}",
                dir.display()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::PlanSource(format!(
            "[plan] command `{shown}` failed ({}); its stdout was not used",
            out.status
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| {
        Error::PlanSource(format!("[plan] command `{shown}` printed non-UTF-8 output"))
    })
}
