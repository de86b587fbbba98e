//! Unit tests of the rules stage: the built-in pack against the incident and
//! its near misses, every kind of load error with its position, overrides,
//! evaluation errors, and waivers.

use super::load::{parse_rule, Origin};
use super::*;
use crate::facts::model::{CredentialFact, Facts, SecretFact, ServiceFact};
use std::path::Path;

// ---------------------------------------------------------------- helpers

/// A valid rule; tests replace one line of it.
const BASE: &str = r#"id = "my-rule"
summary = "A test rule"
severity = "block"
each = "credentials"
when = 'credential.live'
message = "credential {id} ({consumers})"
why = "Because."
remedies = ["rollback"]
"#;

fn parse(text: &str) -> Result<Rule, RuleError> {
    parse_rule(
        Origin {
            source: "my.toml".into(),
            path: "my.toml".into(),
        },
        text,
    )
}

/// The load error of `text`: kind, `file:line:col`, message, help.
fn load_err(text: &str) -> (InvalidKind, String, String, String) {
    match parse(text) {
        Ok(_) => panic!("expected a load error for:\n{text}"),
        Err(RuleError::Invalid(e)) => (
            e.kind,
            e.location.clone(),
            e.message.clone(),
            e.help.clone().unwrap_or_default(),
        ),
        Err(other) => panic!("expected an Invalid error, got {other}"),
    }
}

