//! `opsguard run -- CMD`: pre-flight, the command, and the verdict.

use super::*;
use crate::progress::Progress;
use crate::snapshot::fingerprint::FingerprintKey;
use crate::snapshot::{Live, Taken};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub struct RunOptions {
    pub mode: Mode,
    /// How long a redeploy may take to become stable.
    pub stable_timeout: Duration,
    /// `--watch`: probe the live credentials while the command runs.
    pub watch: bool,
    pub skip_preflight: bool,
    pub command: Vec<OsString>,
    /// `.opsguard/runs/RUN_ID`: before/after snapshots, facts and report land here.
    pub run_dir: PathBuf,
    pub run_id: String,
    /// Where to say what each slow step waits for (hidden off a terminal).
    pub progress: Progress,
}

/// What a run produced: the report, and the before/after diff for people.
pub struct RunResult {
    pub report: Report,
    pub diff: Option<String>,
}

/// Attempts at the after snapshot: the command may have left the world busy
/// (a throttled API, a restarting node); the verdict is worth a short wait.
const AFTER_ATTEMPTS: u32 = 3;

use super::remediate::{save_json as save, save_report, take_with_retry, Session};
use crate::remedy::journal::failpoint_at;

/// Steps 1–5 of a run: pre-flight, the command, the after snapshot, the
/// verdict, the remedy. Each step is a function below; this one threads the
/// report through them and stops where one says the run cannot go on.
pub async fn run(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    opts: RunOptions,
) -> Result<RunResult, command::SpawnError> {
    let mut report = new_report("run", opts.run_id.clone(), opts.mode.into());
    report.command = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    report.skip_preflight = opts.skip_preflight;

    // 1. Pre-flight.
    let (live, before) = match preflight(config, policy, key, &opts, &mut report).await {
        Ok(ready) => ready,
        Err(why) => {
            exit::settle(&mut report, Outcome::PreflightFailed, None);
            report.preflight_error = Some(why);
            return Ok(finish(&opts, report, None));
        }
    };

    // 2. The command, watched if asked.
    let ran = command(config, &opts, &live, &before, &mut report).await?;
    failpoint_at("after-command");

    // 3. After, even if the command failed or was killed.
    let judged = match after(config, policy, key, &opts, &live, &before, &mut report).await {
        Ok(j) => j,
        Err(why) => {
            exit::settle(&mut report, Outcome::RemediationFailed, None);
            report.error = Some(why);
            report.notes.push(if matches!(opts.mode, Mode::Rollback | Mode::Redeploy) {
                format!(
                    "no remedy was attempted: without the after snapshot nothing can be planned; `opsguard resume {}` plans and applies it from the current state once the environment answers",
                    opts.run_id
                )
            } else {
                format!(
                    "no remedy was attempted (mode {}): check by hand what the command changed",
                    opts.mode.as_str()
                )
            });
            return Ok(finish(&opts, report, None));
        }
    };

    // 4. The verdict. A broken rule blocks (fail closed).
    let blocking = judged.findings.iter().any(is_blocking) || !judged.broken.is_empty();
    let outcome = if blocking {
        Outcome::Violated
    } else {
        Outcome::Ok
    };
    let code = exit::Command {
        code: ran.ended.shell_code(),
        warn: opts.mode == Mode::Warn,
    };
    if let Some(note) = exit::settle(&mut report, outcome, Some(code)) {
        eprintln!("opsguard: {note}");
    }

    // 5. The remedy, journalled, then proven by a fresh snapshot.
    if blocking && matches!(opts.mode, Mode::Rollback | Mode::Redeploy) {
        remedy(
            config,
            policy,
            key,
            &opts,
            &live,
            &before,
            &judged,
            &ran,
            &mut report,
        )
        .await;
    }
    Ok(finish(&opts, report, Some(judged.diff)))
}

/// The report, finished and saved in the run folder.
fn finish(opts: &RunOptions, mut report: Report, diff: Option<String>) -> RunResult {
    report.finished_at = now_rfc3339();
    save_report(&opts.run_dir, &report);
    RunResult { report, diff }
}

