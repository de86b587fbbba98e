//! Every report format, snapshotted with insta, for the reports that matter:
//! the 2021-07-27 incident replayed under `opsguard run`, a clean run, a
//! `check` with a warning and a waiver, and a pre-flight that failed.
//!
//! The snapshots are reviewed output: a change to what a person or a CI
//! system reads shows up as a snapshot diff, not as a surprise. Times and run
//! ids are filtered, so the snapshots hold only what the report says.

use insta::Settings;
use opsguard::report::model::*;
use opsguard::report::{self, changes, diff, Format, RenderOptions};

const PLAIN: RenderOptions = RenderOptions::PLAIN;
const COLOUR: RenderOptions = RenderOptions {
    colour: true,
    ..RenderOptions::PLAIN
};

// The snapshots behind the reports are the report stage's own fixture
// (src/report/fixture.rs), one source for the library's unit tests and
// these. It names its types through `crate::`, so those paths are given
// here.
mod config {
    pub use opsguard::config::*;
}
mod model {
    pub use opsguard::model::*;
}
mod snapshot {
    pub mod model {
        pub use opsguard::snapshot::model::*;
    }
}
#[path = "../src/report/fixture.rs"]
#[allow(dead_code, reason = "shared with the unit tests, which use the rest")]
mod fixture;
use fixture::{at, incident_after, incident_before, user};

// ------------------------------------------------------------ the reports

use fixture::CLUSTER;

fn consumers(user: &str) -> Vec<String> {
    vec![
        format!("{CLUSTER}/prod-{user}-api"),
        format!("{CLUSTER}/stage-{user}-api"),
    ]
}

fn live_credential_broken(user: &str) -> Violation {
    Violation {
        rule: "live-credential-broken".into(),
        severity: Severity::Block,
        target: user.into(),
        message: format!(
            "credential {user}: the value its 4 running tasks hold no longer authenticates \
             (authenticated before the command, rejected after)"
        ),
        consumers: consumers(user),
        remedies: vec![Remedy::Rollback, Remedy::Redeploy],
        summary: "A credential used by running tasks stopped working".into(),
        why: "Running tasks read their credentials once, at start-up: every request they \
              make to Elasticsearch now fails with 401 until they are restarted or the old \
              password is restored."
            .into(),
        waiver: None,
    }
}

fn rotated_without_redeploy(user: &str) -> Violation {
    Violation {
        rule: "secret-rotated-without-redeploy".into(),
        severity: Severity::Block,
        target: user.into(),
        message: format!(
            "elasticsearch/catalogue_api/{user}/password changed at 14:37:30, \
             and 4 tasks that started before it are still running"
        ),
        consumers: consumers(user),
        remedies: vec![Remedy::Redeploy],
        summary: "A consumed secret changed and its consumers were not redeployed".into(),
        why: "ECS injects secrets when a task starts; tasks started before the change keep \
              the old value until a new deployment replaces them."
            .into(),
        waiver: None,
    }
}

fn shared_across_environments(user: &str, waiver: Option<WaiverNote>) -> Violation {
    Violation {
        rule: "shared-credential-across-environments".into(),
        severity: Severity::Warn,
        target: user.into(),
        message: format!("credential {user} is used by prod and stage services"),
        consumers: consumers(user),
        remedies: vec![],
        summary: "One credential serves several environments".into(),
        why: "Rotating or breaking it for stage breaks prod too: on 2021-07-27 both went \
              down together."
            .into(),
        waiver,
    }
}

fn base(subcommand: &str, mode: ReportMode) -> Report {
    Report {
        schema: opsguard::report::model::SCHEMA.into(),
        run_id: "20210727T143700Z-3f2a".into(),
        subcommand: subcommand.into(),
        mode,
        started_at: "2021-07-27T14:30:00Z".into(),
        finished_at: "2021-07-27T14:38:02Z".into(),
        ..Report::default()
    }
}

/// The incident: the user script rotated `search` and `items` in ES and in
/// Secrets Manager, and nothing restarted the tasks holding the old passwords.
fn incident() -> (Report, String) {
    let before = incident_before();
    let after = incident_after();
    let mut r = base("run", ReportMode::Block);
    r.command = vec![
        "python3".into(),
        "examples/incident/create_elastic_users.py".into(),
    ];
    r.command_exit = Some(0);
    r.outcome = Outcome::Violated;
    r.exit_code = 11;
    r.violations = vec![
        live_credential_broken("items"),
        live_credential_broken("search"),
        rotated_without_redeploy("items"),
        rotated_without_redeploy("search"),
    ];
    r.changes = changes::between(&before, &after);
    (r, diff::text(&before, &after))
}