fn with(line_prefix: &str, replacement: &str) -> String {
    let mut found = false;
    let out: Vec<String> = BASE
        .lines()
        .map(|l| {
            if l.starts_with(line_prefix) {
                found = true;
                replacement.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(found, "BASE has no line starting with {line_prefix}");
    out.join("\n") + "\n"
}

fn with_when(when: &str) -> String {
    with("when =", &format!("when = '{when}'"))
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// A consumed credential at rest: live, authenticating, nothing changed.
fn quiet_credential(id: &str, consumers: &[&str]) -> CredentialFact {
    let consumers: Vec<String> = consumers.iter().map(|s| s.to_string()).collect();
    CredentialFact {
        id: id.into(),
        kind: "elasticsearch-basic".into(),
        principal: id.into(),
        principal_before: id.into(),
        existed: true,
        exists: true,
        live: !consumers.is_empty(),
        running_tasks_before: consumers.len() as i64,
        running_tasks_after: consumers.len() as i64,
        principal_existed: true,
        principal_exists: true,
        enabled_before: true,
        enabled_after: true,
        roles_before: vec!["catalogue_read".into()],
        roles_after: vec!["catalogue_read".into()],
        authenticated_before: "authenticated".into(),
        before_value_after: "authenticated".into(),
        current_value_after: "authenticated".into(),
        secrets: vec![format!("catalogue/{id}/password")],
        live_consumers: consumers.clone(),
        environments: {
            let mut e: Vec<String> = consumers
                .iter()
                .filter_map(|c| c.split('/').nth(1)?.split('-').next().map(String::from))
                .collect();
            e.sort();
            e.dedup();
            e
        },
        consumers,
        ..Default::default()
    }
}

/// The 2021 script's effect on a credential: ES password and secret both
/// replaced, consumers not redeployed.
fn rotated_not_redeployed(mut c: CredentialFact) -> CredentialFact {
    c.before_value_after = "rejected".into();
    c.current_value_after = "authenticated".into();
    c.value_changed = c.existed;
    c.value_changed_at = "2021-07-27T14:37:02Z".into();
    c.versions_moved = c.secrets.clone();
    c.stale_consumers = c.live_consumers.clone();
    c.stale_tasks = c.running_tasks_after;
    c
}

fn healthy_service(id: &str) -> ServiceFact {
    ServiceFact {
        id: id.into(),
        cluster: id.split('/').next().unwrap().into(),
        name: id.split('/').nth(1).unwrap().into(),
        environment: id
            .split('/')
            .nth(1)
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .into(),
        existed: true,
        exists: true,
        desired_before: 1,
        desired_after: 1,
        running_before: 1,
        running_after: 1,
        rollout_before: "COMPLETED".into(),
        rollout_after: "COMPLETED".into(),
        deployments_after: 1,
        healthy_before: true,
        healthy_after: true,
        tasks_from_before: 1,
        ..Default::default()
    }
}

fn fired(findings: &[Finding]) -> Vec<(String, String)> {
    findings
        .iter()
        .map(|f| (f.rule.clone(), f.target.clone()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const PROD_SEARCH: &str = "catalogue-api-2021-04-26/prod-search-api";
const STAGE_SEARCH: &str = "catalogue-api-2021-04-26/stage-search-api";
const PROD_ITEMS: &str = "catalogue-api-2021-04-26/prod-items-api";

// ---------------------------------------------------------------- the pack

#[test]
fn every_builtin_test_passes() {
    let rules = RuleSet::builtin().unwrap();
    let run = rules.run_tests();
    let failures: Vec<String> = run
        .results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            format!(
                "{} / {} ({}): expected {}, got {:?}",
                r.rule, r.test, r.location, r.expected, r.got
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failing built-in tests:\n{}",
        failures.join("\n")
    );
    assert!(run.untested.is_empty(), "untested: {:?}", run.untested);
    assert!(run.results.len() >= 8 * 3);
    for rule in rules.rules() {
        assert!(
            rule.tests.len() >= 3,
            "{} has {} tests",
            rule.id,
            rule.tests.len()
        );
        let fire = rule
            .tests
            .iter()
            .filter(|t| t.expect == Expect::Fire)
            .count();
        assert!(
            fire >= 1 && fire < rule.tests.len(),
            "{} needs both firing and passing tests",
            rule.id
        );
    }
}

#[test]
fn the_builtin_pack_is_the_contract() {
    use Each::*;
    use Remedy::*;
    use Severity::*;
    let rules = RuleSet::builtin().unwrap();
    let got: Vec<(&str, Severity, Each, Vec<Remedy>)> = rules
        .rules()
        .iter()
        .map(|r| (r.id.as_str(), r.severity, r.each, r.remedies.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "credential-in-use-lost-roles",
                Warn,
                Credentials,
                vec![Rollback]
            ),
            (
                "credential-in-use-removed",
                Block,
                Credentials,
                vec![Rollback]
            ),
            ("desired-count-changed", Warn, Services, vec![Rollback]),
            (
                "live-credential-broken",
                Block,
                Credentials,
                vec![Rollback, Redeploy]
            ),
            ("plan-credential-replaced", Block, Changes, vec![]),
            ("plan-desired-count-changed", Warn, Changes, vec![]),
            ("plan-password-changed", Block, Changes, vec![]),
            ("plan-runs-provisioner", Warn, Changes, vec![]),
            (
                "plan-secret-rotated-without-redeploy",
                Block,
                Changes,
                vec![]
            ),
            ("secret-out-of-sync", Block, Credentials, vec![Rollback]),
            (
                "secret-rotated-without-redeploy",
                Block,
                Credentials,
                vec![Rollback, Redeploy]
            ),
            ("service-degraded", Block, Services, vec![Rollback]),
            (
                "shared-credential-across-environments",
                Warn,
                Credentials,
                vec![]
            ),
        ]
    );
    for r in rules.rules() {
        assert!(r.is_builtin());
        assert_eq!(r.source, format!("built-in:rules/{}.toml", r.id));
        assert!(r.overrides.is_none());
        assert!(!r.why.is_empty() && !r.summary.is_empty());
    }
    assert!(rules.get("service-degraded").is_some());
    assert!(rules.get("no-such-rule").is_none());
}

/// include_dir embeds the files it saw at build time; a rule file added or
/// removed since then would not be in the binary. This fails instead.
#[test]
fn the_embedded_pack_is_the_rules_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    on_disk.sort();
    let mut embedded: Vec<(String, String)> = load::BUILTIN
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
        .map(|f| {
            (
                f.path().display().to_string(),
                f.contents_utf8().unwrap().to_owned(),
            )
        })
        .collect();
    embedded.sort();
    assert!(
        on_disk == embedded,
        "rules/ changed since the last build: touch src/rules/load.rs to re-embed it"
    );
}

/// The 2021-07-27 replay: `search` and `items` (consumed, live) rotated
/// without a redeploy; `diff_tool`, `replication_manager` and
/// `internal_model_tool` rotated too, but nobody uses them.
#[test]
fn the_incident_is_caught_and_nothing_else() {
    let mut facts = Facts {
        mode: "run".into(),
        ..Default::default()
    };
    facts
        .credentials
        .push(rotated_not_redeployed(quiet_credential(
            "search",
            &[PROD_SEARCH, STAGE_SEARCH],
        )));
    facts
        .credentials
        .push(rotated_not_redeployed(quiet_credential(
            "items",
            &[PROD_ITEMS],
        )));
    for unused in ["diff_tool", "replication_manager", "internal_model_tool"] {
        facts
            .credentials
            .push(rotated_not_redeployed(quiet_credential(unused, &[])));
    }
    facts.services = [PROD_SEARCH, STAGE_SEARCH, PROD_ITEMS]
        .iter()
        .map(|s| healthy_service(s))
        .collect();
    let findings = RuleSet::builtin().unwrap().evaluate(&facts).unwrap();
    assert_eq!(
        fired(&findings),
        pairs(&[
            ("live-credential-broken", "items"),
            ("live-credential-broken", "search"),
            ("secret-rotated-without-redeploy", "items"),
            ("secret-rotated-without-redeploy", "search"),
            ("shared-credential-across-environments", "search"),
        ])
    );
    let broken = &findings[1];
    assert_eq!(broken.severity, Severity::Block);
    assert_eq!(broken.each, Each::Credentials);
    assert_eq!(broken.consumers, vec![PROD_SEARCH, STAGE_SEARCH]);
    assert_eq!(broken.remedies, vec![Remedy::Rollback, Remedy::Redeploy]);
    assert_eq!(
        broken.message,
        format!("credential search: the value its running tasks hold was accepted before the command and is rejected now ({PROD_SEARCH}, {STAGE_SEARCH})")
    );
    assert!(broken.why.contains("start-up"));
    assert!(broken.waiver.is_none() && broken.blocks());
}

#[test]
fn no_false_alarms_for_the_safe_scripts() {
    let rules = RuleSet::builtin().unwrap();
    let eval = |c: CredentialFact| {
        let facts = Facts {
            credentials: vec![c],
            ..Default::default()
        };
        fired(&rules.evaluate(&facts).unwrap())
    };
    // A new, unused user and its secrets.
    let mut new_user = quiet_credential("new_tool", &[]);
    new_user.existed = false;
    new_user.principal_existed = false;
    new_user.enabled_before = false;
    new_user.authenticated_before = "unresolved".into();
    new_user.before_value_after = "unresolved".into();
    assert_eq!(eval(new_user), vec![]);
    // Only roles changed (put_user without a password), roles gained.
    let mut roles = quiet_credential("search", &[PROD_SEARCH]);
    roles.roles_after.push("monitor".into());
    roles.roles_gained = vec!["monitor".into()];
    assert_eq!(eval(roles), vec![]);
    // An unused user rotated.
    assert_eq!(
        eval(rotated_not_redeployed(quiet_credential("diff_tool", &[]))),
        vec![]
    );
    // `search` rotated properly: ES + secret, then every consumer redeployed.
    let mut proper = rotated_not_redeployed(quiet_credential("search", &[PROD_SEARCH]));
    proper.stale_consumers.clear();
    proper.stale_tasks = 0;
    assert_eq!(eval(proper), vec![]);
    // A new secret version holding the same value.
    let mut same_value = quiet_credential("search", &[PROD_SEARCH]);
    same_value.versions_moved = same_value.secrets.clone();
    assert_eq!(eval(same_value), vec![]);
}

#[test]
fn each_way_of_breaking_a_credential_is_caught() {
    let rules = RuleSet::builtin().unwrap();
    let ids = |c: CredentialFact| -> Vec<String> {
        let facts = Facts {
            credentials: vec![c],
            ..Default::default()
        };
        rules
            .evaluate(&facts)
            .unwrap()
            .into_iter()
            .map(|f| f.rule)
            .collect()
    };
    let base = || quiet_credential("search", &[PROD_SEARCH]);

    let mut es_only = base();
    es_only.before_value_after = "rejected".into();
    es_only.current_value_after = "rejected".into();
    assert_eq!(
        ids(es_only),
        ["live-credential-broken", "secret-out-of-sync"]
    );

    let mut secret_only = base();
    secret_only.current_value_after = "rejected".into();
    secret_only.value_changed = true;
    secret_only.stale_consumers = vec![PROD_SEARCH.into()];
    secret_only.stale_tasks = 1;
    assert_eq!(
        ids(secret_only),
        ["secret-out-of-sync", "secret-rotated-without-redeploy"]
    );

    let mut deleted = base();
    deleted.principal_exists = false;
    deleted.enabled_after = false;
    deleted.before_value_after = "rejected".into();
    deleted.current_value_after = "rejected".into();
    assert_eq!(
        ids(deleted),
        [
            "credential-in-use-removed",
            "live-credential-broken",
            "secret-out-of-sync"
        ]
    );

    let mut disabled = base();
    disabled.enabled_after = false;
    assert_eq!(ids(disabled), ["credential-in-use-removed"]);

    let mut api_key = base();
    api_key.kind = "elasticsearch-api-key".into();
    api_key.principal = "key-2".into();
    api_key.principal_before = "key-1".into();
    let api_key = rotated_not_redeployed(api_key);
    assert_eq!(
        ids(api_key),
        ["live-credential-broken", "secret-rotated-without-redeploy"]
    );

    let mut lost = base();
    lost.roles_after.clear();
    lost.roles_lost = vec!["catalogue_read".into()];
    assert_eq!(ids(lost), ["credential-in-use-lost-roles"]);
}

/// `check` builds facts with before = after: only the steady-state rules
/// (`secret-out-of-sync`, `shared-credential-across-environments`) can fire,
/// however broken the environment already is.
#[test]
fn check_mode_fires_only_steady_state_rules() {
    let mut out_of_sync = quiet_credential("search", &[PROD_SEARCH, STAGE_SEARCH]);
    out_of_sync.authenticated_before = "rejected".into();
    out_of_sync.before_value_after = "rejected".into();
    out_of_sync.current_value_after = "rejected".into();
    let mut disabled = quiet_credential("items", &[PROD_ITEMS]);
    disabled.enabled_before = false;
    disabled.enabled_after = false;
    let mut degraded = healthy_service(PROD_SEARCH);
    degraded.desired_before = 3;
    degraded.desired_after = 3;
    degraded.healthy_before = false;
    degraded.healthy_after = false;
    degraded.degraded_reason = "1 of 3 desired tasks running".into();
    let facts = Facts {
        mode: "check".into(),
        credentials: vec![out_of_sync, disabled],
        services: vec![degraded, healthy_service(PROD_ITEMS)],
        secrets: vec![SecretFact {
            id: "catalogue/search/password".into(),
            existed: true,
            exists: true,
            live: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let findings = RuleSet::builtin().unwrap().evaluate(&facts).unwrap();
    assert_eq!(
        fired(&findings),
        pairs(&[
            ("secret-out-of-sync", "search"),
            ("shared-credential-across-environments", "search"),
        ])
    );
}

#[test]
fn service_findings_name_the_service_and_sort_by_severity() {
    let mut scaled = healthy_service(STAGE_SEARCH);
    scaled.desired_after = 3;
    let mut degraded = healthy_service(PROD_SEARCH);
    degraded.healthy_after = false;
    degraded.running_after = 0;
    degraded.degraded_reason = "0 of 1 desired tasks running".into();
    let facts = Facts {
        services: vec![scaled, degraded],
        ..Default::default()
    };
    let findings = RuleSet::builtin().unwrap().evaluate(&facts).unwrap();
    assert_eq!(
        fired(&findings),
        pairs(&[
            ("service-degraded", PROD_SEARCH),
            ("desired-count-changed", STAGE_SEARCH),
        ])
    );
    assert_eq!(findings[0].consumers, vec![PROD_SEARCH]);
    assert_eq!(
        findings[0].message,
        format!("service {PROD_SEARCH} is degraded: 0 of 1 desired tasks running (running 0 of 1 desired; rollout COMPLETED)")
    );
    assert_eq!(
        findings[1].message,
        format!("service {STAGE_SEARCH}: desired count changed from 1 to 3")
    );
}

#[test]
fn nothing_to_evaluate_is_no_finding() {
    let rules = RuleSet::builtin().unwrap();
    assert!(rules.evaluate(&Facts::default()).unwrap().is_empty());
}

// ---------------------------------------------------------------- load errors

#[test]
fn the_base_rule_loads() {
    let rule = parse(BASE).unwrap();
    assert_eq!(rule.id, "my-rule");
    assert_eq!(rule.when_location(), "my.toml:5:9");
    assert!(rule.tests.is_empty());
}

#[test]
fn malformed_toml_is_an_error_with_its_position() {
    let (kind, at, msg, _) = load_err(&with("summary =", "summary = \"unclosed"));
    assert_eq!(kind, InvalidKind::Toml);
    assert!(at.starts_with("my.toml:2:"), "{at}");
    assert!(!msg.is_empty());
}

#[test]
fn an_unknown_field_is_an_error_at_the_field() {
    let (kind, at, msg, help) = load_err(&with("why =", "why = \"x\"\nsevirity = \"warn\""));
    assert_eq!(kind, InvalidKind::UnknownField);
    assert_eq!(at, "my.toml:8:1");
    assert!(msg.contains("sevirity"), "{msg}");
    assert!(help.contains("severity"), "{help}");
}

#[test]
fn a_missing_field_is_an_error() {
    let (kind, at, msg, _) = load_err(&with("why =", ""));
    assert_eq!(kind, InvalidKind::MissingField);
    assert!(at.starts_with("my.toml:"), "{at}");
    assert!(msg.contains("why"), "{msg}");
}

#[test]
fn bad_severity_each_remedy_and_expect_are_errors_at_the_value() {
    let (kind, at, msg, _) = load_err(&with("severity =", "severity = \"fatal\""));
    assert_eq!((kind, at.as_str()), (InvalidKind::BadValue, "my.toml:3:12"));
    assert!(msg.contains("fatal") && msg.contains("block"), "{msg}");

    let (kind, at, msg, _) = load_err(&with("each =", "each = \"users\""));
    assert_eq!((kind, at.as_str()), (InvalidKind::BadValue, "my.toml:4:8"));
    assert!(
        msg.contains("users") && msg.contains("credentials"),
        "{msg}"
    );

    let (kind, at, msg, _) = load_err(&with("remedies =", "remedies = [\"rollback\", \"reboot\"]"));
    assert_eq!(kind, InvalidKind::BadValue);
    assert!(at.starts_with("my.toml:8:"), "{at}");
    assert!(msg.contains("reboot"), "{msg}");

    let (kind, at, _, _) = load_err(&format!(
        "{BASE}\n[[test]]\nname = \"t\"\nexpect = \"fires\"\n"
    ));
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::BadValue, "my.toml:12:10")
    );

    let (kind, at, _, _) = load_err(&with(
        "remedies =",
        "remedies = [\"rollback\", \"rollback\"]",
    ));
    assert_eq!((kind, at.as_str()), (InvalidKind::BadValue, "my.toml:8:12"));

    let (kind, at, _, _) = load_err(&with("id =", "id = \"My Rule\""));
    assert_eq!((kind, at.as_str()), (InvalidKind::BadValue, "my.toml:1:6"));
}

#[test]
fn a_cel_syntax_error_points_into_the_when() {
    // The expression starts on line 6 (the newline after the opening
    // quotes is not part of it); the input ends early, so the error is at
    // the end of `==`.
    let text = with(
        "when =",
        "when = '''\ncredential.live &&\n  credential.exists ==\n'''",
    );
    let (kind, at, msg, _) = load_err(&text);
    assert_eq!(kind, InvalidKind::CelSyntax);
    assert_eq!(at, "my.toml:7:23", "{msg}");
    assert!(msg.contains("CEL syntax error"), "{msg}");

    let (kind, at, _, _) = load_err(&with_when("credential.live && && credential.exists"));
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::CelSyntax, "my.toml:5:28")
    );
}

#[test]
fn an_unknown_fact_is_an_error_naming_the_known_ones() {
    let (kind, at, msg, help) = load_err(&with_when("credential.live && credential.nosuch"));
    assert_eq!(kind, InvalidKind::UnknownFact);
    assert_eq!(at, "my.toml:5:39");
    assert_eq!(msg, "`credential` has no fact `nosuch`");
    assert!(
        help.contains("live_consumers") && help.contains("stale_consumers"),
        "{help}"
    );

    // A near miss gets a suggestion, also behind a short circuit.
    let (_, _, _, help) = load_err(&with_when("false && credential.consumer == []"));
    assert!(
        help.starts_with("did you mean `credential.consumers`?"),
        "{help}"
    );

    // In a comprehension too.
    let (kind, _, _, _) = load_err(&with_when(
        "credential.consumers.exists(c, credential.nope)",
    ));
    assert_eq!(kind, InvalidKind::UnknownFact);
}

#[test]
fn an_unknown_name_is_an_error_naming_the_item() {
    let text = with("each =", "each = \"services\"")
        .replace("when = 'credential.live'", "when = 'svc.healthy_after'")
        .replace("{consumers}", "{consumes}");
    let (kind, at, msg, help) = load_err(&text);
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::UnknownFact, "my.toml:5:9")
    );
    assert!(msg.contains("`svc`") && msg.contains("`service`"), "{msg}");
    assert!(help.contains("healthy_after"), "{help}");

    // The item of another kind.
    let (kind, _, msg, _) = load_err(&with_when("service.healthy_after"));
    assert_eq!(kind, InvalidKind::UnknownFact);
    assert!(msg.contains("each = \"credentials\""), "{msg}");
}

#[test]
fn type_errors_are_caught_at_load() {
    let cases = [
        // An int compared with a string: always false.
        (
            "credential.running_tasks_after == \"3\"",
            "my.toml:5:9",
            "always false",
        ),
        ("credential.live == 1", "my.toml:5:9", "always false"),
        // A probe state that does not exist.
        (
            "credential.before_value_after == \"rejeted\"",
            "my.toml:5:42",
            "\"rejected\"",
        ),
        (
            "credential.current_value_after in [\"rejected\", \"unresolvd\"]",
            "my.toml:5:56",
            "never",
        ),
        // Not a condition.
        (
            "credential.running_tasks_after",
            "my.toml:5:9",
            "must be a condition",
        ),
        ("size(credential.live) > 0", "my.toml:5:14", "`size`"),
        ("credential.live && credential.id", "my.toml:5:28", "`&&`"),
        (
            "credential.consumers.exists(c, c == 1)",
            "my.toml:5:40",
            "always false",
        ),
        ("credential.id.value == \"x\"", "my.toml:5:9", "no field"),
        (
            "credential.running_tasks_after > \"2\"",
            "my.toml:5:9",
            "cannot order",
        ),
        ("1 in credential.consumers", "my.toml:5:9", "always false"),
    ];
    for (when, at, needle) in cases {
        let (kind, got_at, msg, _) = load_err(&with_when(when));
        assert_eq!(kind, InvalidKind::Type, "{when}: {msg}");
        assert_eq!(got_at, at, "{when}: {msg}");
        assert!(msg.contains(needle), "{when}: {msg}");
    }
}

#[test]
fn well_typed_conditions_load() {
    for when in [
        "credential.consumers.exists(c, c.startsWith(\"catalogue-api\"))",
        "credential.running_tasks_after > 0 || credential.stale_tasks >= 2",
        "\"prod\" in credential.environments && !credential.pinned",
        "credential.current_value_after in [\"rejected\", \"unresolved\"]",
        "credential.roles_after.all(r, r != \"superuser\")",
        "has(credential.live) && credential.kind == \"elasticsearch-api-key\"",
        "credential.consumers.filter(c, c.contains(\"stage\")).size() > 1",
        "size(credential.secrets_removed) > 0 ? credential.live : false",
    ] {
        parse(&with_when(when)).unwrap_or_else(|e| panic!("{when}: {e}"));
    }
}

/// A condition that cannot be evaluated on the default item fails at load,
/// not silently at run time.
#[test]
fn a_condition_failing_on_the_default_fact_is_a_load_error() {
    let (kind, at, msg, _) = load_err(&with_when("credential.consumers[0] == \"x\""));
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::Evaluation, "my.toml:5:9")
    );
    assert!(msg.contains("cannot be evaluated"), "{msg}");

    let (kind, _, _, _) = load_err(&with_when("int(credential.principal) > 0"));
    assert_eq!(kind, InvalidKind::Evaluation);
}

