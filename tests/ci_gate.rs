//! opsguard as a CI gate, through the real binary on the 2021 incident
//! replica: GitHub Actions annotations and step summary for `run`, `check`
//! and `diff`, stdout still valid JSON beside them, and a JUnit file that an
//! independent XML parser reads as one test case per finding.

mod common;

use common::*;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use serde_json::Value;
use std::path::Path;

/// What follows the wrapped command's own output on stdout: the report,
/// from the line that opens it.
fn report_part<'a>(stdout: &'a str, opening: &str) -> &'a str {
    let at = stdout
        .find(opening)
        .unwrap_or_else(|| panic!("no {opening:?} on stdout:\n{stdout}"));
    &stdout[at..]
}

/// The workflow commands opsguard printed (lines starting with `::`).
fn annotations(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("::")).collect()
}

/// The annotation GitHub would show for a violation of the JSON report.
fn expected_annotation(v: &Value) -> String {
    let level = match v["severity"].as_str().unwrap() {
        "block" => "error",
        "warn" => "warning",
        _ => "notice",
    };
    let consumers: Vec<&str> = v["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let mut msg = format!(
        "{}: {}",
        v["target"].as_str().unwrap(),
        v["message"].as_str().unwrap()
    );
    // The consumers, unless the message names them all already.
    if !consumers.iter().all(|c| msg.contains(c)) {
        msg.push_str(&format!(" (consumers: {})", consumers.join(", ")));
    }
    format!(
        "::{level} title=opsguard {}::{}",
        v["rule"].as_str().unwrap(),
        msg.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    )
}

fn assert_annotated(out: &Output, report: &Value) {
    let got = annotations(&out.stderr);
    let want: Vec<String> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(expected_annotation)
        .collect();
    assert!(!want.is_empty(), "the scenario has findings: {report:#}");
    assert_eq!(got, want, "stderr:\n{}", out.stderr);
}

fn gha(summary: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
    ]
}

fn opsguard(env: &Env) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
}

#[tokio::test]
async fn run_annotates_every_finding_appends_the_summary_and_keeps_stdout_json() {
    let env = setup().await;
    let summary = env.dir.path().join("step-summary.md");
    std::fs::write(&summary, "# Build\n\nearlier step\n").unwrap();
    let vars: Vec<(&str, String)> = gha(&summary);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (out, report, text) = guarded_with(
        &env,
        "block",
        "create_elastic_users.py",
        &vars,
        &["--format", "json"],
    );
    out.assert_code(11);
    // stdout: the script's own lines, then the report, valid JSON to its end.
    let json = report_part(&out.stdout, "\n{\n");
    let stdout: Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("the report on stdout is not JSON ({e}):\n{json}"));
    assert_eq!(stdout["violations"], report["violations"]);
    assert!(
        !out.stdout.contains("\n::"),
        "no workflow command on stdout"
    );

    assert_annotated(&out, &report);
    let got = annotations(&out.stderr);
    let search = got
        .iter()
        .find(|l| {
            l.starts_with(
                "::error title=opsguard live-credential-broken::search: credential search",
            )
        })
        .unwrap_or_else(|| panic!("{got:#?}"));
    assert!(
        search.contains("catalogue-api-2021-04-26/prod-search-api"),
        "{search}"
    );
    assert_eq!(
        got.iter().filter(|l| l.starts_with("::warning ")).count(),
        2,
        "the shared users are warnings: {got:#?}"
    );

    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("# Build\n\nearlier step\n"),
        "appended, not replaced:\n{md}"
    );
    assert!(md.contains("## opsguard: BLOCKED"), "{md}");
    for (rule, target) in fired(&report) {
        assert!(
            md.contains(&format!("`{rule}` | `{target}`")),
            "{rule} {target}:\n{md}"
        );
    }
    assert!(
        md.contains("`catalogue-api-2021-04-26/prod-search-api`"),
        "{md}"
    );
    assert_nothing_leaked(&env, &out, &text, &[]);
    assert_no_leak_named(&[("step summary", &md)], &env.replica.secret_values);
}