/// Step 1: connect, take the before snapshot, and refuse to go on when the
/// environment already violates a blocking rule or the remedy would lack a
/// privilege (`--skip-preflight` turns both into notes). `Err` says why the
/// command must not run.
async fn preflight(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    opts: &RunOptions,
    report: &mut Report,
) -> Result<(Live, Taken), String> {
    let connected = {
        let _step = opts.progress.step("connecting to AWS and Elasticsearch");
        Live::connect(config).await
    };
    let live = connected
        .map_err(|e| format!("cannot take the before snapshot: {e}"))?
        .with_progress(&opts.progress);
    live.set_phase("before snapshot");
    let before = live
        .take(config, key)
        .await
        .map_err(|e| format!("cannot take the before snapshot: {e}"))?;
    save(&opts.run_dir, "before.json", &before.snapshot);
    let pre = policy
        .evaluate(&policy.steady_facts(&before.snapshot, "check"))
        .map_err(|e| format!("rule evaluation failed: {e}"))?;
    if pre.iter().any(is_blocking) {
        if !opts.skip_preflight {
            record_findings(report, &pre);
            return Err("the environment already violates a blocking rule; the command was not run (use --skip-preflight to run a repair)".into());
        }
        report.notes.push(format!(
            "--skip-preflight: the environment already violated {} blocking rule(s) before the command",
            pre.iter().filter(|f| is_blocking(f)).count()
        ));
    }

    // A remedy that would need privileges opsguard's identity lacks would
    // fail half-way, after the command: find out now.
    if matches!(opts.mode, Mode::Rollback | Mode::Redeploy) {
        let step = opts
            .progress
            .step("pre-flight: checking the privileges the remedy needs");
        let checked = remedy_privileges(&live, opts.mode).await;
        drop(step);
        match checked {
            Ok(()) => {}
            Err(why) if opts.skip_preflight => report
                .notes
                .push(format!("--skip-preflight: {why}; a remedy may fail")),
            Err(why) => {
                return Err(format!(
                    "{why}; the command was not run (use --skip-preflight to run it anyway)"
                ))
            }
        }
    }
    Ok((live, before))
}

/// How the command ended, and what the tripwire saw.
struct Ran {
    ended: command::Ended,
    trip: Option<super::watch::Trip>,
    ended_at: std::time::Instant,
}

/// Step 2: run the command (the terminal is its own meanwhile), with the
/// tripwire probing the live credentials under `--watch`.
async fn command(
    config: &Config,
    opts: &RunOptions,
    live: &Live,
    before: &Taken,
    report: &mut Report,
) -> Result<Ran, command::SpawnError> {
    let probes = std::sync::atomic::AtomicU64::new(0);
    let watched = super::watch::watched(&before.snapshot, &before.auth);
    let hold = opts
        .progress
        .hold(&crate::report::escape::line(&report.command.join(" "), 200));
    let (ended, trip) = if opts.watch {
        let wire = Box::pin(super::watch::tripwire(
            live.es(),
            watched.clone(),
            config.remedies.watch_interval,
            &probes,
        ));
        command::run_watched(&opts.command, Some((wire, config.remedies.kill_grace))).await?
    } else {
        (command::run(&opts.command).await?, None)
    };
    drop(hold);
    if let Some(t) = &trip {
        report.notes.push(format!(
            "tripwire: {} stopped authenticating during the command; it was stopped",
            t.credentials.join(", ")
        ));
        report.outage = Some(super::watch::Outage {
            credentials: t.credentials.clone(),
            first_failed_probe_at: t
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            recovered_at: None,
            window_ms: None,
            probes: probes.load(std::sync::atomic::Ordering::Relaxed),
        });
    }
    report.command_exit = ended.code;
    report.command_signal = ended.signal_name();
    Ok(Ran {
        ended,
        trip,
        ended_at: std::time::Instant::now(),
    })
}

/// What step 3 found.
struct Judged {
    after: Taken,
    facts: crate::facts::model::Facts,
    findings: Vec<Finding>,
    /// Rules that could not be evaluated: their items are unjudged.
    broken: Vec<RuleError>,
    diff: String,
}

/// Step 3: the after snapshot, the probes of the values the running tasks
/// hold, the facts and the findings. `Err` says why nothing can be judged
/// (and so nothing remedied).
async fn after(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    opts: &RunOptions,
    live: &Live,
    before: &Taken,
    report: &mut Report,
) -> Result<Judged, String> {
    live.set_phase("after snapshot");
    let after = take_with_retry(live, config, key, AFTER_ATTEMPTS).await.map_err(|e| {
        format!("the command ran, but the after snapshot failed ({e}): what it changed is unknown; check by hand")
    })?;
    save(&opts.run_dir, "after.json", &after.snapshot);
    if let Some(note) = crate::snapshot::throttle_note(&[&before.snapshot, &after.snapshot]) {
        report.notes.push(note);
    }
    failpoint_at("after-snapshot");
    let step = opts.progress.step(format!(
        "after snapshot: probing the {} value(s) the running tasks hold",
        before.auth.len()
    ));
    let probes = probe_values(live.es(), &before.snapshot, &before.auth).await;
    drop(step);
    let probes = probes.map_err(|e| {
        format!("the command ran, but probing the credentials failed ({e}); check by hand")
    })?;
    let facts = policy.facts(&before.snapshot, &after.snapshot, "run", Some(&probes));
    save(&opts.run_dir, "facts.json", &facts);
    failpoint_at("after-facts");
    // A rule that cannot be evaluated fails closed on its own items; the
    // other rules are still judged, and their violations remedied.
    let (findings, broken) = policy
        .evaluate_each(&facts)
        .map_err(|e| format!("rule evaluation failed after the command: {e}"))?;
    for e in &broken {
        report.notes.push(format!(
            "rule could not be evaluated, so its items are unjudged and the verdict fails closed: {e}"
        ));
    }
    record_findings(report, &findings);
    report.changes = crate::report::changes::between(&before.snapshot, &after.snapshot);
    let diff = crate::report::diff::text(
        &crate::report::escape::sanitize(&before.snapshot),
        &crate::report::escape::sanitize(&after.snapshot),
    );
    Ok(Judged {
        after,
        facts,
        findings,
        broken,
        diff,
    })
}

