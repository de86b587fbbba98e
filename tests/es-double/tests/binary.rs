//! The `es-double` binary: prints its listening line, serves, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn spawn(args: &[&str], env_password: Option<&str>) -> (std::process::Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_es-double"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env_remove("ES_DOUBLE_ELASTIC_PASSWORD");
    if let Some(pw) = env_password {
        cmd.env("ES_DOUBLE_ELASTIC_PASSWORD", pw);
    }
    let mut child = cmd.spawn().expect("spawn es-double");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (child, line)
}

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("es-double did not stop on SIGTERM within 5 s");
}

#[tokio::test]
async fn binary_prints_its_url_and_serves_with_auth() {
    let (mut child, line) = spawn(
        &["--port", "0", "--elastic-password", "bin-secret-pw"],
        None,
    );
    let line = line.trim_end_matches('\n');
    let url = line
        .strip_prefix("es-double listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);

    let client = reqwest::Client::new();
    let r = client
        .get(format!("{url}/"))
        .basic_auth("elastic", Some("bin-secret-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["version"]["number"], "8.15.0");
    assert_eq!(body["tagline"], "You Know, for Search");

    let r = client.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let status = terminate(&mut child);
    assert!(status.success(), "exit status {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !stderr.contains("bin-secret-pw"),
        "password printed: {stderr}"
    );
}

#[tokio::test]
async fn binary_takes_the_password_from_the_environment() {
    let (mut child, line) = spawn(&["--port", "0"], Some("env-secret-pw"));
    let url = line
        .trim()
        .strip_prefix("es-double listening on ")
        .unwrap()
        .to_string();
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{url}/_security/_authenticate"))
        .basic_auth("elastic", Some("env-secret-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(terminate(&mut child).success());
}

#[test]
fn binary_without_a_password_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_es-double"))
        .args(["--port", "0"])
        .env_remove("ES_DOUBLE_ELASTIC_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--elastic-password"));
}
