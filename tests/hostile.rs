//! Hostile input: configs, snapshots, rules and journals written by mistake
//! or by an attacker. None of it may panic, echo a secret, or print a line
//! that a CI runner would read as a command.
//!
//! The fuzz half mutates valid seeds (a deterministic corpus: fixed seeds,
//! so a failure reproduces) and feeds every mutant through the library
//! entry points that read files: config parsing, rule loading and
//! evaluation, snapshot reading, diffing and judging, and journal replay.

mod common;

use common::*;
use opsguard::config::Config;
use opsguard::guard::Policy;
use opsguard::remedy::journal;
use opsguard::snapshot::model::Snapshot;
use opsguard_testkit::Cmd;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::Path;

const SECRET: &str = "Hunter2-s3cret-XyZ";

fn opsguard(dir: &Path) -> Cmd {
    Cmd::new(env!("CARGO_BIN_EXE_opsguard"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
}

fn config_text(es_block: &str) -> String {
    format!(
        "[elasticsearch]\n{es_block}\n\n[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:1\"\n\n[ecs]\nclusters = [\"c\"]\n"
    )
}

#[test]
fn config_errors_never_echo_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        format!("url = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword = \"{SECRET}\""),
        format!("url = \"http://elastic:{SECRET}@127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"X\""),
        format!("url = \"elastic:{SECRET}@127.0.0.1\"\nusername = \"elastic\"\npassword_env = \"X\""),
        format!("url = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"X\"\ntoken = \"{SECRET}\""),
    ];
    for (i, es) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, config_text(es)).unwrap();
        let out = opsguard(dir.path())
            .env("X", "pw")
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output();
        out.assert_code(2);
        assert!(
            !out.stderr.contains(SECRET) && !out.stdout.contains(SECRET),
            "case {i} leaks:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("c{i}.toml:")),
            "case {i} points at the file:\n{}",
            out.stderr
        );
    }
}

#[test]
fn timeouts_out_of_range_are_config_errors_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    for (i, v) in ["0", "99999999999999999", "-5"].iter().enumerate() {
        let path = dir.path().join(format!("t{i}.toml"));
        std::fs::write(
            &path,
            config_text(&format!(
                "url = \"http://127.0.0.1:9200\"\nusername = \"elastic\"\npassword_env = \"X\"\ntimeout_seconds = {v}"
            )),
        )
        .unwrap();
        let out = opsguard(dir.path())
            .env("X", "pw")
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output();
        out.assert_code(2);
        assert!(
            out.stderr.contains(&format!("t{i}.toml:5:")),
            "{v}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("timeout_seconds"), "{}", out.stderr);
    }
}

/// A snapshot whose names carry newlines and workflow commands, and one
/// name 2 MB long: escaped and capped in every line printed.
#[tokio::test]
async fn snapshot_names_cannot_inject_lines_or_flood_stderr() {
    let env = setup().await;
    let before = env.dir.path().join("before.json");
    opsguard(env.dir.path())
        .envs(env.replica.env())
        .args(["snapshot", "--config"])
        .arg(&env.config)
        .arg("-o")
        .arg(&before)
        .output()
        .assert_code(0);
    let snap: Value = serde_json::from_str(&std::fs::read_to_string(&before).unwrap()).unwrap();

    let mut evil = snap.clone();
    let users = evil["elasticsearch"]["users"].as_array_mut().unwrap();
    let mut added = users[0].clone();
    added["username"] = Value::String("x\n::error::injected\r\u{1b}[31m".into());
    users.push(added);
    let mut long = users[0].clone();
    long["username"] = Value::String("L".repeat(2_000_000));
    users.push(long);
    let after = env.dir.path().join("after.json");
    std::fs::write(&after, serde_json::to_string(&evil).unwrap()).unwrap();
    let out = opsguard(env.dir.path())
        .env("GITHUB_ACTIONS", "true")
        .args(["diff", "--format", "markdown"])
        .arg(&before)
        .arg(&after)
        .output();
    assert!(
        out.status_code == 0 || out.status_code == 11,
        "{}",
        out.stderr
    );
    for (name, text) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        for line in text.lines() {
            assert!(
                !line.starts_with("::")
                    || line.starts_with("::error title=opsguard")
                    || line.starts_with("::warning title=opsguard")
                    || line.starts_with("::notice title=opsguard"),
                "{name} carries a workflow command: {line:?}"
            );
            assert!(!line.contains('\u{1b}'), "{name}: raw escape in {line:?}");
        }
        assert!(text.len() < 200_000, "{name} is {} bytes", text.len());
    }
    assert!(
        out.stderr.contains("x\\n::error::injected"),
        "{}",
        out.stderr
    );

    // A schema error names where.
    let mut bad = snap.clone();
    bad["credentials"][0]["kind"] = Value::from(7);
    std::fs::write(&after, serde_json::to_string(&bad).unwrap()).unwrap();
    let out = opsguard(env.dir.path())
        .args(["diff"])
        .arg(&before)
        .arg(&after)
        .output();
    out.assert_code(2);
    assert!(out.stderr.contains("credentials[0].kind"), "{}", out.stderr);

    // And the snapshot is a seed of the fuzz corpus.
    let text = serde_json::to_string(&snap).unwrap();
    let (n, panics) = fuzz_snapshots(&text, 300);
    eprintln!("FIGURE fuzz snapshots: {n} inputs, {panics} panics");
    assert_eq!(panics, 0);
}