#[test]
fn message_placeholders_are_checked() {
    let (kind, at, msg, help) = load_err(&with(
        "message =",
        "message = \"credential {id} ({consumer})\"",
    ));
    assert_eq!((kind, at.as_str()), (InvalidKind::Template, "my.toml:6:29"));
    assert!(msg.contains("{consumer}"), "{msg}");
    assert!(help.starts_with("did you mean `{consumers}`?"), "{help}");

    let (kind, at, _, _) = load_err(&with("message =", "message = \"credential {id\""));
    assert_eq!((kind, at.as_str()), (InvalidKind::Template, "my.toml:6:23"));

    let rule = parse(&with(
        "message =",
        "message = \"{{literal}} {target}: {live} {running_tasks_after} [{roles_lost}] [{stale_consumers}]\"",
    ))
    .unwrap();
    let c = CredentialFact {
        id: "search".into(),
        live: true,
        running_tasks_after: 2,
        stale_consumers: vec!["a/b".into(), "a/c".into()],
        ..Default::default()
    };
    let facts = Facts {
        credentials: vec![c],
        ..Default::default()
    };
    let set = RuleSet { rules: vec![rule] };
    let findings = set.evaluate(&facts).unwrap();
    assert_eq!(
        findings[0].message,
        "{literal} search: true 2 [none] [a/b, a/c]"
    );
}

