//! Where a report goes: the human text to stderr, the `--format` rendering
//! to stdout, and JSON to `--report FILE`.

use super::write_atomically;
use crate::error::Error;
use crate::report::model::Report;
use crate::report::Format;
use std::io::Write;
use std::path::Path;

pub fn emit(
    report: &Report,
    diff: Option<&str>,
    format: Format,
    report_file: Option<&Path>,
) -> Result<u8, Error> {
    let human = crate::report::render(Format::Human, report, diff, super::colour());
    eprint!("{human}");
    if !human.ends_with('\n') {
        eprintln!();
    }
    if format != Format::Human {
        let text = crate::report::render(format, report, diff, false);
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::Output {
                    path: "<stdout>".into(),
                    source: e,
                });
            }
        }
    }
    if let Some(path) = report_file {
        let json = crate::report::render(Format::Json, report, diff, false);
        write_atomically(path, json.as_bytes())?;
    }
    Ok(report.exit_code)
}