#[tokio::test]
async fn check_and_diff_annotate_and_nothing_is_annotated_outside_github() {
    let env = setup().await;
    let summary = env.dir.path().join("summary.md");
    let before = env.dir.path().join("before.json");
    let after = env.dir.path().join("after.json");

    // Outside GitHub Actions: no workflow command, no summary, whatever is set.
    let plain = opsguard(&env)
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["check", "--config"])
        .arg(&env.config)
        .output();
    plain.assert_code(0);
    assert!(annotations(&plain.stderr).is_empty(), "{}", plain.stderr);
    assert!(!summary.exists());

    // A healthy replica: only the shared users' warnings, exit 0.
    let ok = opsguard(&env)
        .envs(gha(&summary))
        .args(["check", "--format", "json", "--config"])
        .arg(&env.config)
        .output();
    ok.assert_code(0);
    let report: Value = serde_json::from_str(&ok.stdout).expect("stdout stays JSON");
    assert_annotated(&ok, &report);
    assert!(annotations(&ok.stderr)
        .iter()
        .all(|l| l.starts_with("::warning ")));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("shared-credential-across-environments"), "{md}");

    opsguard(&env)
        .args(["snapshot", "-o"])
        .arg(&before)
        .arg("--config")
        .arg(&env.config)
        .output()
        .assert_code(0);
    unguarded(&env, "scenarios/rotate_es_only.py");
    opsguard(&env)
        .args(["snapshot", "-o"])
        .arg(&after)
        .arg("--config")
        .arg(&env.config)
        .output()
        .assert_code(0);

    let broken = opsguard(&env)
        .envs(gha(&summary))
        .args(["check", "--format", "json", "--config"])
        .arg(&env.config)
        .output();
    broken.assert_code(11);
    let report: Value = serde_json::from_str(&broken.stdout).expect("stdout stays JSON");
    assert_annotated(&broken, &report);
    assert!(
        annotations(&broken.stderr)
            .iter()
            .any(|l| l.starts_with("::error title=opsguard secret-out-of-sync::search: ")),
        "{}",
        broken.stderr
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(
        md.matches("## opsguard:").count(),
        2,
        "one summary a step:\n{md}"
    );

    let diff = opsguard(&env)
        .envs(gha(&summary))
        .args(["diff", "--format", "json"])
        .arg(&before)
        .arg(&after)
        .output();
    diff.assert_code(11);
    let report: Value = serde_json::from_str(&diff.stdout).expect("stdout stays JSON");
    assert_eq!(report["subcommand"], "diff");
    assert_annotated(&diff, &report);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("## opsguard:").count(), 3, "{md}");

    let mut secrets = env.replica.secret_values.clone();
    secrets.extend(env.replica.passwords.values().cloned());
    for (name, o) in [
        ("plain", &plain),
        ("ok", &ok),
        ("broken", &broken),
        ("diff", &diff),
    ] {
        assert_no_leak_named(&[(name, &o.stdout), (name, &o.stderr)], &secrets);
    }
    assert_no_leak_named(&[("step summary", &md)], &secrets);
}