// ---- the fuzz corpus --------------------------------------------------------

const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ":",
    "\n",
    "\r",
    "\0",
    "\u{1b}",
    "0",
    "-1",
    "99999999999999999999",
    "1e999",
    "null",
    "true",
    "[[",
    "]]",
    "#",
    "\\",
    "\\u0000",
    "::error::x",
    "999",
    "\u{2028}",
    "é",
    "",
];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = v.len().max(1);
        let at = rng.random_range(0..len).min(v.len());
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = rng.random();
            }
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(at..at, t.bytes());
            }
            2 => {
                let end = (at + rng.random_range(0..16)).min(v.len());
                v.drain(at..end);
            }
            3 => {
                let end = (at + rng.random_range(0..32)).min(v.len());
                let dup = v[at..end].to_vec();
                v.splice(at..at, dup);
            }
            _ => {
                v.truncate(at);
            }
        }
    }
    v
}

fn no_panic<F: FnOnce() + std::panic::UnwindSafe>(f: F) -> bool {
    std::panic::catch_unwind(f).is_err()
}

fn fuzz_snapshots(seed: &str, n: usize) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(12);
    let policy = Policy::builtin().unwrap();
    let good: Snapshot = serde_json::from_str(seed).unwrap();
    let mut panics = 0;
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..n {
        let bytes = mutate(&mut rng, seed.as_bytes());
        let good = good.clone();
        let policy = &policy;
        if no_panic(std::panic::AssertUnwindSafe(move || {
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(s) = serde_json::from_str::<Snapshot>(&text) {
                let facts = policy.facts(&good, &s, "diff", None);
                let _ = policy.evaluate(&facts);
                let _ = opsguard::report::diff::text(&good, &s);
                let _ = opsguard::report::changes::between(&s, &good);
            }
        })) {
            panics += 1;
        }
    }
    std::panic::set_hook(prev);
    (n, panics)
}

