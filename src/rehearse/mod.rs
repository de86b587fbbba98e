//! Rehearsal: see what a command will break before it touches anything real.
//!
//! `run` repairs harm after it lands; the outage lasts from the command's
//! first harmful call until the remedy. A rehearsal moves the verdict before
//! the harm: the command runs against a *shadow* of the live environment,
//! built from a live snapshot ([`shadow`]), and the shadow's before/after is
//! judged with exactly the rules, probes and facts `run` uses — the shadow is
//! just another [`Config`] whose endpoints are on loopback. Live is only read.
//!
//! ```text
//! live snapshot ─ shadow (seed, check its graph equals live's) ─ shadow before
//!   ─ command (env pointed at the shadow) ─ shadow after ─ probes ─ rules
//!   ─ shadow torn down ─ live snapshot again (must equal the first)
//! ```
//!
//! What it cannot see: a command that finds live by itself (a hard-coded
//! endpoint, a URL read from a file) — that is why live is snapshotted again
//! afterwards, and any difference is `escaped` (exit 12) — and systems
//! outside Elasticsearch, Secrets Manager and ECS.

pub mod compare;
pub mod emulator;
pub mod env;
mod seed_aws;
pub mod shadow;

use crate::config::Config;
use crate::exit;
use crate::guard::command::{self, SpawnError};
use crate::guard::{is_blocking, new_report, now_rfc3339, probe_values, record_findings, Policy};
use crate::report::model::{Outcome, Rehearsal, Report};
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::Live;
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// What a rehearsal produced.
pub struct Rehearsed {
    pub report: Report,
    /// The shadow's before/after diff, for people.
    pub diff: Option<String>,
}