#[test]
fn test_facts_must_be_facts_of_the_kind() {
    let text = format!(
        "{BASE}\n[[test]]\nname = \"t\"\nexpect = \"fire\"\n[test.facts]\nlive = true\nhealthy_after = true\n"
    );
    let (kind, at, msg, help) = load_err(&text);
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::TestFacts, "my.toml:15:1")
    );
    assert!(msg.contains("healthy_after"), "{msg}");
    assert!(help.contains("running_tasks_after"), "{help}");

    let text = format!(
        "{BASE}\n[[test]]\nname = \"t\"\nexpect = \"fire\"\n[test.facts]\nlive = \"yes\"\n"
    );
    let (kind, at, _, _) = load_err(&text);
    assert_eq!(
        (kind, at.as_str()),
        (InvalidKind::TestFacts, "my.toml:14:8")
    );

    let text = format!(
        "{BASE}\n[[test]]\nname = \"t\"\nexpect = \"fire\"\n\n[[test]]\nname = \"t\"\nexpect = \"pass\"\n"
    );
    let (kind, at, _, _) = load_err(&text);
    assert_eq!((kind, at.as_str()), (InvalidKind::BadValue, "my.toml:15:8"));
}

#[test]
fn errors_render_as_file_line_col() {
    let err = parse(&with_when("credential.nosuch")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my.toml:5:20: `credential` has no fact `nosuch`"
    );
    assert_eq!(err.invalid_kind(), Some(InvalidKind::UnknownFact));
}

