//! Compatibility with the official Python `elasticsearch` 8.x client: runs
//! `python_client.py` (beside this file) against an in-process double.
//!
//! Python comes from the venv at `$OPSGUARD_VENV` if set, else
//! `<workspace root>/.venv` (`scripts/test` creates it). A missing venv is a
//! failure, never a silent pass.

use es_double::EsDouble;
use std::path::PathBuf;
use std::process::Command;

const PW: &str = "py-elastic-pw";

fn python() -> PathBuf {
    let venv = match std::env::var_os("OPSGUARD_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    };
    let python = venv.join("bin").join("python");
    assert!(
        python.exists(),
        "no Python venv at {} (looked for {}): run `scripts/test`, which creates the venv with the \
         elasticsearch client, or point OPSGUARD_VENV at a venv that has `elasticsearch` 8.x installed",
        venv.display(),
        python.display()
    );
    python
}

#[test]
fn official_python_client_works_against_the_double() {
    let python = python();
    let es = EsDouble::start(PW);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("ES_URL", es.url())
        .env("ES_ELASTIC_PASSWORD", PW)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client script failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert_eq!(stdout.trim(), "python-client-ok", "stderr:\n{stderr}");

    // The script really talked to this double, with the client's own headers.
    let recs = es.requests();
    let has = |method: &str, path: &str, status: u16, principal: &str| {
        recs.iter().any(|r| {
            r.method == method
                && r.path == path
                && r.status == status
                && r.principal.as_deref() == Some(principal)
        })
    };
    assert!(
        has("PUT", "/_security/user/search", 200, "elastic"),
        "{recs:#?}"
    );
    assert!(
        has("PUT", "/_security/user/search/_password", 200, "elastic"),
        "{recs:#?}"
    );
    assert!(
        has("PUT", "/_security/user/search/_disable", 200, "elastic"),
        "{recs:#?}"
    );
    assert!(
        has("PUT", "/_security/user/search/_enable", 200, "elastic"),
        "{recs:#?}"
    );
    // the Python client creates API keys with PUT
    assert!(has("PUT", "/_security/api_key", 200, "search"), "{recs:#?}");
    assert!(
        has("DELETE", "/_security/api_key", 200, "elastic"),
        "{recs:#?}"
    );
    assert!(recs
        .iter()
        .any(|r| r.status == 401 && r.principal.is_none()));
    assert!(recs
        .iter()
        .any(|r| r.status == 403 && r.principal.as_deref() == Some("reader")));
}
