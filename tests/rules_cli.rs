//! `opsguard rules list | test [DIR]` through the binary: what a person
//! sees, and the exit codes scripts branch on (0 ok, 1 a test failed, 2 a
//! rule or waiver does not load). Offline: no emulator, no ES double.

use opsguard_testkit::{Cmd, Output};
use std::path::Path;

/// A user rule (not in the built-in pack), one file shared by the unit
/// tests in src/cli/rules.rs and these.
const RULE: &str = include_str!("fixtures/secret-scheduled-for-deletion.toml");

const CONFIG: &str = r#"
[elasticsearch]
url = "https://es.example:9243"
username = "elastic"
password_env = "OPSGUARD_ES_PASSWORD"

[ecs]
clusters = ["catalogue"]

[rules]
paths = ["my-rules"]
"#;

fn opsguard(dir: &Path) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn last_line(out: &Output) -> &str {
    out.stdout.lines().last().unwrap_or("")
}

#[test]
fn list_without_a_config_shows_the_builtin_pack() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{}", out.stdout);
    for id in [
        "plan-credential-replaced",
        "plan-password-changed",
        "plan-secret-rotated-without-redeploy",
        "plan-runs-provisioner",
        "plan-desired-count-changed",
        "live-credential-broken",
        "secret-rotated-without-redeploy",
        "secret-out-of-sync",
        "credential-in-use-removed",
        "credential-in-use-lost-roles",
        "service-degraded",
        "desired-count-changed",
        "shared-credential-across-environments",
    ] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", out.stdout));
        assert!(row.contains(" built-in "), "{row}");
    }
}

#[test]
fn test_runs_the_builtin_tests() {
    let dir = tempfile::tempdir().unwrap();
    let out = opsguard(dir.path()).args(["rules", "test"]).output();
    out.assert_code(0);
    let n = out.stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(n >= 24, "{}", out.stdout);
    assert_eq!(last_line(&out), format!("{n} passed, 0 failed"));
}

#[test]
fn test_dir_with_a_failing_test_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "extra/failing.toml",
        &RULE.replace("expect = \"fire\"", "expect = \"pass\""),
    );
    let out = opsguard(dir.path())
        .args(["rules", "test", "extra"])
        .output();
    out.assert_code(1);
    assert!(
        out.stdout.contains(
            "FAILED  secret-scheduled-for-deletion: scheduled (extra/failing.toml:10:1): expected pass, got fire"
        ),
        "{}",
        out.stdout
    );
    assert!(
        last_line(&out).ends_with(" passed, 1 failed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_rule_that_does_not_load_exits_2_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "extra/bad.toml",
        &RULE.replace("secret.live &&", "secret.alive &&"),
    );
    let out = opsguard(dir.path())
        .args(["rules", "test", "extra"])
        .output();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("extra/bad.toml:5:16: `secret` has no fact `alive`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `secret.live`?"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn the_config_adds_rule_paths_and_its_waivers_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "my-rules/mine.toml", RULE);
    write(
        dir.path(),
        "my-rules/scale.toml",
        &RULE.replace(
            "id = \"secret-scheduled-for-deletion\"",
            "id = \"desired-count-changed\"",
        ),
    );
    write(dir.path(), "opsguard.toml", CONFIG);
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(0);
    assert_eq!(out.stdout.lines().count(), 15, "{}", out.stdout);
    assert!(
        out.stdout.contains("(overrides built-in)"),
        "{}",
        out.stdout
    );
    let out = opsguard(dir.path()).args(["rules", "test"]).output();
    out.assert_code(0);

    write(
        dir.path(),
        "opsguard.toml",
        &format!(
            "{CONFIG}\n[[waivers]]\nrule = \"shared-credential\"\ntarget = \"search\"\nreason = \"ticket 123\"\nexpires = \"2099-01-31\"\n"
        ),
    );
    let out = opsguard(dir.path()).args(["rules", "list"]).output();
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("waiver names rule `shared-credential`, which is not a rule in force"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("opsguard.toml:"), "{}", out.stderr);
}

