//! The incident replica, measured: snapshot wall time and API calls, and the
//! overhead `opsguard run` adds to a no-op command. Needs the test venv
//! (`scripts/test` makes it). Run: `cargo bench --bench replica`.

use es_double::EsDouble;
use opsguard_testkit::{seed, Cmd, Ministack};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "bench-admin-pw-5d1e";
const ROUNDS: usize = 15;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.0} ms, min {:.0} ms, p90 {:.0} ms ({} rounds)",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() * 9 / 10]),
        v.len()
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ms = Ministack::shared();
    let es = EsDouble::start(ADMIN_PW);
    let replica = seed(&ms.fresh_account(), &es, ADMIN_PW).await;
    let dir = tempfile::tempdir().unwrap();
    let config = replica.write_config(dir.path());
    let bin = env!("CARGO_BIN_EXE_opsguard");
    let run = |args: &[&str]| {
        let t = Instant::now();
        let out = Cmd::new(bin)
            .envs(replica.env())
            .current_dir(dir.path())
            .arg(args[0])
            .arg("--config")
            .arg(&config)
            .args(&args[1..])
            .output();
        (t.elapsed(), out)
    };

    let snap_file = dir.path().join("snap.json");
    let mut snaps = Vec::new();
    let mut inner = Vec::new();
    let mut calls = 0;
    for _ in 0..ROUNDS {
        let (t, out) = run(&["snapshot", "-o", snap_file.to_str().unwrap()]);
        out.assert_code(0);
        snaps.push(t);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&snap_file).unwrap()).unwrap();
        inner.push(Duration::from_millis(
            s["collection"]["duration_ms"].as_u64().unwrap(),
        ));
        calls = s["collection"]["api_calls"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>();
    }
    println!("snapshot (process wall time): {}", stats(snaps));
    println!(
        "snapshot (inside, reads only): {}; {calls} API calls",
        stats(inner)
    );

    let mut direct = Vec::new();
    let mut guarded = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        Cmd::new("true").output().assert_code(0);
        direct.push(t.elapsed());
        let (elapsed, out) = run(&["run", "--on-violation", "block", "--", "true"]);
        out.assert_code(0);
        guarded.push(elapsed);
    }
    println!("no-op command alone: {}", stats(direct));
    println!("no-op command under opsguard run: {}", stats(guarded));

    // Rollback of the 2021 script, and the --watch outage window: a fresh
    // replica each round (the script changes it).
    let root = opsguard_testkit::ministack::workspace_root();
    let python = opsguard_testkit::ministack::venv_dir().join("bin/python");
    let script = root.join("examples/incident/create_elastic_users.py");
    let mut restore = Vec::new();
    let mut windows = Vec::new();
    for round in 0..ROUNDS / 2 {
        for watch in [false, true] {
            let es = EsDouble::start(ADMIN_PW);
            let replica = seed(&ms.fresh_account(), &es, ADMIN_PW).await;
            let dir = tempfile::tempdir().unwrap();
            let config = replica.write_config(dir.path());
            let report = dir.path().join("report.json");
            let mut cmd = Cmd::new(bin)
                .envs(replica.env())
                .env("ES_URL", &replica.es_url)
                .env("ES_PASSWORD", ADMIN_PW)
                .current_dir(dir.path())
                .args(["run", "--on-violation", "rollback", "--config"])
                .arg(&config)
                .arg("--report")
                .arg(&report);
            if watch {
                cmd = cmd.arg("--watch").env("OPSGUARD_DEMO_DELAY", "1.0");
            }
            cmd.arg("--")
                .arg(&python)
                .arg(&script)
                .output()
                .assert_code(10);
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            if watch {
                windows.push(Duration::from_millis(
                    r["outage"]["window_ms"].as_u64().unwrap(),
                ));
            } else {
                restore.push(Duration::from_millis(
                    r["remediation"]["exit_to_verified_ms"].as_u64().unwrap(),
                ));
            }
        }
        let _ = round;
    }
    println!(
        "rollback of the 2021 script, command exit to verified restore: {}",
        stats(restore)
    );
    println!(
        "--watch outage window (first refused probe to recovered probe): {}",
        stats(windows)
    );
}
