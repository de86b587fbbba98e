//! Remedies end to end: every violating scenario in rollback and in redeploy
//! mode, each ending with proof from the live state, and a remedy that fails
//! part-way.

mod common;

use common::*;
use opsguard_testkit::Cmd;
use serde_json::Value;

fn actions(report: &Value) -> Vec<(String, String, bool)> {
    report["remediation"]["actions"]
        .as_array()
        .unwrap_or_else(|| panic!("no remediation in {report:#}"))
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["target"].as_str().unwrap().to_owned(),
                a["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn rolled_back(script_rel: &str) -> (Env, Value) {
    let env = setup().await;
    let (out, report, text) = guarded(&env, "rollback", script_rel);
    out.assert_code(10);
    assert_eq!(report["outcome"], "remediated", "{report:#}");
    assert_eq!(report["remediation"]["verified"], true);
    assert!(actions(&report).iter().all(|a| a.2), "{report:#}");
    assert_nothing_leaked(&env, &out, &text, &[]);
    assert_documented(&env, &report);
    (env, report)
}

#[tokio::test]
async fn rollback_undoes_the_2021_script_and_proves_it() {
    let (env, report) = rolled_back("create_elastic_users.py").await;
    assert_before_state(&env, &["search", "items"]).await;
    let acts = actions(&report);
    for user in ["search", "items"] {
        assert!(
            acts.contains(&("es-password".into(), user.into(), true)),
            "{acts:?}"
        );
    }
    // Exactly what the violations name: the unconsumed users keep their new passwords.
    for user in ["diff_tool", "replication_manager", "internal_model_tool"] {
        assert!(
            !acts.iter().any(|a| a.1.contains(user)),
            "{user} touched: {acts:?}"
        );
        assert!(!authenticates(&env, user, env.replica.password(user)).await);
    }
    // The journal says what was done, with no values in it.
    let run = only_run_id(&env);
    let journal = std::fs::read_to_string(
        env.dir
            .path()
            .join(".opsguard/runs")
            .join(&run)
            .join("journal.jsonl"),
    )
    .unwrap();
    assert!(journal.contains("\"event\":\"plan\""), "{journal}");
    assert_eq!(journal.matches("\"event\":\"done\"").count(), acts.len());
    assert!(journal.contains("\"exit_code\":10"));
}

#[tokio::test]
async fn rollback_of_an_es_only_change() {
    let (env, _) = rolled_back("scenarios/rotate_es_only.py").await;
    assert_before_state(&env, &["search"]).await;
}

#[tokio::test]
async fn rollback_of_a_secret_only_change() {
    let (env, report) = rolled_back("scenarios/rotate_secret_only.py").await;
    assert_before_state(&env, &["search"]).await;
    // Elasticsearch was right all along: its password is not touched.
    assert!(
        !actions(&report).iter().any(|a| a.0 == "es-password"),
        "{report:#}"
    );
}

#[tokio::test]
async fn rollback_recreates_a_deleted_user() {
    let (env, report) = rolled_back("scenarios/delete_search_user.py").await;
    assert_before_state(&env, &["search"]).await;
    assert!(actions(&report).contains(&("es-user-recreate".into(), "search".into(), true)));
}

#[tokio::test]
async fn rollback_re_enables_a_disabled_user() {
    let (env, _) = rolled_back("scenarios/disable_search_user.py").await;
    assert_before_state(&env, &["search"]).await;
}

/// Seed the API-key consumer and add its credential to the config.
fn with_api_key(env: &Env) {
    unguarded(env, "scenarios/seed_api_key.py");
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(
        "\n[[credentials]]\nkind = \"elasticsearch-api-key\"\napi_key_env = \"es_apikey\"\n",
    );
    std::fs::write(&env.config, config).unwrap();
}

#[tokio::test]
async fn an_invalidated_api_key_cannot_be_rolled_back_and_says_so() {
    let env = setup().await;
    with_api_key(&env);
    let (out, report, _) = guarded(&env, "rollback", "scenarios/rotate_api_key.py");
    out.assert_code(12);
    assert_eq!(report["outcome"], "remediation_failed");
    let notes = report["notes"].to_string();
    assert!(notes.contains("cannot be revalidated"), "{notes}");
    assert!(notes.contains("--on-violation redeploy"), "{notes}");
}

#[tokio::test]
async fn the_api_key_variant_redeploys_when_the_config_allows_it() {
    let env = setup().await;
    with_api_key(&env);
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str("\n[remedies]\nredeploy_fallback = true\nstable_timeout_seconds = 60\n");
    std::fs::write(&env.config, config).unwrap();
    let (out, report, _) = guarded(&env, "rollback", "scenarios/rotate_api_key.py");
    out.assert_code(10);
    assert!(actions(&report).contains(&(
        "redeploy".into(),
        "catalogue-api-2021-04-26/prod-search-api-key".into(),
        true
    )));
}

/// Every running task of the consumers of `user` started after `since`.
async fn assert_redeployed(env: &Env, user: &str, since: i64) {
    let ecs = aws_sdk_ecs::Client::new(&env.replica.account.sdk_config().await);
    for svc in env.replica.consumers_of(user) {
        let arns = ecs
            .list_tasks()
            .cluster(&env.replica.cluster)
            .service_name(&svc.name)
            .send()
            .await
            .unwrap();
        let tasks = ecs
            .describe_tasks()
            .cluster(&env.replica.cluster)
            .set_tasks(Some(arns.task_arns().to_vec()))
            .send()
            .await
            .unwrap();
        let running: Vec<_> = tasks
            .tasks()
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .collect();
        assert_eq!(running.len() as i32, svc.desired_count, "{}", svc.name);
        for t in running {
            let started = t.started_at().unwrap().secs();
            assert!(
                started >= since,
                "{} task started {started}, before the command ({since})",
                svc.name
            );
        }
    }
}

#[tokio::test]
async fn redeploy_rolls_the_2021_script_forward() {
    let env = setup().await;
    let since = time::OffsetDateTime::now_utc().unix_timestamp();
    let (out, report, text) = guarded(&env, "redeploy", "create_elastic_users.py");
    out.assert_code(10);
    assert_eq!(report["remediation"]["mode"], "redeploy");
    let acts = actions(&report);
    let mut redeployed: Vec<String> = acts
        .iter()
        .filter(|a| a.0 == "redeploy")
        .map(|a| a.1.clone())
        .collect();
    redeployed.sort();
    let mut want = env.replica.consumer_refs("search");
    want.extend(env.replica.consumer_refs("items"));
    want.sort();
    assert_eq!(redeployed, want);
    for user in ["search", "items"] {
        assert_redeployed(&env, user, since).await;
    }
    // The new values are the ones in use now, and they authenticate.
    let snap = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .output();
    snap.assert_code(0);
    let snap: Value = serde_json::from_str(&snap.stdout).unwrap();
    for c in snap["credentials"].as_array().unwrap() {
        assert_eq!(c["probe"]["result"], "authenticated", "{c:#}");
    }
    assert!(
        !authenticates(&env, "search", env.replica.password("search")).await,
        "rolled forward, not back"
    );
    assert_nothing_leaked(&env, &out, &text, &[]);
}

#[tokio::test]
async fn redeploy_refuses_to_roll_out_a_value_that_does_not_authenticate() {
    let env = setup().await;
    let (out, report, _) = guarded(&env, "redeploy", "scenarios/rotate_secret_only.py");
    out.assert_code(12);
    let notes = report["notes"].to_string();
    assert!(notes.contains("new tasks would fail too"), "{notes}");
    assert!(
        !actions(&report).iter().any(|a| a.0 == "redeploy"),
        "nothing redeployed: {report:#}"
    );
    assert!(notes.contains("a human is needed"), "{notes}");
}

#[tokio::test]
async fn a_remedy_that_fails_part_way_ends_in_12_with_an_honest_report() {
    let env = setup().await;
    // Elasticsearch refuses every attempt to set search's password back.
    env.es
        .fail_next("POST", "/_security/user/search/_password", 500, 1000);
    env.es
        .fail_next("PUT", "/_security/user/search/_password", 500, 1000);
    let (out, report, text) = guarded(&env, "rollback", "create_elastic_users.py");
    out.assert_code(12);
    assert_eq!(report["outcome"], "remediation_failed");
    assert_eq!(report["remediation"]["verified"], false);
    let acts = actions(&report);
    assert!(
        acts.contains(&("es-password".into(), "search".into(), false)),
        "{acts:?}"
    );
    assert!(
        acts.contains(&("es-password".into(), "items".into(), true)),
        "{acts:?}"
    );
    let notes = report["notes"].to_string();
    assert!(notes.contains("still wrong after the remedy"), "{notes}");
    assert!(notes.contains("search"), "{notes}");
    assert!(out.stderr.contains("a human is needed"), "{}", out.stderr);
    // items was put right regardless.
    assert!(authenticates(&env, "items", env.replica.password("items")).await);
    assert_nothing_leaked(&env, &out, &text, &[]);
}

#[tokio::test]
async fn a_second_run_is_refused_while_one_is_in_progress() {
    let env = setup().await;
    let started = env.dir.path().join("started");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .env_remove("OPSGUARD_CONFIG")
        .args(["run", "--config"])
        .arg(&env.config)
        .args(["--", "sh", "-c"])
        .arg(format!("touch {} && sleep 3", started.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .envs(env.replica.env())
        .args(["run", "--config"])
        .arg(&env.config)
        .args(["--", "true"])
        .output();
    second.assert_code(2);
    assert!(
        second
            .stderr
            .contains("another opsguard is working on this environment"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        second.stderr
    );
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

#[tokio::test]
async fn the_tripwire_stops_the_script_and_rolls_back_within_a_second() {
    let env = setup().await;
    // The script pauses a second between users, as a slow script would.
    let (out, report, text) = guarded_with(
        &env,
        "rollback",
        "create_elastic_users.py",
        &[("OPSGUARD_DEMO_DELAY", "1.0")],
        &["--watch"],
    );
    out.assert_code(10);
    assert_eq!(report["command_signal"], "SIGTERM", "{report:#}");
    let outage = &report["outage"];
    assert_eq!(
        outage["credentials"],
        serde_json::json!(["search"]),
        "{report:#}"
    );
    let window = outage["window_ms"].as_u64().expect("a measured window");
    assert!(window < 5_000, "outage window {window} ms");
    assert!(outage["recovered_at"].is_string());
    // The script was stopped after its first user: items and the rest were never touched.
    assert_before_state(&env, &["search", "items"]).await;
    assert!(authenticates(&env, "diff_tool", env.replica.password("diff_tool")).await);
    assert!(out.stderr.contains("tripwire"), "{}", out.stderr);
    // Said in words, not as a log record.
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("opsguard: --watch tripwire: a credential")),
        "{}",
        out.stderr
    );
    assert!(log_records(&out.stderr).is_empty(), "{}", out.stderr);
    assert_nothing_leaked(&env, &out, &text, &[]);
    assert_documented(&env, &report);
}

#[tokio::test]
async fn the_tripwire_stays_quiet_when_nothing_live_breaks() {
    let env = setup().await;
    let (out, report, _) = guarded_with(
        &env,
        "rollback",
        "scenarios/rotate_unused_user.py",
        &[],
        &["--watch"],
    );
    out.assert_code(0);
    assert_eq!(report["outage"], Value::Null);
    assert_eq!(report["command_exit"], 0);
}

/// Redeploy only rolls a working value forward: where the current value does
/// not authenticate, new tasks would fail too, so it refuses and says so.
async fn redeploy_refuses(script_rel: &str) {
    let env = setup().await;
    let (out, report, _) = guarded(&env, "redeploy", script_rel);
    out.assert_code(12);
    assert_eq!(
        report["outcome"], "remediation_failed",
        "{script_rel}: {report:#}"
    );
    assert!(
        !actions(&report).iter().any(|a| a.0 == "redeploy"),
        "{script_rel}: nothing may be redeployed: {report:#}"
    );
    assert!(
        report["notes"]
            .to_string()
            .contains("new tasks would fail too"),
        "{report:#}"
    );
    // Nothing changed the running services: the original tasks are still there.
    let ecs = aws_sdk_ecs::Client::new(&env.replica.account.sdk_config().await);
    let svc = ecs
        .describe_services()
        .cluster(&env.replica.cluster)
        .services("prod-search-api")
        .send()
        .await
        .unwrap();
    assert_eq!(svc.services()[0].deployments().len(), 1);
}

#[tokio::test]
async fn redeploy_refuses_after_an_es_only_change() {
    redeploy_refuses("scenarios/rotate_es_only.py").await;
}

#[tokio::test]
async fn redeploy_refuses_after_a_deleted_user() {
    redeploy_refuses("scenarios/delete_search_user.py").await;
}

#[tokio::test]
async fn redeploy_refuses_after_a_disabled_user() {
    redeploy_refuses("scenarios/disable_search_user.py").await;
}

#[tokio::test]
async fn redeploy_rolls_the_api_key_variant_forward() {
    let env = setup().await;
    with_api_key(&env);
    let (out, report, _) = guarded(&env, "redeploy", "scenarios/rotate_api_key.py");
    out.assert_code(10);
    assert!(actions(&report).contains(&(
        "redeploy".into(),
        "catalogue-api-2021-04-26/prod-search-api-key".into(),
        true
    )));
}

#[tokio::test]
async fn a_warning_alone_triggers_no_remedy_in_either_mode() {
    for mode in ["rollback", "redeploy"] {
        let env = setup().await;
        let (out, report, _) = guarded(&env, mode, "scenarios/change_desired_count.py");
        out.assert_code(0);
        assert_eq!(report["remediation"], Value::Null, "{mode}: {report:#}");
        assert_eq!(report["outcome"], "ok");
    }
}