/// A config with a user rule, a user rule replacing a built-in, and two
/// waivers: what `rules list` and `rules show` have to tell apart.
fn configured(dir: &Path) {
    write(dir, "my-rules/mine.toml", RULE);
    write(
        dir,
        "my-rules/scale.toml",
        &RULE.replace(
            "id = \"secret-scheduled-for-deletion\"",
            "id = \"desired-count-changed\"",
        ),
    );
    write(
        dir,
        "opsguard.toml",
        &format!(
            "{CONFIG}
[[waivers]]
rule = \"live-credential-broken\"
target = \"search\"
reason = \"ticket 123: rotation in progress\"
expires = \"2099-01-31\"

[[waivers]]
rule = \"secret-scheduled-for-deletion\"
target = \"old/secret\"
reason = \"being retired\"
expires = \"2099-02-28\"
"
        ),
    );
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", out.stdout))
}

#[test]
fn list_json_is_the_documented_document_and_says_what_the_table_says() {
    use opsguard_testkit::schema::{assert_conforms, violations, Schema};
    let dir = tempfile::tempdir().unwrap();
    configured(dir.path());
    let table = opsguard(dir.path()).args(["rules", "list"]).output();
    table.assert_code(0);
    let out = opsguard(dir.path())
        .args(["rules", "list", "--format", "json"])
        .output();
    out.assert_code(0);
    let doc = json(&out);
    assert_conforms(Schema::Rules, &doc);
    assert_eq!(doc["schema"], "opsguard.rules/v1");
    // The same rules as the table, in the same order.
    let ids: Vec<&str> = doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let rows: Vec<&str> = table
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, rows);
    let rule = |id: &str| {
        doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    let lcb = rule("live-credential-broken");
    assert_eq!(lcb["source"], "built-in");
    assert_eq!(lcb["file"], "rules/live-credential-broken.toml");
    assert_eq!(lcb["overrides"], serde_json::Value::Null);
    assert_eq!(lcb["severity"], "block");
    assert_eq!(lcb["remedies"], serde_json::json!(["rollback", "redeploy"]));
    assert_eq!(lcb["waivers"][0]["target"], "search");
    assert_eq!(lcb["waivers"][0]["expires"], "2099-01-31");
    // Every test case of the rule file is there, with its expectation.
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/live-credential-broken.toml"),
    )
    .unwrap();
    assert_eq!(
        lcb["tests"].as_array().unwrap().len(),
        file.matches("[[test]]").count()
    );
    let scale = rule("desired-count-changed");
    assert_eq!(scale["source"], scale["file"]);
    assert!(scale["file"]
        .as_str()
        .unwrap()
        .ends_with("my-rules/scale.toml"));
    assert_eq!(scale["overrides"], "rules/desired-count-changed.toml");
    assert_eq!(scale["each"], "secrets");
    let waivers = doc["waivers"].as_array().unwrap();
    assert_eq!(waivers.len(), 2);
    assert!(waivers[1]["location"]
        .as_str()
        .unwrap()
        .contains("opsguard.toml:"));
    // The schema is a real check: a renamed field breaks it.
    let mut renamed = doc.clone();
    let r = renamed["rules"][0].as_object_mut().unwrap();
    let sev = r.remove("severity").unwrap();
    r.insert("level".into(), sev);
    assert!(!violations(Schema::Rules, &renamed).is_empty());
}