/// A run that changed an unused user's secret: nothing live, nothing wrong.
fn ok() -> (Report, String) {
    let before = incident_before();
    let mut after = before.clone();
    after.taken_at = at("2021-07-27T14:38:00Z");
    after
        .elasticsearch
        .users
        .push(user("new_tool", &["catalogue_read"]));
    let mut r = base("run", ReportMode::Block);
    r.command = vec!["./create-user.sh".into(), "new_tool".into()];
    r.command_exit = Some(0);
    r.outcome = Outcome::Ok;
    r.exit_code = 0;
    r.changes = changes::between(&before, &after);
    (r, diff::text(&before, &after))
}

/// `opsguard check` on the replica: prod and stage share `items` (a warning)
/// and `search` (waived in the config).
fn check() -> Report {
    let mut r = base("check", ReportMode::Check);
    r.outcome = Outcome::Ok;
    r.exit_code = 0;
    r.violations = vec![shared_across_environments("items", None)];
    r.waived = vec![shared_across_environments(
        "search",
        Some(WaiverNote {
            reason: "prod and stage share users until ticket 123".into(),
            expires: "2027-01-31".into(),
        }),
    )];
    r
}

/// Pre-flight could not snapshot: the command must not have run.
fn preflight_failed() -> Report {
    let mut r = base("run", ReportMode::Rollback);
    r.command = vec![
        "python3".into(),
        "examples/incident/create_elastic_users.py".into(),
    ];
    r.outcome = Outcome::PreflightFailed;
    r.exit_code = 13;
    r.preflight_error = Some(
        "cannot take the before snapshot: Elasticsearch GET /_security/user: \
         connection refused (https://catalogue.es.example:9243)"
            .into(),
    );
    r
}

// ------------------------------------------------------------ the tests

const FORMATS: [(Format, &str); 4] = [
    (Format::Human, "human"),
    (Format::Json, "json"),
    (Format::Markdown, "markdown"),
    (Format::Junit, "junit"),
];

fn cases() -> Vec<(&'static str, Report, Option<String>)> {
    let (incident, incident_diff) = incident();
    let (ok, ok_diff) = ok();
    vec![
        ("incident", incident, Some(incident_diff)),
        ("ok", ok, Some(ok_diff)),
        ("check", check(), None),
        ("preflight_failed", preflight_failed(), None),
    ]
}

fn filtered() -> Settings {
    let mut s = Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    );
    s.add_filter(r"\b\d{8}T\d{6}Z-[0-9a-f]{4}\b", "[RUN_ID]");
    s.add_filter(r#"time="[0-9.]+""#, r#"time="[ELAPSED]""#);
    s
}

#[test]
fn every_format_of_every_report_is_as_reviewed() {
    let settings = filtered();
    for (name, report, diff) in cases() {
        for (format, fname) in FORMATS {
            let text = report::render(format, &report, diff.as_deref(), &PLAIN);
            settings.bind(|| insta::assert_snapshot!(format!("{name}_{fname}"), text));
        }
    }
}

#[test]
fn the_human_report_ends_with_the_verdict() {
    let first = |r: &Report, d: Option<&str>| {
        report::render(Format::Human, r, d, &PLAIN)
            .lines()
            .last()
            .unwrap()
            .to_owned()
    };
    let (incident, d) = incident();
    assert_eq!(
        first(&incident, Some(&d)),
        "BLOCKED: 4 blocking violations (command exited 0, exit 11)"
    );
    let (ok, d) = ok();
    assert_eq!(
        first(&ok, Some(&d)),
        "OK: no blocking violation (command exited 0)"
    );
    assert_eq!(
        first(&check(), None),
        "OK: no blocking violation, 1 warning (exit 0)"
    );
    assert_eq!(
        first(&preflight_failed(), None),
        "PRE-FLIGHT FAILED: the environment could not be checked; the command was NOT run (exit 13)"
    );
}