/// `python3` with the standard library's XML parser, as CI reporters read
/// JUnit: `[{name, classname, failure: {type, message} | null}]` and the
/// suite's counts.
fn parse_junit(xml: &str) -> Value {
    const PARSE: &str = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
out = {"suites": []}
for s in suites:
    cases = []
    for c in s.findall("testcase"):
        f = c.find("failure")
        cases.append({
            "name": c.get("name"),
            "classname": c.get("classname"),
            "failure": None if f is None else {"type": f.get("type"), "message": f.get("message")},
        })
    out["suites"].append({"tests": s.get("tests"), "failures": s.get("failures"), "cases": cases})
print(json.dumps(out))
"#;
    let out = Cmd::new(python()).args(["-c", PARSE]).stdin(xml).output();
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

#[tokio::test]
async fn junit_of_a_real_run_has_one_case_per_finding_and_fails_the_blocks() {
    let env = setup().await;
    let (out, report, _) = guarded_with(
        &env,
        "block",
        "create_elastic_users.py",
        &[],
        &["--format", "junit"],
    );
    out.assert_code(11);
    let parsed = parse_junit(report_part(&out.stdout, "<?xml"));
    let suites = parsed["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 1, "{parsed:#}");
    let cases = suites[0]["cases"].as_array().unwrap();

    let violations = report["violations"].as_array().unwrap();
    let mut names: Vec<(String, String)> = cases
        .iter()
        .map(|c| {
            let (rule, target) = c["name"].as_str().unwrap().split_once(": ").unwrap();
            assert_eq!(c["classname"], rule);
            (rule.to_owned(), target.to_owned())
        })
        .collect();
    assert_eq!(
        cases.len(),
        violations.len(),
        "one case per rule × target: {parsed:#}"
    );
    names.sort();
    assert_eq!(names, fired(&report));

    let blocks = violations
        .iter()
        .filter(|v| v["severity"] == "block")
        .count();
    assert!(blocks > 0);
    assert_eq!(suites[0]["tests"], violations.len().to_string());
    assert_eq!(suites[0]["failures"], blocks.to_string());
    for v in violations {
        let case = cases
            .iter()
            .find(|c| {
                c["name"]
                    == format!(
                        "{}: {}",
                        v["rule"].as_str().unwrap(),
                        v["target"].as_str().unwrap()
                    )
            })
            .unwrap();
        if v["severity"] == "block" {
            assert_eq!(case["failure"]["type"], v["rule"], "{case:#}");
            assert_eq!(case["failure"]["message"], v["message"], "{case:#}");
        } else {
            assert!(
                case["failure"].is_null(),
                "a warning does not fail: {case:#}"
            );
        }
    }
}

#[test]
fn the_example_workflow_installs_gates_plans_and_provisions_under_opsguard() {
    let path = opsguard_testkit::ministack::workspace_root().join("examples/ci/github-actions.yml");
    let out = Cmd::new(python())
        .args([
            "-c",
            // PyYAML comes with ministack; YAML 1.1 reads the key `on` as true.
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), default=str))",
        ])
        .arg(&path)
        .output();
    out.assert_code(0);
    let wf: Value = serde_json::from_str(&out.stdout).unwrap();
    let jobs = wf["jobs"].as_object().unwrap();
    let runs = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_owned))
            .collect()
    };
    let uses = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["uses"].as_str().map(str::to_owned))
            .collect()
    };
    // opsguard is installed from its own repository, not built from the checkout.
    assert!(
        runs("install")
            .iter()
            .any(|r| r.starts_with("cargo install --locked --git ")),
        "{:#?}",
        runs("install")
    );
    assert!(!runs("install").iter().any(|r| r.contains("cargo build")));
    assert_eq!(jobs["gate"]["needs"], "install");
    let gate = runs("gate");
    assert!(gate
        .iter()
        .any(|r| r.starts_with("opsguard check")
            && r.contains("--format sarif --output check.sarif")));
    // The Terraform flow: plan, show -json, opsguard plan, SARIF uploaded.
    assert!(gate
        .iter()
        .any(|r| r.contains("terraform plan") && r.contains("terraform show -json tfplan")));
    assert!(gate.iter().any(|r| r.starts_with("opsguard plan ")
        && r.contains("--format sarif --output plan.sarif")
        && r.ends_with("plan.json")));
    assert!(uses("gate")
        .iter()
        .any(|u| u.starts_with("github/codeql-action/upload-sarif@")));
    assert_eq!(wf["permissions"]["security-events"], "write");
    assert_eq!(jobs["provision"]["needs"], "gate");
    let provision = runs("provision");
    // --output instead of redirecting the script: its stdout stays its own.
    assert!(
        provision.iter().any(|r| r.starts_with(
            "opsguard run --on-violation rollback --format junit --output junit.xml --report report.json -- "
        ) && r.contains("./scripts/provision.sh")
            && !r.contains('>')),
        "{provision:#?}"
    );
    let steps = jobs["provision"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        && s["with"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("report.json"))
        && s["if"] == "always()"));
    assert!(steps
        .iter()
        .any(|s| s["with"]["report_paths"] == "junit.xml" && s["if"] == "always()"));
}
