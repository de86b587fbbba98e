//! The README's first command, `scripts/demo`, run end to end with the
//! binaries this test build made (the demo itself builds release binaries
//! when run by hand).

use opsguard_testkit::ministack::{venv_dir, workspace_root};
use opsguard_testkit::Cmd;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn the_demo_replays_the_incident_and_opsguard_blocks_it() {
    let opsguard = PathBuf::from(env!("CARGO_BIN_EXE_opsguard"));
    let es_double = opsguard.with_file_name("es-double");
    assert!(
        es_double.exists(),
        "{} is missing: run the workspace's tests (scripts/test builds every binary)",
        es_double.display()
    );
    let out = Cmd::new(workspace_root().join("scripts/demo"))
        .env("OPSGUARD_BIN", &opsguard)
        .env("ES_DOUBLE_BIN", &es_double)
        .env("OPSGUARD_VENV", venv_dir())
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(workspace_root())
        .timeout(Duration::from_secs(180))
        .output();
    out.assert_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("opsguard exited 11"), "{all}");
    assert!(all.contains("rollback applied and verified"), "{all}");
    assert!(all.contains("9/9 Proof"), "{all}");
    assert!(all.contains("5/9 Rehearsal"), "{all}");
    assert!(all.contains("PREDICTED"), "{all}");
    assert!(all.contains("live environment: unchanged"), "{all}");
    assert!(all.contains("authenticates again"), "{all}");
    // Findings are grouped by credential: its name, then each rule that fired.
    assert!(all.contains("credential search\n"), "{all}");
    assert!(all.contains("credential items\n"), "{all}");
    assert!(all.contains("block live-credential-broken:"), "{all}");
    assert!(
        all.contains("block secret-rotated-without-redeploy:"),
        "{all}"
    );
    assert!(
        all.contains("catalogue-api-2021-04-26/prod-search-api"),
        "{all}"
    );
    // Every password in the demo — the admin's and those the 2021 script
    // makes — is `secrets.token_hex()`: 32 or more hex digits. Nothing that
    // long may appear (version ids have dashes, fingerprints are cut to 8).
    let longest = all
        .split(|c: char| !c.is_ascii_hexdigit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest < 32,
        "a {longest}-hex-digit run in the demo's output looks like a password"
    );
}

#[test]
fn the_setup_only_shell_has_opsguard_its_config_and_the_scenarios_python() {
    let opsguard = PathBuf::from(env!("CARGO_BIN_EXE_opsguard"));
    let es_double = opsguard.with_file_name("es-double");
    // What a person types in the shell `--setup-only -- bash` leaves them in.
    let script = "command -v opsguard >/dev/null || { echo 'no opsguard on PATH'; exit 91; }
        [ -f \"$OPSGUARD_CONFIG\" ] || { echo 'OPSGUARD_CONFIG unset'; exit 92; }
        python3 -c 'import boto3, elasticsearch' || exit 93
        opsguard check";
    let out = Cmd::new(workspace_root().join("scripts/demo"))
        .args(["--setup-only", "--", "bash", "-c", script])
        .env("OPSGUARD_BIN", &opsguard)
        .env("ES_DOUBLE_BIN", &es_double)
        .env("OPSGUARD_VENV", venv_dir())
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env_remove("OPSGUARD_CONFIG")
        .current_dir(workspace_root())
        .timeout(Duration::from_secs(120))
        .output();
    out.assert_code(0);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("The incident replica is running"), "{all}");
}
