//! The report for a person at a terminal (stderr), short enough to act on:
//! the findings grouped by cause (one credential that broke is said once,
//! with every rule it fired, its consumers and what to do), why each rule
//! matters (once per rule), what was waived and what changed (the full
//! diff only under `-v`), and last a summary that ends with the verdict
//! line, where the eye lands — the line `--quiet` prints alone.
//!
//! Colour is the caller's decision (a terminal, no `NO_COLOR`), passed in as
//! a flag. `colored`'s own `Display` would instead consult a process-wide
//! switch computed from *stdout*, which is the machine report's stream, so
//! this module takes only the escape codes from `colored::Color` and applies
//! them itself. Text that came from outside (user names, messages, the diff)
//! has its control characters escaped, so nothing but this module's own codes
//! reaches the terminal.

use super::causes;
use super::model::{Outcome, Report, ReportMode, Severity, Violation};
use super::short::count;
use super::verdict::{self, Tone};
use super::{command_line, RenderOptions};
use colored::Color;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The shadow a rehearsal ran in, and whether live stayed put.
fn rehearsal(out: &mut String, p: &Paint, r: &super::model::Rehearsal) {
    let _ = writeln!(
        out,
        "\n{}",
        p.bold("rehearsal (the command ran against a shadow):")
    );
    let _ = writeln!(
        out,
        "  AWS: {} at {}",
        clean(&r.aws),
        clean(&r.aws_endpoint)
    );
    let _ = writeln!(
        out,
        "  Elasticsearch: {} at {}",
        clean(&r.elasticsearch),
        clean(&r.elasticsearch_url)
    );
    let s = &r.seeded;
    let _ = writeln!(
        out,
        "  seeded: {} users, {} roles, {} API keys, {} secrets, {} clusters, {} task definitions, {} services",
        s.users, s.roles, s.api_keys, s.secrets, s.clusters, s.task_definitions, s.services
    );
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            clean(&v.join(", ")).into_owned()
        }
    };
    let _ = writeln!(
        out,
        "  env pointed at the shadow: {}",
        list(&r.env_rewritten)
    );
    if !r.env_removed.is_empty() {
        let _ = writeln!(out, "  env removed: {}", list(&r.env_removed));
    }
    if !r.secrets_rewritten.is_empty() {
        let _ = writeln!(
            out,
            "  shadow secrets pointed at the shadow Elasticsearch: {}",
            list(&r.secrets_rewritten)
        );
    }
    if r.live_unchanged {
        let _ = writeln!(
            out,
            "  live environment: {}",
            p.fg(Color::Green, "unchanged", false)
        );
    } else {
        let _ = writeln!(
            out,
            "  live environment: {}",
            p.fg(Color::Red, "CHANGED during the rehearsal", true)
        );
        for c in &r.live_changes {
            let _ = writeln!(
                out,
                "    {} {} {}: {}",
                c.kind,
                c.change,
                clean(&c.target),
                clean(&c.detail)
            );
        }
    }
    if !r.timings_ms.is_empty() {
        let t: Vec<String> = r
            .timings_ms
            .iter()
            .map(|(k, v)| format!("{k} {v} ms"))
            .collect();
        let _ = writeln!(out, "  {}", p.dim(&t.join(" · ")));
    }
}