#[test]
fn fuzzed_configs_rules_and_journals_never_panic_nor_echo_a_secret() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(7);
    let mut inputs = 0;
    let mut panics = 0;
    let mut leaks = Vec::new();

    // Configs, with secrets where a user might put them.
    let seed = format!(
        "[elasticsearch]\nurl = \"http://elastic:{SECRET}@127.0.0.1:9200\"\nusername = \"elastic\"\npassword = \"{SECRET}\"\npassword_env = \"X\"\ntimeout_seconds = 5\n\n[aws]\nregion = \"eu-west-1\"\ntimeout_seconds = 5\n\n[ecs]\nclusters = [\"c\"]\n\n[[credentials]]\nkind = \"elasticsearch-basic\"\nusername_env = \"u\"\npassword_env = \"p\"\n\n[remedies]\nstable_timeout_seconds = 60\n\n[[waivers]]\nrule = \"x\"\ntarget = \"y\"\nreason = \"z\"\nexpires = \"2099-01-01\"\n"
    );
    let today = time::macros::date!(2026 - 12 - 01);
    for _ in 0..400 {
        let bytes = mutate(&mut rng, seed.as_bytes());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        inputs += 1;
        let r = std::panic::catch_unwind(|| {
            let env = |k: &str| (k == "X").then(|| "pw".to_owned());
            Config::parse(Path::new("fuzz.toml"), &text, &env, today)
                .err()
                .map(|e| {
                    let line = e.to_string();
                    format!("{line} {:?}", miette::Report::new(e))
                })
        });
        match r {
            Err(p) => {
                panics += 1;
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                leaks.push(format!("panic: {why} on {text:?}"));
            }
            Ok(Some(msg)) if msg.contains(SECRET) => leaks.push(msg),
            Ok(_) => {}
        }
    }

    // Rules: a valid rule file, mutated, loaded and evaluated.
    let dir = tempfile::tempdir().unwrap();
    let rule_seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/live-credential-broken.toml"),
    )
    .unwrap()
    .replace("live-credential-broken", "fuzzed-rule");
    let facts =
        Policy::builtin()
            .unwrap()
            .facts(&empty_snapshot(), &empty_snapshot(), "diff", None);
    for i in 0..150 {
        let bytes = mutate(&mut rng, rule_seed.as_bytes());
        let sub = dir.path().join(format!("r{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("fuzzed-rule.toml"), &bytes).unwrap();
        inputs += 1;
        if no_panic(std::panic::AssertUnwindSafe(|| {
            if let Ok(set) = opsguard::rules::RuleSet::load(std::slice::from_ref(&sub)) {
                let _ = set.evaluate(&facts);
                let _ = set.run_tests();
            }
        })) {
            panics += 1;
        }
    }

    // Journals.
    let plan = "{\"seq\":2,\"at\":\"x\",\"event\":\"plan\",\"plan\":{\"steps\":[{\"kind\":\"redeploy\",\"service\":\"c/s\"},{\"kind\":\"secret-current-back\",\"secret\":\"s\",\"to_version\":\"a\",\"from_version\":\"b\",\"credentials\":[\"search\"]}],\"cannot\":[]}}";
    let jseed = format!(
        "{{\"seq\":1,\"at\":\"x\",\"event\":\"begin\",\"run_id\":\"r\",\"mode\":\"rollback\"}}\n{plan}\n{{\"seq\":3,\"at\":\"x\",\"event\":\"started\",\"step\":0,\"kind\":\"redeploy\",\"target\":\"c/s\"}}\n{{\"seq\":4,\"at\":\"x\",\"event\":\"done\",\"step\":1}}\n{{\"seq\":5,\"at\":\"x\",\"event\":\"failed\",\"step\":0,\"detail\":\"d\"}}\n{{\"seq\":6,\"at\":\"x\",\"event\":\"verified\",\"ok\":false}}\n{{\"seq\":7,\"at\":\"x\",\"event\":\"finished\",\"exit_code\":12}}\n"
    );
    for _ in 0..400 {
        let bytes = mutate(&mut rng, jseed.as_bytes());
        inputs += 1;
        if no_panic(|| {
            let read = journal::parse(&bytes);
            let (p, _) = journal::Progress::checked(&read.events);
            let _ = p.pending();
            let _ = p.ended_unverified();
        }) {
            panics += 1;
        }
    }
    std::panic::set_hook(prev);
    eprintln!(
        "FIGURE fuzz configs+rules+journals: {inputs} inputs, {panics} panics, {} leaks",
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "a config error echoes a secret: {}",
        leaks.join("\n---\n")
    );
    assert_eq!(panics, 0);
}

#[test]
fn a_journal_step_out_of_range_is_named_not_a_panic() {
    let text = "{\"seq\":1,\"at\":\"x\",\"event\":\"begin\",\"run_id\":\"r\",\"mode\":\"rollback\"}\ngarbage\n{\"seq\":2,\"at\":\"x\",\"event\":\"plan\",\"plan\":{\"steps\":[],\"cannot\":[]}}\n{\"event\":\"done\",\"step\":999}\n";
    let read = journal::parse(text.as_bytes());
    assert_eq!(read.problems.len(), 2, "{:?}", read.problems);
    assert!(
        read.problems[0].starts_with("journal.jsonl:2:"),
        "{:?}",
        read.problems
    );
    let (p, problems) = journal::Progress::checked(&read.events);
    assert!(p.done.is_empty());
    assert_eq!(problems.len(), 0, "{problems:?}");
    // The `done` line lacks seq/at: it is not an event at all, and said so.
    assert!(
        read.problems[1].starts_with("journal.jsonl:4:"),
        "{:?}",
        read.problems
    );

    let text = "{\"seq\":1,\"at\":\"x\",\"event\":\"plan\",\"plan\":{\"steps\":[],\"cannot\":[]}}\n{\"seq\":2,\"at\":\"x\",\"event\":\"done\",\"step\":999}\n";
    let read = journal::parse(text.as_bytes());
    let (p, problems) = journal::Progress::checked(&read.events);
    assert!(p.done.is_empty());
    assert!(problems[0].contains("step 999"), "{problems:?}");
}

fn empty_snapshot() -> Snapshot {
    serde_json::from_value(serde_json::json!({
        "schema": "opsguard.snapshot/v1",
        "taken_at": "2026-12-01T00:00:00Z",
        "opsguard_version": "0",
        "fingerprint_key_id": "k",
        "elasticsearch": {"url": "http://x", "cluster_name": "c", "cluster_uuid": "u", "version": "8",
            "health": {"status": "green", "number_of_nodes": 1, "number_of_data_nodes": 1, "active_shards_percent": 100.0},
            "users": [], "api_keys": []},
        "secrets": [], "services": [], "task_definitions": [], "credentials": [],
        "collection": {"duration_ms": 0, "api_calls": {}}
    }))
    .unwrap()
}
