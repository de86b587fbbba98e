//! The report as GitHub-flavoured Markdown, for a pull-request comment or
//! `$GITHUB_STEP_SUMMARY`: the verdict as the heading (a status word, no
//! emoji: it must read the same in a plain-text notification), a table of the
//! violations, what to do about them, what was waived, what changed, and the
//! diff folded away in a ```` ```diff ```` block.
//!
//! Everything that came from outside is escaped: a `|` or a newline in a
//! message must not break the table, and a name must not turn into markup.

use super::model::{Remedy, Report, ReportMode, Violation};
use super::{command_line, remedy_hints, verdict};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// GitHub rejects comments over 65,536 characters; the diff gives way first.
const MAX_DIFF: usize = 40_000;

pub fn render(report: &Report, diff: Option<&str>) -> String {
    let mut out = String::new();
    let v = verdict::of(report);
    let _ = writeln!(out, "## opsguard: {} — {}\n", v.word, text(&v.detail));

    let mut about = vec![format!(
        "{} {}",
        code(&report.subcommand),
        code(&report.run_id)
    )];
    if report.subcommand == "run" && report.mode != ReportMode::None {
        about.push(format!("mode {}", code(report.mode.as_str())));
    }
    if !report.command.is_empty() {
        about.push(format!("command {}", code(&command_line(&report.command))));
    }
    let _ = writeln!(out, "{}\n", about.join(" · "));
    if report.skip_preflight {
        out.push_str("**Pre-flight did not stop the command** (`--skip-preflight`): it ran whatever pre-flight found.\n\n");
    }
    if let Some(e) = &report.preflight_error {
        let _ = writeln!(out, "**Pre-flight:** {}\n", text(e));
    }
    if let Some(e) = &report.error {
        let _ = writeln!(out, "**Error:** {}\n", text(e));
    }
    for n in &report.notes {
        let _ = writeln!(out, "**Note:** {}\n", text(n));
    }

    if !report.violations.is_empty() {
        out.push_str("### Violations\n\n");
        out.push_str("| Severity | Rule | Target | Consumers | Message |\n");
        out.push_str("|---|---|---|---|---|\n");
        for v in &report.violations {
            let consumers = v
                .consumers
                .iter()
                .map(|c| cell_code(c))
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                text(v.severity.as_str()),
                cell_code(&v.rule),
                cell_code(&v.target),
                consumers,
                text(&v.message)
            );
        }
        out.push('\n');
        what_to_do(&mut out, &report.violations);
    }

    if let Some(r) = &report.remediation {
        let _ = writeln!(
            out,
            "### Remediation ({}): {}\n",
            text(r.mode.as_str()),
            if r.verified {
                "verified"
            } else {
                "NOT verified"
            }
        );
        for a in &r.actions {
            let _ = write!(
                out,
                "- {} {} {}",
                if a.ok { "ok" } else { "**FAILED**" },
                text(&a.kind),
                code(&a.target)
            );
            if let Some(d) = &a.detail {
                let _ = write!(out, ": {}", text(d));
            }
            out.push('\n');
        }
        out.push('\n');
    }

    if !report.waived.is_empty() {
        out.push_str("### Waived\n\n");
        for w in &report.waived {
            let _ = write!(
                out,
                "- {} on {} ({})",
                code(&w.rule),
                code(&w.target),
                text(w.severity.as_str())
            );
            if let Some(n) = &w.waiver {
                let _ = write!(out, ": {} (expires {})", text(&n.reason), text(&n.expires));
            }
            out.push('\n');
        }
        out.push('\n');
    }

    if report.subcommand != "check" && !report.changes.is_empty() {
        out.push_str("### Changes\n\n");
        for c in &report.changes {
            let _ = writeln!(
                out,
                "- {} {}: {}",
                text(&c.kind),
                code(&c.target),
                text(&c.detail)
            );
        }
        out.push('\n');
    }

    if let Some(d) = diff.filter(|d| !d.trim().is_empty()) {
        let (body, cut) = truncate(d, MAX_DIFF);
        let fence = "`".repeat(longest_run(body, '`').max(2) + 1);
        out.push_str("<details><summary>Diff of the snapshots</summary>\n\n");
        let _ = writeln!(out, "{fence}diff");
        out.push_str(body);
        if !body.ends_with('\n') {
            out.push('\n');
        }
        if cut > 0 {
            let _ = writeln!(
                out,
                "# … {cut} more lines left out; the JSON report has every change"
            );
        }
        let _ = writeln!(out, "{fence}\n\n</details>");
    }

    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// One line per violation with its remedies, then why each rule matters (once a rule).
fn what_to_do(out: &mut String, violations: &[Violation]) {
    let fixes: Vec<String> = violations
        .iter()
        .filter(|v| !v.remedies.is_empty())
        .map(|v| {
            format!(
                "- {} ({}): {}\n",
                code(&v.target),
                code(&v.rule),
                hints(v).join("; or ")
            )
        })
        .collect();
    if !fixes.is_empty() {
        out.push_str("**What to do**\n\n");
        out.extend(fixes);
        out.push('\n');
    }
    let mut seen = BTreeSet::new();
    let whys: Vec<String> = violations
        .iter()
        .filter(|v| seen.insert(v.rule.as_str()))
        .filter_map(|v| {
            let why = if v.why.is_empty() { &v.summary } else { &v.why };
            (!why.is_empty()).then(|| format!("- {}: {}\n", code(&v.rule), text(why)))
        })
        .collect();
    if !whys.is_empty() {
        out.push_str("**Why it matters**\n\n");
        out.extend(whys);
        out.push('\n');
    }
}

/// [`remedy_hints`], with the command and the services as code.
fn hints(v: &Violation) -> Vec<String> {
    v.remedies
        .iter()
        .zip(remedy_hints(v))
        .map(|(r, plain)| match r {
            Remedy::Rollback => "roll back: restore the before state of what this names".to_owned(),
            Remedy::Redeploy if !v.consumers.is_empty() => format!(
                "force a new deployment of {}",
                v.consumers
                    .iter()
                    .map(|c| code(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => text(&plain),
        })
        .collect()
}

/// Free text: Markdown punctuation escaped, newlines as `<br>`, so it stays
/// text inside a table cell or a list item.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("<br>"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A name as inline code, outside a table.
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A name as inline code inside a table cell: GitHub splits cells on `|`
/// before it reads code spans, so `|` needs its backslash even there.
fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// At most `max` bytes of whole lines, and how many lines were left out.
fn truncate(s: &str, max: usize) -> (&str, usize) {
    if s.len() <= max {
        return (s, 0);
    }
    let end = s[..s.floor_char_boundary(max)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    (&s[..end], s[end..].lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_cells_cannot_be_broken_out_of() {
        assert_eq!(text("a | b\nc"), "a \\| b<br>c");
        assert_eq!(text("x\r\ny"), "x<br>y");
        assert_eq!(text("<script>"), "\\<script\\>");
        assert_eq!(cell_code("a|b"), "`a\\|b`");
    }

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
    }

    #[test]
    fn long_diffs_are_cut_at_a_line() {
        let d = "+aaaa\n-bbbb\n cccc\n";
        assert_eq!(truncate(d, 100), (d, 0));
        assert_eq!(truncate(d, 8), ("+aaaa\n", 2));
        assert_eq!(truncate(d, 12), ("+aaaa\n-bbbb\n", 1));
    }
}