#[test]
fn show_tells_everything_about_one_rule() {
    let dir = tempfile::tempdir().unwrap();
    configured(dir.path());
    let out = opsguard(dir.path())
        .args(["rules", "show", "live-credential-broken"])
        .output();
    out.assert_code(0);
    let text = &out.stdout;
    let file = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/live-credential-broken.toml"),
    )
    .unwrap();
    let parsed: toml::Table = toml::from_str(&file).unwrap();
    for key in ["summary", "message"] {
        let v = parsed[key].as_str().unwrap();
        assert!(text.contains(v), "{key} missing:\n{text}");
    }
    for line in parsed["when"].as_str().unwrap().trim().lines() {
        assert!(
            text.contains(line.trim()),
            "condition line {line:?}:\n{text}"
        );
    }
    assert!(text.contains("the outage of 2021-07-27"), "{text}");
    for test in parsed["test"].as_array().unwrap() {
        let line = format!(
            "{:<5} {}",
            test["expect"].as_str().unwrap(),
            test["name"].as_str().unwrap()
        );
        assert!(text.contains(&line), "{line}:\n{text}");
    }
    assert!(text.contains("remedies   rollback, redeploy"), "{text}");
    assert!(
        text.contains("search  expires 2099-01-31  ticket 123: rotation in progress"),
        "{text}"
    );
    assert!(
        text.contains("source     built-in (rules/live-credential-broken.toml)"),
        "{text}"
    );

    // A user rule that replaces a built-in says so, with its own file.
    let out = opsguard(dir.path())
        .args(["rules", "show", "desired-count-changed"])
        .output();
    out.assert_code(0);
    assert!(
        out.stdout.contains(
            "overrides  yes: this file replaces the built-in rules/desired-count-changed.toml"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("my-rules/scale.toml"), "{}", out.stdout);
    assert!(out.stdout.contains("Waivers (0)"), "{}", out.stdout);
}

#[test]
fn show_json_is_the_same_document_with_one_rule_and_its_waivers() {
    use opsguard_testkit::schema::{assert_conforms, Schema};
    let dir = tempfile::tempdir().unwrap();
    configured(dir.path());
    let out = opsguard(dir.path())
        .args([
            "rules",
            "show",
            "secret-scheduled-for-deletion",
            "--format",
            "json",
        ])
        .output();
    out.assert_code(0);
    let doc = json(&out);
    assert_conforms(Schema::Rules, &doc);
    assert_eq!(doc["rules"].as_array().unwrap().len(), 1);
    let rule = &doc["rules"][0];
    assert_eq!(rule["id"], "secret-scheduled-for-deletion");
    assert_eq!(
        rule["when"],
        "secret.live && secret.deletion_scheduled_after"
    );
    assert!(rule["when_location"]
        .as_str()
        .unwrap()
        .ends_with("my-rules/mine.toml:5:9"));
    assert_eq!(
        rule["tests"],
        serde_json::json!([{"name": "scheduled", "expect": "fire",
            "location": format!("{}:10:1", rule["file"].as_str().unwrap())}])
    );
    // Only this rule's waiver, top level and in the rule.
    assert_eq!(doc["waivers"].as_array().unwrap().len(), 1);
    assert_eq!(doc["waivers"][0]["target"], "old/secret");
    assert_eq!(rule["waivers"], doc["waivers"]);
}

#[test]
fn show_of_an_unknown_rule_exits_2_and_names_the_nearest() {
    let dir = tempfile::tempdir().unwrap();
    for (asked, near) in [
        ("live-credential-brokn", "`live-credential-broken`"),
        ("secret-rotated", "`secret-rotated-without-redeploy`"),
    ] {
        let out = opsguard(dir.path()).args(["rules", "show", asked]).output();
        out.assert_code(2);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("no rule `{asked}` is in force")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("did you mean {near}")),
            "{}",
            out.stderr
        );
    }
    let out = opsguard(dir.path()).args(["rules", "show", "zzz"]).output();
    out.assert_code(2);
    assert!(!out.stderr.contains("did you mean"), "{}", out.stderr);
    assert!(out.stderr.contains("opsguard rules list"), "{}", out.stderr);
}

#[test]
fn human_output_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let list = opsguard(dir.path()).args(["rules", "list"]).output();
    list.assert_code(0);
    insta::assert_snapshot!("rules_list_human", list.stdout);
    let show = opsguard(dir.path())
        .args(["rules", "show", "live-credential-broken"])
        .output();
    show.assert_code(0);
    insta::assert_snapshot!("rules_show_live_credential_broken_human", show.stdout);
}