impl Rehearsed {
    /// Nothing blocking predicted, live unchanged, the shadow built: a real
    /// run may follow.
    pub fn clear(&self) -> bool {
        self.report.outcome == Outcome::Ok
    }
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Rehearse `command`; the report says `subcommand` (`rehearse`, or `run`
/// for `run --rehearse`) and `mode`.
#[allow(
    clippy::too_many_arguments,
    reason = "the progress handle is an option threaded from the command line"
)]
pub async fn rehearse(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    command: &[OsString],
    run_id: String,
    subcommand: &str,
    mode: crate::report::model::ReportMode,
    progress: &crate::progress::Progress,
) -> Result<Rehearsed, SpawnError> {
    let mut report = new_report(subcommand, run_id, mode);
    report.command = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut rehearsal = Rehearsal {
        elasticsearch: "es-double (in-process, loopback)".into(),
        ..Default::default()
    };
    let failed = |mut report: Report, rehearsal: Rehearsal, why: String| {
        exit::settle(&mut report, Outcome::PreflightFailed, None);
        report.preflight_error = Some(why);
        report.rehearsal = Some(rehearsal);
        report.finished_at = now_rfc3339();
        Rehearsed { report, diff: None }
    };

    // 0. The shadow is one emulator account: a config watching several
    //    accounts cannot be copied into it. Refused before live is read.
    if !config.aws.targets.is_empty() {
        let names: Vec<&str> = config.aws.targets.iter().map(|t| t.name.as_str()).collect();
        let e = shadow::ShadowError::Unsupported(format!(
            "rehearsal covers one AWS account, and this config has {} [[aws.targets]] ({}): the shadow is a single emulator account, so a rehearsal of it would predict nothing about the others",
            names.len(),
            names.join(", ")
        ));
        let why = format!("{e}\nhelp: {}", e.help());
        return Ok(failed(report, rehearsal, why));
    }

    // 1. Live, read once. The shadow's emulator boots meanwhile.
    let booting = shadow::boot(config).await;
    let t = Instant::now();
    let connected = {
        let _step = progress.step("connecting to AWS and Elasticsearch");
        Live::connect(config).await
    };
    let live = match connected {
        Ok(l) => l.with_progress(progress),
        Err(e) => {
            return Ok(failed(
                report,
                rehearsal,
                format!("cannot take the live snapshot: {e}"),
            ))
        }
    };
    live.set_phase("live snapshot");
    let live_before = match live.take(config, key).await {
        Ok(t) => t,
        Err(e) => {
            return Ok(failed(
                report,
                rehearsal,
                format!("cannot take the live snapshot: {e}"),
            ))
        }
    };
    rehearsal.timings_ms.insert("live_snapshot".into(), ms(t));

    // 2. The shadow. A signal while it is being built stops the build; the
    //    parts already started are torn down as they are dropped.
    let t = Instant::now();
    let built = {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let mut int = signal(SignalKind::interrupt()).ok();
        let mut hup = signal(SignalKind::hangup()).ok();
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            b = shadow::build(config, &live, &live_before, booting) => Some(b),
            _ = recv(&mut term) => None,
            _ = recv(&mut int) => None,
            _ = recv(&mut hup) => None,
        }
    };
    let shadow = match built {
        None => return Ok(failed(
            report,
            rehearsal,
            "interrupted while building the shadow; it was torn down and the command was not run"
                .into(),
        )),
        Some(Err(e)) => {
            let why = format!("cannot build the shadow: {e}\nhelp: {}", e.help());
            return Ok(failed(report, rehearsal, why));
        }
        Some(Ok(s)) => s,
    };
    rehearsal.aws = shadow.aws_description.clone();
    rehearsal.aws_endpoint = shadow.aws_endpoint.clone();
    rehearsal.elasticsearch_url = shadow.es_url.as_str().trim_end_matches('/').to_owned();
    rehearsal.seeded = shadow.seeded.clone();
    rehearsal.secrets_rewritten = shadow.secrets_rewritten.clone();
    // ECS `startedAt` has whole-second resolution: let the shadow's tasks
    // start in an earlier second than anything the command changes, so
    // "started before the change" reads as it would live.
    let into_second = time::OffsetDateTime::now_utc().nanosecond();
    tokio::time::sleep(
        Duration::from_nanos(u64::from(1_000_000_000 - into_second)) + Duration::from_millis(20),
    )
    .await;
    let t_snapshot = Instant::now();
    let step = progress.step("shadow snapshot");
    let shadow_before = shadow.live.take(&shadow.config, key).await;
    drop(step);
    let shadow_before = match shadow_before {
        Ok(t) => t,
        Err(e) => {
            return Ok(failed(
                report,
                rehearsal,
                format!("cannot snapshot the shadow: {e}"),
            ));
        }
    };
    let differences = compare::graph_differences(&live_before.snapshot, &shadow_before.snapshot);
    if !differences.is_empty() {
        let e = shadow::ShadowError::Fidelity(differences);
        let why = format!("{e}\nhelp: {}", e.help());
        return Ok(failed(report, rehearsal, why));
    }
    rehearsal.timings_ms.insert("shadow_seeding".into(), ms(t));
    for (phase, took) in [
        ("emulator_start", shadow.emulator_start_ms),
        ("seed_elasticsearch", shadow.seed_elasticsearch_ms),
        ("seed_aws", shadow.seed_aws_ms),
        ("shadow_snapshot", ms(t_snapshot)),
    ] {
        rehearsal.timings_ms.insert(phase.into(), took);
    }

    // 3. Pre-flight, as `run` does it: a shadow already in violation
    //    predicts nothing about the command.
    match policy.evaluate(&policy.steady_facts(&shadow_before.snapshot, "check")) {
        Ok(pre) if pre.iter().any(is_blocking) => {
            record_findings(&mut report, &pre);
            return Ok(failed(
                report,
                rehearsal,
                "the environment already violates a blocking rule; the command was not rehearsed"
                    .into(),
            ));
        }
        Ok(_) => {}
        Err(e) => {
            return Ok(failed(
                report,
                rehearsal,
                format!("rule evaluation failed: {e}"),
            ))
        }
    }

    // 4. The command, pointed at the shadow.
    let current: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let plan = env::plan(
        &current,
        &env::Targets {
            live_es_url: &config.elasticsearch.url,
            shadow_es_url: &shadow.es_url,
            aws_endpoint: &shadow.aws_endpoint,
            access_key_id: &shadow.access_key_id,
            secret_access_key: &shadow.secret_access_key,
            region: &shadow.region,
            es_url_env: &config.rehearse.es_url_env,
            empty_file: &shadow.empty_file,
        },
    );
    rehearsal.env_rewritten = plan.rewritten.clone();
    rehearsal.env_removed = plan.removed.clone();
    let t = Instant::now();
    let hold = progress.hold(&crate::report::escape::line(&report.command.join(" "), 200));
    let ended = command::run_with_env(command, &plan.changes).await;
    drop(hold);
    let ended = ended?;
    rehearsal.timings_ms.insert("command".into(), ms(t));
    report.command_exit = ended.code;
    report.command_signal = ended.signal_name();
    rehearsal.command_exit = ended.code;
    let passthrough = ended.shell_code();

    // 5. The verdict on the shadow.
    let t = Instant::now();
    let judging = progress.step("judging the shadow after the command");
    let judged = async {
        let after = shadow
            .live
            .take(&shadow.config, key)
            .await
            .map_err(|e| e.to_string())?;
        let probes = probe_values(
            shadow.live.es(),
            &shadow_before.snapshot,
            &shadow_before.auth,
        )
        .await
        .map_err(|e| e.to_string())?;
        let facts = policy.facts(
            &shadow_before.snapshot,
            &after.snapshot,
            "run",
            Some(&probes),
        );
        let findings = policy.evaluate(&facts).map_err(|e| e.to_string())?;
        Ok::<_, String>((after, findings))
    }
    .await;
    drop(judging);
    drop(shadow);
    let (shadow_after, findings) = match judged {
        Ok(j) => j,
        Err(e) => {
            exit::settle(&mut report, Outcome::RemediationFailed, None);
            report.error = Some(format!(
                "the command ran in the shadow, but judging it failed: {e}"
            ));
            report.rehearsal = Some(rehearsal);
            report.finished_at = now_rfc3339();
            return Ok(Rehearsed { report, diff: None });
        }
    };
    record_findings(&mut report, &findings);
    report.changes =
        crate::report::changes::between(&shadow_before.snapshot, &shadow_after.snapshot);
    let diff = crate::report::diff::text(&shadow_before.snapshot, &shadow_after.snapshot);

    // 6. Proof that live was not touched.
    live.set_phase("live snapshot again (was live touched?)");
    let live_after = live.take(config, key).await;
    rehearsal.timings_ms.insert("verdict".into(), ms(t));
    let blocking = findings.iter().any(is_blocking);
    match live_after {
        Err(e) => {
            rehearsal.live_unchanged = false;
            exit::settle(&mut report, Outcome::Escaped, None);
            report.error = Some(format!(
                "the live snapshot after the rehearsal failed ({e}): whether live changed is unknown; check by hand"
            ));
        }
        Ok(after) => {
            let changes = compare::live_changes(&live_before.snapshot, &after.snapshot);
            rehearsal.live_unchanged = changes.is_empty();
            if !changes.is_empty() {
                exit::settle(&mut report, Outcome::Escaped, None);
                report.error = Some(format!(
                    "the live environment changed while the command ran in the shadow ({} change(s)): the command reached past the shadow, or someone else changed live meanwhile; a human must look",
                    changes.len()
                ));
            } else {
                // As `run` does: a command's own 2 or 10-13 must not read as
                // opsguard's verdict.
                let outcome = if blocking {
                    Outcome::Violated
                } else {
                    Outcome::Ok
                };
                let command = exit::Command {
                    code: passthrough,
                    warn: false,
                };
                if let Some(note) = exit::settle(&mut report, outcome, Some(command)) {
                    eprintln!("opsguard: {note}");
                }
            }
            rehearsal.live_changes = changes;
        }
    }
    report.rehearsal = Some(rehearsal);
    report.finished_at = now_rfc3339();
    Ok(Rehearsed {
        report,
        diff: Some(diff),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const BASE: &str = "[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"PW\"\n[aws]\nregion = \"eu-west-1\"\n[ecs]\nclusters = [\"c\"]\n";

    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let text = format!("{BASE}{extra}");
        Config::parse(
            Path::new("opsguard.toml"),
            &text,
            &|_| Some("pw".to_owned()),
            time::macros::date!(2026 - 01 - 01),
        )
    }

    #[test]
    fn rehearse_defaults_and_settings() {
        let c = parse("").unwrap();
        assert_eq!(c.rehearse.aws_emulator, vec!["ministack".to_owned()]);
        assert_eq!(c.rehearse.es_url_env, vec!["ES_URL", "ELASTICSEARCH_URL"]);
        let c = parse("[rehearse]\naws_emulator = [\"/v/bin/ministack\", \"--x\"]\nextra_secrets = [\"es/*\"]\nes_url_env = [\"SEARCH_URL\"]\naws_endpoint_url = \"http://localhost:4566\"\n").unwrap();
        assert_eq!(c.rehearse.aws_emulator, vec!["/v/bin/ministack", "--x"]);
        assert_eq!(c.rehearse.extra_secrets, vec!["es/*"]);
        assert_eq!(c.rehearse.es_url_env, vec!["SEARCH_URL"]);
        assert_eq!(
            c.rehearse.aws_endpoint_url.as_deref(),
            Some("http://localhost:4566")
        );
    }

    #[test]
    fn a_shadow_off_loopback_or_without_a_program_is_refused_with_help() {
        let e = parse(
            "[rehearse]\naws_endpoint_url = \"https://secretsmanager.eu-west-1.amazonaws.com\"\n",
        )
        .unwrap_err();
        let text = format!("{:?}", miette::Report::new(e));
        assert!(text.contains("not a loopback"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
        let e = parse("[rehearse]\naws_emulator = []\n").unwrap_err();
        assert!(format!("{:?}", miette::Report::new(e)).contains("names no program"));
        assert!(parse("[rehearse]\nunknown = 1\n").is_err());
    }
}
