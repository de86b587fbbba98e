//! `opsguard snapshot [-o FILE]`: the redacted JSON snapshot.

use super::state_dir;
use crate::config::Config;
use crate::error::Error;
use crate::exit;
use crate::snapshot::model::{ProbeResult, Snapshot};
use crate::snapshot::Taken;
use clap::Args;
use colored::Colorize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Write the snapshot to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn execute(config: &Config, args: SnapshotArgs) -> Result<u8, Error> {
    let dir = state_dir(config);
    let key = super::fingerprint_key(&dir)?;
    let taken = crate::snapshot::take_live(config, &key, &super::ui::progress().scoped("snapshot"))
        .await
        .map_err(Error::Snapshot)?;
    let Taken {
        snapshot: snap,
        auth,
    } = taken;
    // The probes' values are not part of the output: let them go first.
    drop(auth);
    // Streamed, not built in memory first: at 3,000 services the JSON is
    // tens of MiB, as much again as the snapshot it renders.
    match &args.output {
        Some(path) => super::write_atomically_with(path, |w| write_json(w, &snap))?,
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe (`| head`) is the reader's choice, not our failure.
            if let Err(e) = write_json(&mut out, &snap).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(Error::Output {
                        path: PathBuf::from("<stdout>"),
                        source: e,
                    });
                }
            }
        }
    }
    eprintln!("{}", summary(&snap, args.output.as_ref()));
    Ok(exit::OK)
}

/// The snapshot as pretty JSON and a newline, written as it is rendered.
fn write_json(w: &mut impl Write, snap: &Snapshot) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, snap).map_err(std::io::Error::from)?;
    w.write_all(b"\n")
}

/// One human line, then one line per credential that does not authenticate.
fn summary(s: &Snapshot, output: Option<&PathBuf>) -> String {
    let tasks: usize = s.services.iter().map(|svc| svc.tasks.len()).sum();
    let ok = s
        .credentials
        .iter()
        .filter(|c| c.probe.result == ProbeResult::Authenticated)
        .count();
    let calls: u64 = s.collection.api_calls.values().sum();
    let mut out = format!(
        "{} {} services ({} tasks), {} secrets, {} credentials ({} authenticate), {} users — {} API calls in {} ms{}",
        "snapshot:".bold(),
        s.services.len(),
        tasks,
        s.secrets.len(),
        s.credentials.len(),
        ok,
        s.elasticsearch.users.len(),
        calls,
        s.collection.duration_ms,
        output.map(|p| format!(", written to {}", p.display())).unwrap_or_default(),
    );
    for c in s
        .credentials
        .iter()
        .filter(|c| c.probe.result != ProbeResult::Authenticated)
    {
        let what = match c.probe.result {
            ProbeResult::Rejected => "does not authenticate".red().to_string(),
            _ => "could not be checked".yellow().to_string(),
        };
        out.push_str(&format!(
            "\n  credential {} {}: {}",
            c.id.bold(),
            what,
            c.probe.detail.as_deref().unwrap_or("")
        ));
    }
    out
}