// ---------------------------------------------------------------- directories

#[test]
fn duplicate_ids_in_one_directory_are_an_error() {
    let dir = dir_with(&[("a.toml", BASE), ("b.toml", BASE)]);
    let err = RuleSet::load(&[dir.path().to_owned()]).unwrap_err();
    assert_eq!(err.invalid_kind(), Some(InvalidKind::DuplicateId));
    let b = dir.path().join("b.toml");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:1:1: duplicate rule id `my-rule`", b.display())),
        "{text}"
    );
    assert!(text.contains("a.toml"), "{text}");
}

#[test]
fn duplicate_ids_across_user_directories_are_an_error() {
    let one = dir_with(&[("a.toml", BASE)]);
    let two = dir_with(&[("a.toml", BASE)]);
    let err = RuleSet::load(&[one.path().to_owned(), two.path().to_owned()]).unwrap_err();
    assert_eq!(err.invalid_kind(), Some(InvalidKind::DuplicateId));
    // The same directory twice is read once.
    let set = RuleSet::load(&[one.path().to_owned(), one.path().join(".")]).unwrap();
    assert_eq!(set.rules().len(), 14);
}

#[test]
fn a_user_rule_overrides_the_builtin_with_its_id() {
    let text = with("id =", "id = \"desired-count-changed\"")
        .replace("severity = \"block\"", "severity = \"info\"")
        .replace("each = \"credentials\"", "each = \"services\"")
        .replace(
            "when = 'credential.live'",
            "when = 'service.desired_after > 10'",
        )
        .replace("{consumers}", "{desired_after}");
    let dir = dir_with(&[
        ("scale.toml", &text),
        ("mine.toml", BASE),
        ("notes.txt", "not a rule"),
    ]);
    let set = RuleSet::load(&[dir.path().to_owned()]).unwrap();
    assert_eq!(set.rules().len(), 14);
    let ids: Vec<&str> = set.rules().iter().map(|r| r.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let r = set.get("desired-count-changed").unwrap();
    assert_eq!(r.severity, Severity::Info);
    assert_eq!(
        r.source,
        dir.path().join("scale.toml").display().to_string()
    );
    assert_eq!(
        r.overrides.as_deref(),
        Some("built-in:rules/desired-count-changed.toml")
    );
    assert!(!r.is_builtin());
    assert!(set.get("my-rule").unwrap().overrides.is_none());

    // The override is what runs.
    let mut svc = healthy_service(STAGE_SEARCH);
    svc.desired_after = 3;
    let facts = Facts {
        services: vec![svc],
        ..Default::default()
    };
    assert!(set.evaluate(&facts).unwrap().is_empty());
    assert_eq!(
        RuleSet::builtin().unwrap().evaluate(&facts).unwrap().len(),
        1
    );
}

#[test]
fn a_missing_directory_is_an_error() {
    let err = RuleSet::load(&["/nonexistent/opsguard-rules".into()]).unwrap_err();
    assert!(matches!(err, RuleError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/opsguard-rules"));
}

// ---------------------------------------------------------------- tests and evaluation

#[test]
fn run_tests_reports_failures_errors_and_untested_rules() {
    let failing = format!(
        "{}\n[[test]]\nname = \"fires when live\"\nexpect = \"fire\"\n[test.facts]\nlive = false\n",
        with("id =", "id = \"failing\"")
    );
    let erroring = format!(
        "{}\n[[test]]\nname = \"a number\"\nexpect = \"pass\"\n[test.facts]\nconsumers = [\"abc\"]\n",
        with("id =", "id = \"erroring\"").replace(
            "when = 'credential.live'",
            "when = 'size(credential.consumers) > 0 && int(credential.consumers[0]) > 0'"
        )
    );
    let dir = dir_with(&[
        ("untested.toml", BASE),
        ("failing.toml", &failing),
        ("erroring.toml", &erroring),
    ]);
    let set = RuleSet::load(&[dir.path().to_owned()]).unwrap();
    let run = set.run_tests();
    assert_eq!(run.untested, vec!["my-rule"]);
    let mine: Vec<&TestResult> = run
        .results
        .iter()
        .filter(|r| r.rule == "failing" || r.rule == "erroring")
        .collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].rule, "erroring");
    assert!(
        mine[0].got.as_ref().unwrap_err().contains("int"),
        "{:?}",
        mine[0].got
    );
    assert_eq!(mine[1].got, Ok(Expect::Pass));
    assert_eq!(mine[1].expected, Expect::Fire);
    assert_eq!(
        mine[1].location,
        format!("{}:10:1", dir.path().join("failing.toml").display())
    );
    assert_eq!(run.failed(), 2);
    assert_eq!(run.passed(), run.results.len() - 2);
}

/// A condition that fails on real facts is an error naming the rule and
/// the item, never a quiet "did not fire".
#[test]
fn an_evaluation_error_is_an_error() {
    let rule = parse(&with_when(
        "size(credential.consumers) > 0 && int(credential.consumers[0]) > 0",
    ))
    .unwrap();
    let set = RuleSet { rules: vec![rule] };
    let facts = Facts {
        credentials: vec![quiet_credential("search", &[PROD_SEARCH])],
        ..Default::default()
    };
    let err = set.evaluate(&facts).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "my.toml:5:9: rule `my-rule` cannot be evaluated on credential `search`: "
        ),
        "{text}"
    );
}