/// Render `report` for stderr. `diff` is [`super::diff::text`] of the two
/// snapshots when there were two (shown under `-v` only); `options` say
/// whether in colour, and whether the verdict line alone (`--quiet`).
///
/// The layout reads top to bottom like `terraform plan`: what the run was,
/// the findings grouped by cause, why each rule matters, what a remedy did,
/// what changed, and last — where the eye lands — a summary ending with the
/// verdict line.
pub fn render(report: &Report, diff: Option<&str>, options: &RenderOptions) -> String {
    let p = Paint(options.colour);
    let verdict = verdict_line(&p, report);
    if options.quiet {
        return verdict;
    }
    let mut out = String::new();

    header(&mut out, &p, report);
    if let Some(r) = &report.rehearsal {
        rehearsal(&mut out, &p, r);
    }

    let causes = causes::group(&report.violations);
    if !causes.is_empty() {
        section(
            &mut out,
            &p,
            &format!("findings ({}):", count_findings(report)),
        );
        for c in &causes {
            cause(&mut out, &p, report, c);
        }
        why(&mut out, &p, &report.violations);
    }

    if let Some(r) = &report.remediation {
        remediation(&mut out, &p, r);
    }

    if !report.waived.is_empty() {
        section(&mut out, &p, &format!("waived ({}):", report.waived.len()));
        for w in &report.waived {
            let mut line = format!(
                "  {}: {} ({})",
                clean(&w.rule),
                clean(&w.target),
                w.severity.as_str()
            );
            if let Some(n) = &w.waiver {
                let _ = write!(
                    line,
                    " — {} (expires {})",
                    clean(&n.reason),
                    clean(&n.expires)
                );
            }
            let _ = writeln!(out, "{}", p.dim(&line));
        }
    }

    let show_diff = options.verbose >= 1;
    changes(&mut out, &p, report, diff.is_some(), show_diff);
    if show_diff {
        if let Some(d) = diff.filter(|d| !d.trim().is_empty()) {
            section(&mut out, &p, "diff:");
            for line in d.lines() {
                let line = clean(line);
                let painted = if line.starts_with("+++") || line.starts_with("---") {
                    p.bold(&line)
                } else if line.starts_with('+') {
                    p.fg(Color::Green, &line, false)
                } else if line.starts_with('-') {
                    p.fg(Color::Red, &line, false)
                } else if line.starts_with("@@") {
                    p.fg(Color::Cyan, &line, false)
                } else {
                    line.into_owned()
                };
                let _ = writeln!(out, "{painted}");
            }
        }
    }

    if !report.notes.is_empty() {
        section(&mut out, &p, "notes:");
        for n in &report.notes {
            let _ = writeln!(out, "  {}", indent(&clean(n), "  "));
        }
    }

    summary(&mut out, &p, report, &causes);
    out.push_str(&verdict);
    out
}

/// `BLOCKED: 4 blocking violations (command exited 0, exit 11)`, coloured,
/// with its newline: the last line of the report, and all of `--quiet`.
fn verdict_line(p: &Paint, report: &Report) -> String {
    let v = verdict::of(report);
    let word = match v.tone {
        Tone::Ok => p.fg(Color::Green, v.word, true),
        Tone::Warn => p.fg(Color::Yellow, v.word, true),
        Tone::Block => p.fg(Color::Red, v.word, true),
    };
    format!("{word}: {}\n", clean(&v.detail))
}

fn section(out: &mut String, p: &Paint, title: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", p.bold(title));
}

/// `4 blocking, 2 warnings`.
fn count_findings(report: &Report) -> String {
    let block = verdict::severity_count(&report.violations, Severity::Block);
    let rest = report.violations.len() - block;
    let warn = verdict::severity_count(&report.violations, Severity::Warn);
    let mut parts = Vec::new();
    if block > 0 {
        parts.push(format!("{block} blocking"));
    }
    if warn > 0 {
        parts.push(count(warn, "warning", "warnings"));
    }
    if rest > warn {
        parts.push(format!("{} info", rest - warn));
    }
    parts.join(", ")
}

/// What this report is about: the run (with its id: the folder under
/// `.opsguard/runs/` that `resume` takes), its mode and command. `check`,
/// `diff`, `plan` and `rehearse` keep no run folder, so no id is shown.
fn header(out: &mut String, p: &Paint, report: &Report) {
    let mut about = Vec::new();
    if report.subcommand == "run" {
        about.push(format!("run {}", report.run_id));
        if report.mode != ReportMode::None {
            about.push(format!("mode {}", report.mode));
        }
    } else if report.subcommand == "plan" {
        // `mode` is `live` (joined to the live credential graph) or
        // `offline` (judged by resource type alone).
        about.push(match report.mode.as_str() {
            "offline" => "plan · offline: judged by resource type, not against live".to_owned(),
            _ => "plan · judged against the live credential graph".to_owned(),
        });
    } else if !report.command.is_empty() {
        about.push(report.subcommand.clone());
    }
    if !report.command.is_empty() {
        about.push(format!("command: {}", command_line(&report.command)));
    }
    if !about.is_empty() {
        let _ = writeln!(out, "{}", p.dim(&clean(&about.join(" · "))));
    }
    if report.skip_preflight {
        let _ = writeln!(
            out,
            "{}",
            p.fg(
                Color::Yellow,
                "--skip-preflight: the command ran whatever pre-flight found",
                false
            )
        );
    }
    if let Some(e) = &report.preflight_error {
        let _ = writeln!(out, "pre-flight: {}", indent(&clean(e), "            "));
    }
    if let Some(e) = &report.error {
        let _ = writeln!(
            out,
            "{} {}",
            p.fg(Color::Red, "error:", true),
            indent(&clean(e), "       ")
        );
    }
}

