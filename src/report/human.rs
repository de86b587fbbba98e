//! The report for a person at a terminal (stderr): the verdict first, so the
//! one line that matters is the one that is read; then each violation with
//! what it hits, why it matters and how to put it right; then what was
//! waived, what changed, and the diff.
//!
//! Colour is the caller's decision (a terminal, no `NO_COLOR`), passed in as
//! a flag. `colored`'s own `Display` would instead consult a process-wide
//! switch computed from *stdout*, which is the machine report's stream, so
//! this module takes only the escape codes from `colored::Color` and applies
//! them itself. Text that came from outside (user names, messages, the diff)
//! has its control characters escaped, so nothing but this module's own codes
//! reaches the terminal.

use super::model::{Report, Violation};
use super::verdict::{self, Tone};
use super::{command_line, remedy_hints, RenderOptions};
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
/// snapshots when there were two; `options` say whether in colour, and
/// whether only the verdict line (`--quiet`).
pub fn render(report: &Report, diff: Option<&str>, options: &RenderOptions) -> String {
    let p = Paint(options.colour);
    let mut out = String::new();

    let v = verdict::of(report);
    let word = match v.tone {
        Tone::Ok => p.fg(Color::Green, v.word, true),
        Tone::Warn => p.fg(Color::Yellow, v.word, true),
        Tone::Block => p.fg(Color::Red, v.word, true),
    };
    let _ = writeln!(out, "{word}: {}", clean(&v.detail));
    if options.quiet {
        return out;
    }

    let mut about = vec![format!("{} {}", report.subcommand, report.run_id)];
    if !report.mode.is_empty() && report.subcommand == "run" {
        about.push(format!("mode {}", report.mode));
    }
    if !report.command.is_empty() {
        about.push(format!("command: {}", command_line(&report.command)));
    }
    let _ = writeln!(out, "{}", p.dim(&clean(&about.join(" · "))));
    if report.skip_preflight {
        let _ = writeln!(
            out,
            "{}",
            p.fg(
                Color::Yellow,
                "pre-flight was skipped (--skip-preflight): the environment was not checked before the command",
                false
            )
        );
    }
    if let Some(e) = &report.preflight_error {
        let _ = writeln!(out, "why: {}", indent(&clean(e), "     "));
    }
    if let Some(e) = &report.error {
        let _ = writeln!(
            out,
            "{} {}",
            p.fg(Color::Red, "error:", true),
            indent(&clean(e), "       ")
        );
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {}", indent(&clean(n), "      "));
    }

    if let Some(r) = &report.rehearsal {
        rehearsal(&mut out, &p, r);
    }

    if !report.violations.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            p.bold(&format!("violations ({}):", report.violations.len()))
        );
        for v in &report.violations {
            violation(&mut out, &p, v);
        }
    }

    if let Some(r) = &report.remediation {
        let state = if r.verified {
            p.fg(Color::Green, "verified", false)
        } else {
            p.fg(Color::Red, "NOT verified", true)
        };
        let _ = writeln!(
            out,
            "\n{} {state}",
            p.bold(&format!("remediation ({}):", clean(&r.mode)))
        );
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

    if !report.waived.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            p.bold(&format!("waived ({}):", report.waived.len()))
        );
        for w in &report.waived {
            let mut line = format!(
                "  {}: {} ({})",
                clean(&w.rule),
                clean(&w.target),
                clean(&w.severity)
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

    // `check` looks at one instant: there is nothing to have changed.
    if report.subcommand != "check" {
        if report.changes.is_empty() {
            if diff.is_some() {
                let _ = writeln!(out, "\n{}", p.bold("changes: none"));
            }
        } else {
            let _ = writeln!(
                out,
                "\n{}",
                p.bold(&format!("changes ({}):", report.changes.len()))
            );
            for c in &report.changes {
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    clean(&c.kind),
                    clean(&c.target),
                    clean(&c.detail)
                );
            }
        }
    }

    if let Some(d) = diff.filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(out, "\n{}", p.bold("diff:"));
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
    out
}

fn violation(out: &mut String, p: &Paint, v: &Violation) {
    let sev = match v.severity.as_str() {
        "block" => p.fg(Color::Red, "block", true),
        "warn" => p.fg(Color::Yellow, "warn ", true),
        other => p.dim(&format!("{other:<5}")),
    };
    let _ = writeln!(
        out,
        "\n{sev} {}: {}",
        p.bold(&clean(&v.rule)),
        clean(&v.target)
    );
    const PAD: &str = "  ";
    if !v.message.is_empty() {
        let _ = writeln!(out, "{PAD}{}", indent(&clean(&v.message), PAD));
    }
    if !v.consumers.is_empty() {
        let _ = writeln!(out, "{PAD}consumers: {}", clean(&v.consumers.join(", ")));
    }
    let why = if v.why.is_empty() { &v.summary } else { &v.why };
    if !why.is_empty() {
        let _ = writeln!(
            out,
            "{PAD}why it matters: {}",
            indent(&clean(why), "                  ")
        );
    }
    for (i, hint) in remedy_hints(v).iter().enumerate() {
        let lead = if i == 0 { "remedy:" } else { "    or:" };
        let _ = writeln!(out, "{PAD}{lead} {}", clean(hint));
    }
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