/// Step 5: plan the remedy, journal it, apply it and verify it with a fresh
/// snapshot; the report gets the remediation and the final outcome.
#[allow(clippy::too_many_arguments)]
async fn remedy(
    config: &Config,
    policy: &Policy,
    key: &FingerprintKey,
    opts: &RunOptions,
    live: &Live,
    before: &Taken,
    judged: &Judged,
    ran: &Ran,
    report: &mut Report,
) {
    failpoint_at("before-plan");
    let plan = crate::remedy::plan::plan(
        opts.mode,
        &judged.findings,
        &judged.facts,
        &before.snapshot,
        &judged.after.snapshot,
        config,
    );
    let session = Session::begin(&opts.run_dir, &opts.run_id, opts.mode, false)
        .and_then(|mut s| s.plan(&plan).map(|()| s));
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            exit::settle(report, Outcome::RemediationFailed, None);
            report.error = Some(format!("{e}, so no remedy was applied"));
            return;
        }
    };
    failpoint_at("after-plan");
    let progress = crate::remedy::journal::Progress {
        plan: Some(plan.clone()),
        ..Default::default()
    };
    // What the running tasks will hold once the remedy is done: the
    // before-values after a rollback, the current ones after a redeploy.
    let recovery = ran.trip.as_ref().map(|t| {
        let held = if opts.mode == Mode::Redeploy {
            &judged.after.auth
        } else {
            &before.auth
        };
        held.iter()
            .filter(|(id, _)| t.credentials.contains(id))
            .collect::<Vec<_>>()
    });
    live.set_phase("verification snapshot");
    let mut out = super::remediate::remediate(
        &super::remediate::Input {
            config,
            policy,
            key,
            live,
            before: &before.snapshot,
            values: &before.auth,
            current: &judged.after.auth,
            mode: opts.mode,
            stable_timeout: opts.stable_timeout,
            recovery,
            watch_interval: config.remedies.watch_interval,
            progress: opts.progress.clone(),
        },
        &plan,
        &progress,
        &mut session,
    )
    .await;
    failpoint_at("after-verified");
    if let (Some(t), Some(o), Some((at, instant))) =
        (&ran.trip, report.outage.as_mut(), out.recovered)
    {
        o.recovered_at = at
            .format(&time::format_description::well_known::Rfc3339)
            .ok();
        o.window_ms = Some(instant.duration_since(t.instant).as_millis() as u64);
        report.notes.push(format!(
            "tripwire: outage window {} ms, from the first refused probe to the first probe that succeeded after the remedy",
            instant.duration_since(t.instant).as_millis()
        ));
    }
    out.remediation.exit_to_verified_ms = Some(ran.ended_at.elapsed().as_millis() as u64);
    super::remediate::settle(report, out);
    if let Some(e) = judged.broken.first() {
        // The remedy may have put the other rules right; what the broken
        // rule judges is not known, so this is not proven.
        if report.outcome == Outcome::Remediated {
            exit::settle(report, Outcome::RemediationFailed, None);
        }
        report.error.get_or_insert_with(|| {
            format!("a rule could not be evaluated, so the remedy cannot be proven complete: {e}")
        });
    }
    session.finish(report.exit_code);
}

/// The Elasticsearch privileges a remedy of `mode` needs, checked with
/// `_has_privileges` before the command runs. A rollback sets passwords and
/// users back (`manage_security`); a redeploy writes nothing to
/// Elasticsearch, but its verification reads users (`read_security`).
async fn remedy_privileges(live: &Live, mode: Mode) -> Result<(), String> {
    let wanted: &[&str] = match mode {
        Mode::Rollback => &["manage_security"],
        _ => &["read_security"],
    };
    let granted = live
        .es()
        .has_privileges(wanted)
        .await
        .map_err(|e| format!("cannot check the privileges a {} needs: {e}", mode.as_str()))?;
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|p| !granted.cluster.get(**p).copied().unwrap_or(false))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the Elasticsearch identity {} lacks the cluster privilege{} [{}] that a {} needs{}",
        crate::report::escape::line(&granted.username, 128),
        if missing.len() > 1 { "s" } else { "" },
        missing.join(", "),
        mode.as_str(),
        if mode == Mode::Rollback {
            " to set passwords and users back"
        } else {
            ""
        }
    ))
}