/// One cause: what it is, each rule that fired on it, its consumers, and
/// what can be done about it.
fn cause(out: &mut String, p: &Paint, report: &Report, c: &causes::Cause<'_>) {
    let _ = writeln!(out, "\n{}", p.bold(&clean(&c.name())));
    for v in &c.findings {
        let sev = match v.severity.as_str() {
            "block" => p.fg(Color::Red, "block", true),
            "warn" => p.fg(Color::Yellow, "warn ", true),
            other => p.dim(&format!("{other:<5}")),
        };
        let _ = writeln!(
            out,
            "  {sev} {}: {}",
            clean(&v.rule),
            indent(&clean(&causes::tidy(v, c)), "        ")
        );
    }
    if !c.consumers.is_empty() {
        let _ = writeln!(out, "  consumers: {}", clean(&c.consumers.join(", ")));
    }
    for (i, s) in causes::suggestions(report, c).iter().enumerate() {
        let lead = if i == 0 { "remedy:" } else { "    or:" };
        let _ = writeln!(out, "  {lead} {}", clean(&s.text));
        for cmd in &s.commands {
            let _ = writeln!(out, "          {}", clean(cmd));
        }
    }
}

/// Why each rule that fired matters, once per rule.
fn why(out: &mut String, p: &Paint, violations: &[Violation]) {
    let mut seen: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for v in violations {
        if seen.contains(&v.rule.as_str()) {
            continue;
        }
        seen.push(&v.rule);
        let why = if v.why.is_empty() { &v.summary } else { &v.why };
        if !why.trim().is_empty() {
            lines.push(format!(
                "  {}: {}",
                clean(&v.rule),
                indent(&clean(why.trim()), "    ")
            ));
        }
    }
    if !lines.is_empty() {
        section(out, p, "why it matters:");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
}

fn remediation(out: &mut String, p: &Paint, r: &super::model::Remediation) {
    let state = if r.verified {
        p.fg(Color::Green, "verified", false)
    } else {
        p.fg(Color::Red, "NOT verified", true)
    };
    section(
        out,
        p,
        &format!("remediation ({}): {state}", r.mode.as_str()),
    );
    if r.actions.is_empty() {
        let _ = writeln!(out, "  no step was applied");
    }
    for a in &r.actions {
        let status = if a.ok {
            p.fg(Color::Green, "ok    ", false)
        } else {
            p.fg(Color::Red, "FAILED", true)
        };
        let _ = write!(out, "  {status} {} {}", clean(&a.kind), clean(&a.target));
        if let Some(d) = &a.detail {
            let _ = write!(out, ": {}", clean(d));
        }
        out.push('\n');
    }
}

/// Most changed targets listed without `-v`; the rest are counted.
const CHANGED_TARGETS_SHOWN: usize = 25;

/// What changed, one line per changed thing (its changes joined). `check`
/// looks at one instant: nothing can have changed, so nothing is said.
fn changes(out: &mut String, p: &Paint, report: &Report, had_diff: bool, verbose: bool) {
    if report.subcommand == "check" {
        return;
    }
    if report.changes.is_empty() {
        if had_diff {
            section(
                out,
                p,
                "changes: none that opsguard can see (it does not see a password set in Elasticsearch, nor a secret no task definition uses)",
            );
        }
        return;
    }
    let mut lines: Vec<(String, Vec<&str>)> = Vec::new();
    for c in &report.changes {
        let what = format!("{} {}", c.kind, c.target);
        match lines.iter_mut().find(|(w, _)| *w == what) {
            Some((_, details)) => details.push(&c.detail),
            None => lines.push((what, vec![&c.detail])),
        }
    }
    section(out, p, &format!("changes ({}):", report.changes.len()));
    let shown = if verbose {
        lines.len()
    } else {
        lines.len().min(CHANGED_TARGETS_SHOWN)
    };
    for (what, details) in &lines[..shown] {
        let _ = writeln!(out, "  {}: {}", clean(what), clean(&details.join("; ")));
    }
    if shown < lines.len() {
        let _ = writeln!(
            out,
            "  … and {} more (all in the JSON report, or with -v)",
            lines.len() - shown
        );
    }
    if had_diff && !verbose {
        let _ = writeln!(out, "{}", p.dim("  (-v shows the full before/after diff)"));
    }
}

/// The last block: what broke, who uses it, what was done, and what the
/// exit code means; then the verdict line.
fn summary(out: &mut String, p: &Paint, report: &Report, causes: &[causes::Cause<'_>]) {
    section(out, p, "summary:");
    let blocking: Vec<&causes::Cause<'_>> = causes.iter().filter(|c| c.blocking()).collect();
    let unread = report.violations.is_empty()
        && (report.preflight_error.is_some()
            || matches!(
                report.outcome,
                Outcome::RemediationFailed | Outcome::Escaped
            ));
    let broke = if unread {
        "unknown: opsguard could not read the environment to tell".to_owned()
    } else if blocking.is_empty() {
        let warn = verdict::severity_count(&report.violations, Severity::Warn);
        if warn > 0 {
            format!("nothing blocking ({})", count(warn, "warning", "warnings"))
        } else {
            "nothing blocking".to_owned()
        }
    } else {
        blocking
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // The state now (check), what a real run would do (rehearse), or what
    // the command did (run, diff, plan: a remedy may have put it right since).
    let label = match report.subcommand.as_str() {
        "check" => "broken:",
        "rehearse" => "would break:",
        _ => "broke:",
    };
    line(out, label, &broke);
    let mut consumers: Vec<&str> = Vec::new();
    for c in &blocking {
        for k in &c.consumers {
            if !consumers.contains(k) {
                consumers.push(k);
            }
        }
    }
    if !consumers.is_empty() {
        line(out, "consumers:", &consumers.join(", "));
    }
    line(out, "done:", &verdict::done(report));
    if let Some(next) = verdict::next(report, causes) {
        line(out, "next:", &next);
    }
    line(
        out,
        &format!("exit {}:", report.exit_code),
        &verdict::exit_meaning(report),
    );
}

/// `  label:       text`, the labels of the summary in one column.
fn line(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "  {label:<12} {}", clean(text));
}

/// Continuation lines of a multi-line text, indented under its first line.
fn indent(s: &str, pad: &str) -> String {
    s.replace('\n', &format!("\n{pad}"))
}

/// Escape control characters (ANSI escapes above all) in text from outside.
fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// ANSI styling, or none.
struct Paint(bool);

impl Paint {
    fn sgr(&self, codes: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn fg(&self, colour: Color, text: &str, bold: bool) -> String {
        let fg = colour.to_fg_str();
        if bold {
            self.sgr(&format!("1;{fg}"), text)
        } else {
            self.sgr(&fg, text)
        }
    }

    fn bold(&self, text: &str) -> String {
        self.sgr("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.sgr("2", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_outside_are_escaped() {
        assert_eq!(clean("plain"), "plain");
        assert_eq!(clean("a\x1b[31mb"), "a\\u{1b}[31mb");
        assert_eq!(clean("two\nlines\t"), "two\nlines\\t");
    }

    #[test]
    fn no_colour_means_no_escape_codes() {
        let p = Paint(false);
        assert_eq!(p.fg(Color::Red, "x", true), "x");
        let p = Paint(true);
        assert_eq!(p.fg(Color::Red, "x", true), "\x1b[1;31mx\x1b[0m");
        assert_eq!(p.dim("x"), "\x1b[2mx\x1b[0m");
    }
}