#[test]
fn colour_codes_appear_only_when_asked_for_and_only_in_human_text() {
    for (name, report, diff) in cases() {
        let plain = report::render(Format::Human, &report, diff.as_deref(), &PLAIN);
        assert!(
            !plain.contains('\x1b'),
            "{name}: escape codes without colour"
        );
        let coloured = report::render(Format::Human, &report, diff.as_deref(), &COLOUR);
        assert!(coloured.contains("\x1b["), "{name}: no colour when asked");
        // The same text underneath.
        let stripped = strip_ansi(&coloured);
        assert_eq!(stripped, plain, "{name}");
        for (format, fname) in &FORMATS[1..] {
            let text = report::render(*format, &report, diff.as_deref(), &COLOUR);
            assert!(!text.contains('\x1b'), "{name}: escape codes in {fname}");
        }
    }
    let (incident, d) = incident();
    let coloured = report::render(Format::Human, &incident, Some(&d), &COLOUR);
    assert!(
        coloured
            .lines()
            .last()
            .unwrap()
            .starts_with("\x1b[1;31mBLOCKED\x1b[0m: "),
        "{coloured:?}"
    );
    assert!(coloured.contains("\x1b[1;31mblock\x1b[0m"), "block is red");
    let check = report::render(Format::Human, &check(), None, &COLOUR);
    assert!(
        check
            .lines()
            .last()
            .unwrap()
            .starts_with("\x1b[1;32mOK\x1b[0m"),
        "ok is green"
    );
    assert!(check.contains("\x1b[1;33mwarn \x1b[0m"), "warn is yellow");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn junit_is_valid_xml_with_one_case_per_finding() {
    for (name, report, diff) in cases() {
        let xml = report::render(Format::Junit, &report, diff.as_deref(), &PLAIN);
        let parsed = quick_junit::Report::deserialize_from_str(&xml)
            .unwrap_or_else(|e| panic!("{name}: JUnit does not parse: {e}\n{xml}"));
        assert_eq!(parsed.test_suites.len(), 1, "{name}");
        let suite = &parsed.test_suites[0];
        assert_eq!(suite.name.as_str(), "opsguard");
        let cases = xml.matches("<testcase").count();
        assert_eq!(cases, suite.test_cases.len(), "{name}");
        let blocking = report
            .violations
            .iter()
            .filter(|v| v.severity == Severity::Block)
            .count();
        assert_eq!(xml.matches("<failure").count(), blocking, "{name}");
        assert_eq!(suite.failures, blocking, "{name}");
        assert_eq!(
            xml.matches("<skipped").count(),
            report.waived.len(),
            "{name}"
        );
        match name {
            "incident" => {
                assert_eq!(cases, 4);
                let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
                assert!(
                    names.contains(&"live-credential-broken: search"),
                    "{names:?}"
                );
                assert!(
                    names.contains(&"secret-rotated-without-redeploy: items"),
                    "{names:?}"
                );
            }
            "ok" => {
                assert_eq!(cases, 1);
                assert_eq!(suite.test_cases[0].name.as_str(), "opsguard: no violations");
            }
            "check" => assert_eq!(cases, 2),
            "preflight_failed" => {
                assert_eq!(cases, 1);
                assert_eq!(suite.errors, 1, "a failed pre-flight must not look green");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn junit_survives_markup_in_messages() {
    let mut r = check();
    r.violations[0].message = "a <b> & \"c\" ]]> \x1b[31m\x07 d".into();
    r.violations[0].severity = Severity::Block;
    let xml = report::render(Format::Junit, &r, None, &PLAIN);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.failures, 1);
    assert!(!xml.contains('\x1b') && !xml.contains('\x07'), "{xml}");
}

#[test]
fn json_is_the_model_and_the_documented_schema() {
    let (incident, _) = incident();
    let text = report::render(Format::Json, &incident, None, &PLAIN);
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, incident);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "opsguard.report/v1");
    assert_eq!(v["outcome"], "violated");
    assert_eq!(v["exit_code"], 11);
    assert_eq!(v["violations"][1]["rule"], "live-credential-broken");
    assert_eq!(
        v["violations"][1]["consumers"][0],
        "catalogue-api-2021-04-26/prod-search-api"
    );
}

#[test]
fn markdown_tables_survive_pipes_and_newlines() {
    let mut r = check();
    r.violations[0].message = "one | two\nthree".into();
    let md = report::render(Format::Markdown, &r, None, &PLAIN);
    let row = md
        .lines()
        .find(|l| l.starts_with("| warn |"))
        .expect("a table row");
    assert!(row.ends_with("| one \\| two<br>three |"), "{row}");
    // Five columns: six unescaped pipes.
    let unescaped = row.replace("\\|", "").matches('|').count();
    assert_eq!(unescaped, 6, "{row}");
}

#[test]
fn no_report_prints_a_fingerprint_beyond_eight_hex_digits() {
    let before = incident_before();
    let after = incident_after();
    for (name, report, diff) in cases() {
        for (format, fname) in FORMATS {
            let text = report::render(format, &report, diff.as_deref(), &PLAIN);
            for s in before.secrets.iter().chain(&after.secrets) {
                let hex = s.current_fingerprint.as_deref().unwrap();
                let hex = hex.trim_start_matches("hmac-sha256:");
                assert!(!text.contains(&hex[..9]), "{name} {fname}");
            }
            assert!(!text.contains("hmac-sha256"), "{name} {fname}");
        }
    }
}

#[test]
fn remediation_notes_and_errors_are_shown() {
    let (mut r, d) = incident();
    r.mode = ReportMode::Rollback;
    r.outcome = Outcome::RemediationFailed;
    r.exit_code = 12;
    r.notes = vec!["--skip-preflight: the environment already violated 1 blocking rule(s)".into()];
    r.remediation = Some(Remediation {
        mode: ReportMode::Rollback,
        actions: vec![
            Action {
                kind: "restore-secret-stage".into(),
                target: "elasticsearch/catalogue_api/search/password".into(),
                ok: true,
                detail: None,
            },
            Action {
                kind: "reset-es-password".into(),
                target: "search".into(),
                ok: false,
                detail: Some("Elasticsearch answered 503".into()),
            },
        ],
        verified: false,
        ..Default::default()
    });
    let human = report::render(Format::Human, &r, Some(&d), &PLAIN);
    assert!(human.ends_with("\nREMEDIATION FAILED: 4 blocking violations; rollback failed: 1 of 2 steps failed; a human is needed (command exited 0, exit 12)\n"), "{human}");
    assert!(human.contains("\nnotes:\n  --skip-preflight"), "{human}");
    assert!(human.contains("remediation (rollback): NOT verified\n  ok     restore-secret-stage elasticsearch/catalogue_api/search/password\n  FAILED reset-es-password search: Elasticsearch answered 503\n"), "{human}");
    let md = report::render(Format::Markdown, &r, Some(&d), &PLAIN);
    assert!(
        md.contains("### Remediation (rollback): NOT verified"),
        "{md}"
    );
    assert!(
        md.contains("- **FAILED** reset-es-password `search`: Elasticsearch answered 503"),
        "{md}"
    );

    // The after snapshot failed: no findings, yet no green CI either.
    let mut r = base("run", ReportMode::Block);
    r.command = vec!["true".into()];
    r.command_exit = Some(0);
    r.outcome = Outcome::RemediationFailed;
    r.exit_code = 12;
    r.error = Some("the command ran, but the after snapshot failed (timeout)".into());
    let human = report::render(Format::Human, &r, None, &PLAIN);
    assert!(
        human.lines().last().unwrap().starts_with("UNVERIFIED: "),
        "{human}"
    );
    assert!(
        human.contains("\nerror: the command ran, but the after snapshot failed (timeout)\n"),
        "{human}"
    );
    let xml = report::render(Format::Junit, &r, None, &PLAIN);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.errors, 1, "{xml}");
    assert!(!xml.contains("no violations"), "{xml}");
}

#[test]
fn every_json_report_and_snapshot_here_matches_the_published_schema() {
    use opsguard_testkit::schema::{assert_conforms, Schema};
    for (name, report, _) in cases() {
        let text = report::render(Format::Json, &report, None, &PLAIN);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["schema"], "opsguard.report/v1", "{name}");
        assert_conforms(Schema::Report, &json);
    }
    for snap in [incident_before(), incident_after()] {
        assert_conforms(Schema::Snapshot, &serde_json::to_value(&snap).unwrap());
    }
}