// ---------------------------------------------------------------- waivers

fn waiver(rule: &str, target: &str) -> Waiver {
    Waiver {
        rule: rule.into(),
        target: target.into(),
        reason: "until ticket 123".into(),
        expires: time::macros::date!(2027 - 01 - 31),
        location: "opsguard.toml:30:1".into(),
    }
}

#[test]
fn a_waiver_for_an_unknown_rule_is_an_error() {
    let set = RuleSet::builtin().unwrap();
    set.check_waivers(&[waiver("shared-credential-across-environments", "search")])
        .unwrap();
    let err = set
        .check_waivers(&[waiver("shared-credentials-across-environments", "search")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "opsguard.toml:30:1: waiver names rule `shared-credentials-across-environments`, which is not a rule in force"
    );
    let RuleError::UnknownWaiverRule { help, .. } = err else {
        panic!()
    };
    assert!(
        help.starts_with("did you mean `shared-credential-across-environments`?"),
        "{help}"
    );
}

#[test]
fn a_waiver_marks_only_its_rule_and_target() {
    let mut facts = Facts::default();
    facts
        .credentials
        .push(rotated_not_redeployed(quiet_credential(
            "search",
            &[PROD_SEARCH, STAGE_SEARCH],
        )));
    facts.credentials.push(quiet_credential(
        "items",
        &[PROD_ITEMS, "c/stage-items-api"],
    ));
    let findings = RuleSet::builtin().unwrap().evaluate(&facts).unwrap();
    let waived = apply_waivers(
        findings,
        &[waiver("shared-credential-across-environments", "search")],
    );
    let marks: Vec<(&str, &str, bool)> = waived
        .iter()
        .map(|f| (f.rule.as_str(), f.target.as_str(), f.waiver.is_some()))
        .collect();
    assert_eq!(
        marks,
        vec![
            ("live-credential-broken", "search", false),
            ("secret-rotated-without-redeploy", "search", false),
            ("shared-credential-across-environments", "items", false),
            ("shared-credential-across-environments", "search", true),
        ]
    );
    assert_eq!(
        waived[3].waiver.as_ref().unwrap().reason,
        "until ticket 123"
    );
}

/// Every fact of every kind reaches CEL, with its value.
#[test]
fn every_fact_reaches_the_condition() {
    for each in [
        Each::Credentials,
        Each::Services,
        Each::Secrets,
        Each::Changes,
    ] {
        let schema = schema::Schema::of(each);
        let when = schema
            .fields
            .iter()
            .map(|(f, _)| format!("has({}.{f})", each.var()))
            .collect::<Vec<_>>()
            .join(" && ");
        let text = with("each =", &format!("each = \"{each}\""))
            .replace("when = 'credential.live'", &format!("when = '{when}'"))
            .replace("{consumers}", "{target}");
        let rule = parse(&text).unwrap_or_else(|e| panic!("{each}: {e}"));
        let fired = match each {
            Each::Credentials => rule.test_eval(&CredentialFact::default()),
            Each::Services => rule.test_eval(&ServiceFact::default()),
            Each::Secrets => rule.test_eval(&SecretFact::default()),
            Each::Changes => rule.test_eval(&crate::facts::change::ChangeFact::default()),
        };
        assert_eq!(fired, Ok(true), "{each}");
    }
    let rule = parse(&with_when(
        "credential.id == \"search\" && credential.running_tasks_after == 2 \
         && credential.consumers == [\"a/b\", \"a/c\"] && credential.live \
         && !credential.pinned && credential.roles_lost == []",
    ))
    .unwrap();
    let c = CredentialFact {
        id: "search".into(),
        running_tasks_after: 2,
        consumers: vec!["a/b".into(), "a/c".into()],
        live: true,
        ..Default::default()
    };
    assert_eq!(rule.test_eval(&c), Ok(true));
}
