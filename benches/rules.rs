//! Rule evaluation over 10,000 credentials (and a service and a secret pair
//! each): how long one full evaluation of the built-in pack takes, and the
//! peak memory of the process. Run: `cargo bench --bench rules`.

use opsguard::facts::model::{CredentialFact, Facts, SecretFact, ServiceFact};
use opsguard::rules::RuleSet;
use std::time::Instant;

const N: usize = 10_000;

fn facts() -> Facts {
    let mut f = Facts {
        schema: "opsguard.facts/v1".into(),
        mode: "run".into(),
        ..Default::default()
    };
    for i in 0..N {
        let svc = format!("cluster/prod-svc-{i}");
        // Every tenth credential is the 2021 incident; the rest are quiet.
        let broken = i % 10 == 0;
        f.credentials.push(CredentialFact {
            id: format!("user-{i}"),
            kind: "elasticsearch-basic".into(),
            principal: format!("user-{i}"),
            principal_before: format!("user-{i}"),
            existed: true,
            exists: true,
            live: true,
            running_tasks_before: 3,
            running_tasks_after: 3,
            principal_existed: true,
            principal_exists: true,
            enabled_before: true,
            enabled_after: true,
            roles_before: vec!["catalogue_read".into()],
            roles_after: vec!["catalogue_read".into()],
            authenticated_before: "authenticated".into(),
            before_value_after: if broken { "rejected" } else { "authenticated" }.into(),
            current_value_after: "authenticated".into(),
            value_changed: broken,
            secrets: vec![format!("es/{i}/username"), format!("es/{i}/password")],
            consumers: vec![svc.clone(), format!("cluster/stage-svc-{i}")],
            live_consumers: vec![svc.clone()],
            stale_consumers: if broken { vec![svc.clone()] } else { vec![] },
            stale_tasks: if broken { 3 } else { 0 },
            environments: vec!["prod".into()],
            ..Default::default()
        });
        f.services.push(ServiceFact {
            id: svc.clone(),
            cluster: "cluster".into(),
            name: format!("prod-svc-{i}"),
            environment: "prod".into(),
            existed: true,
            exists: true,
            desired_before: 3,
            desired_after: 3,
            running_before: 3,
            running_after: 3,
            rollout_before: "COMPLETED".into(),
            rollout_after: "COMPLETED".into(),
            deployments_after: 1,
            healthy_before: true,
            healthy_after: true,
            consumes: vec![format!("user-{i}")],
            ..Default::default()
        });
        for field in ["username", "password"] {
            f.secrets.push(SecretFact {
                id: format!("es/{i}/{field}"),
                existed: true,
                exists: true,
                consumers: vec![svc.clone()],
                live: true,
                credentials: vec![format!("user-{i}")],
                ..Default::default()
            });
        }
    }
    f
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let rules = RuleSet::builtin().expect("built-in rules load");
    let facts = facts();
    let rss_before = peak_rss_kib();
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let findings = rules.evaluate(&facts).expect("evaluation");
        times.push(t.elapsed());
        found = findings.len();
    }
    times.sort();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!(
        "rules: {} rules × {N} credentials, {N} services, {} secrets: median {:.1} ms, min {:.1} ms, max {:.1} ms; {found} findings; peak RSS {} MiB (facts built: {} MiB)",
        rules.rules().len(),
        facts.secrets.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        peak_rss_kib() / 1024,
        rss_before / 1024,
    );
    assert!(found >= N / 10 * 2, "the broken tenth fires");
}