#[test]
fn quiet_is_the_verdict_line_alone() {
    let quiet = RenderOptions {
        quiet: true,
        ..PLAIN
    };
    for (name, report, diff) in cases() {
        let line = report::render(Format::Human, &report, diff.as_deref(), &quiet);
        assert_eq!(
            line,
            format!("{}\n", report::verdict::of(&report).line()),
            "{name}"
        );
    }
}

#[test]
fn each_cause_is_said_once_and_the_diff_only_under_v() {
    let (incident, d) = incident();
    let text = report::render(Format::Human, &incident, Some(&d), &PLAIN);
    // Two credentials, each fired two rules: two causes, each consumer
    // listed once in its cause and once in the summary.
    assert_eq!(text.matches("\ncredential search\n").count(), 1, "{text}");
    assert_eq!(text.matches("\ncredential items\n").count(), 1, "{text}");
    assert_eq!(text.matches("  consumers: catalogue").count(), 2, "{text}");
    assert_eq!(
        text.matches("catalogue-api-2021-04-26/prod-search-api,")
            .count(),
        2,
        "{text}"
    );
    // Why it matters: once per rule, not once per finding.
    assert_eq!(
        text.matches("ECS injects secrets when a task starts")
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("@@ secrets @@"), "{text}");
    assert!(
        text.contains("(-v shows the full before/after diff)"),
        "{text}"
    );
    let verbose = RenderOptions {
        verbose: 1,
        ..PLAIN
    };
    let text = report::render(Format::Human, &incident, Some(&d), &verbose);
    assert!(text.contains("\ndiff:\n"), "{text}");
    assert!(text.contains("@@ secrets @@"), "{text}");
    // The summary is last, the verdict line the very last.
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    assert_eq!(
        tail,
        [
            "BLOCKED: 4 blocking violations (command exited 0, exit 11)",
            "  exit 11:     a blocking violation, no remedy applied",
            "  done:        nothing undone: mode block stops here with exit 11; the command's changes stand",
            "  consumers:   catalogue-api-2021-04-26/prod-items-api, catalogue-api-2021-04-26/stage-items-api, catalogue-api-2021-04-26/prod-search-api, catalogue-api-2021-04-26/stage-search-api",
            "  broke:       credential items, credential search",
        ]
    );
}

#[test]
fn skip_preflight_and_an_empty_change_list_are_said_truly() {
    // --skip-preflight still takes and judges the before snapshot: the
    // report must not say the environment was not checked.
    let (mut r, d) = ok();
    r.skip_preflight = true;
    r.notes = vec![
        "--skip-preflight: the environment already violated 1 blocking rule(s) before the command"
            .into(),
    ];
    for format in [Format::Human, Format::Markdown] {
        let text = report::render(format, &r, Some(&d), &PLAIN);
        assert!(!text.contains("not checked"), "{text}");
        assert!(
            text.contains("already violated 1 blocking rule(s)"),
            "{text}"
        );
    }
    // Nothing seen is not nothing changed: a password set in Elasticsearch
    // and a secret no task definition uses are outside the snapshots.
    r.changes.clear();
    let text = report::render(Format::Human, &r, Some(&d), &PLAIN);
    assert!(!text.contains("changes: none\n"), "{text}");
    assert!(
        text.contains("changes: none that opsguard can see (it does not see a password set in Elasticsearch, nor a secret no task definition uses)"),
        "{text}"
    );
}

#[test]
fn check_suggests_what_can_be_done_from_one_look() {
    let mut r = base("check", ReportMode::Check);
    r.outcome = Outcome::Violated;
    r.exit_code = 11;
    r.violations = vec![Violation {
        rule: "service-degraded".into(),
        severity: Severity::Block,
        target: format!("{CLUSTER}/prod-search-api"),
        message: format!(
            "service {CLUSTER}/prod-search-api is degraded: 1 of 2 desired tasks running"
        ),
        consumers: vec![format!("{CLUSTER}/prod-search-api")],
        remedies: vec![Remedy::Rollback],
        ..Violation::default()
    }];
    let text = report::render(Format::Human, &r, None, &PLAIN);
    assert!(
        !text.contains("roll back"),
        "no before state in check: {text}"
    );
    assert!(
        !text.contains("[RUN_ID]") && !text.contains(&r.run_id),
        "{text}"
    );
    assert!(
        text.contains(
            "\n          aws ecs update-service --cluster catalogue-api-2021-04-26 --service prod-search-api --force-new-deployment\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  next:        opsguard check --fix redeploy (or the aws commands above)\n"
        ),
        "{text}"
    );
}
