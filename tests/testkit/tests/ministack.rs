//! The ministack launcher: account isolation, reset, and that no emulator
//! outlives the test process that started it.

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client as SecretsClient;
use opsguard_testkit::ministack::venv_dir;
use opsguard_testkit::{is_alive, Account, Cmd, Ministack};

async fn secrets(account: &Account) -> SecretsClient {
    SecretsClient::new(&account.sdk_config().await)
}

async fn secret_names(account: &Account) -> Vec<String> {
    secrets(account)
        .await
        .list_secrets()
        .send()
        .await
        .expect("ListSecrets")
        .secret_list()
        .iter()
        .filter_map(|s| s.name().map(str::to_string))
        .collect()
}

#[test]
fn fresh_accounts_are_distinct_12_digit_ids() {
    let ministack = Ministack::shared();
    let accounts: Vec<Account> = (0..100).map(|_| ministack.fresh_account()).collect();
    let mut ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    for a in &accounts {
        assert_eq!(a.id.len(), 12, "{a:?}");
        assert!(a.id.bytes().all(|b| b.is_ascii_digit()), "{a:?}");
        assert_ne!(
            a.id, "000000000000",
            "ministack's default account is not fresh"
        );
        assert_eq!(
            a.access_key_id, a.id,
            "ministack picks the account by access key id"
        );
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.endpoint, ministack.endpoint());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), accounts.len(), "every account id is new");
}

#[tokio::test]
async fn accounts_on_one_ministack_do_not_see_each_other() {
    let ministack = Ministack::shared();
    let (a, b) = (ministack.fresh_account(), ministack.fresh_account());
    let name = "elasticsearch/catalogue_api/search/password";

    let created_a = secrets(&a)
        .await
        .create_secret()
        .name(name)
        .secret_string("value-in-a")
        .send()
        .await
        .expect("CreateSecret in a");
    let arn_a = created_a.arn().unwrap().to_string();
    assert!(
        arn_a.starts_with(&format!(
            "arn:aws:secretsmanager:eu-west-1:{}:secret:{name}-",
            a.id
        )),
        "the ARN carries account a's id: {arn_a}"
    );

    assert_eq!(secret_names(&a).await, [name]);
    assert!(secret_names(&b).await.is_empty(), "b lists a's secret");
    for id in [name, arn_a.as_str()] {
        let err = secrets(&b)
            .await
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .expect_err("b must not read a's secret");
        assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "{err:?}"
        );
    }

    // The same name is free in b, and b's ARN carries b's id.
    let created_b = secrets(&b)
        .await
        .create_secret()
        .name(name)
        .secret_string("value-in-b")
        .send()
        .await
        .expect("the same name in b");
    assert!(created_b
        .arn()
        .unwrap()
        .contains(&format!(":{}:secret:", b.id)));
    let value = |account: Account| async move {
        secrets(&account)
            .await
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string()
    };
    assert_eq!(value(a.clone()).await, "value-in-a");
    assert_eq!(value(b.clone()).await, "value-in-b");

    // ECS too.
    let ecs_a = aws_sdk_ecs::Client::new(&a.sdk_config().await);
    let ecs_b = aws_sdk_ecs::Client::new(&b.sdk_config().await);
    let cluster = ecs_a
        .create_cluster()
        .cluster_name("isolation")
        .send()
        .await
        .unwrap();
    let arn = cluster.cluster().unwrap().cluster_arn().unwrap();
    assert_eq!(
        arn,
        format!("arn:aws:ecs:eu-west-1:{}:cluster/isolation", a.id)
    );
    let listed = ecs_b.list_clusters().send().await.unwrap();
    assert!(
        listed.cluster_arns().is_empty(),
        "b sees {:?}",
        listed.cluster_arns()
    );
}

#[tokio::test]
async fn a_private_ministack_resets_and_dies_on_drop() {
    let started = Instant::now();
    let ministack = Ministack::start();
    eprintln!("private ministack healthy after {:?}", started.elapsed());
    assert_ne!(ministack.endpoint(), Ministack::shared().endpoint());
    let account = ministack.fresh_account();
    secrets(&account)
        .await
        .create_secret()
        .name("to-be-reset")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    assert_eq!(secret_names(&account).await, ["to-be-reset"]);
    ministack.reset();
    assert!(
        secret_names(&account).await.is_empty(),
        "reset keeps secrets"
    );

    let (pid, endpoint) = (ministack.pid(), ministack.endpoint());
    assert!(is_alive(pid));
    drop(ministack);
    assert!(!is_alive(pid), "ministack {pid} survived its drop");
    let port_open = std::net::TcpStream::connect(endpoint.trim_start_matches("http://")).is_ok();
    assert!(!port_open, "something still listens on {endpoint}");
}

/// Run `helper` (an ignored test of this binary) in a child test process
/// with `mode`, and return its stdout.
fn run_helper(helper: &str, mode: &str) -> opsguard_testkit::Output {
    Cmd::new(std::env::current_exe().unwrap())
        .args([
            helper,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TESTKIT_HELPER_MODE", mode)
        .env("OPSGUARD_VENV", venv_dir())
        .timeout(Duration::from_secs(60))
        .output()
}

/// Not a test: the child process for `the_shared_ministack_dies_with_the_test_process`.
#[test]
#[ignore = "helper process, run by other tests"]
fn helper_start_the_shared_ministack() {
    let Ok(mode) = std::env::var("TESTKIT_HELPER_MODE") else {
        return;
    };
    let ministack = if mode == "thread" {
        // PR_SET_PDEATHSIG fires when the *thread* that forked the child
        // exits: the shared instance must survive the thread that first
        // asked for it (as it does a test that ends).
        let ministack = std::thread::spawn(Ministack::shared).join().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            is_alive(ministack.pid()),
            "ministack died with the thread that started it"
        );
        let addr = ministack
            .endpoint()
            .trim_start_matches("http://")
            .to_string();
        std::net::TcpStream::connect(addr).expect("ministack still listens");
        ministack
    } else {
        Ministack::shared()
    };
    println!(
        "ministack pid={} endpoint={}",
        ministack.pid(),
        ministack.endpoint()
    );
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    match mode.as_str() {
        "return" | "thread" => {}
        "panic" => panic!("the test failed"),
        // SAFETY: plain syscall; kills this helper process outright.
        "sigkill" => unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        },
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn the_shared_ministack_dies_with_the_test_process() {
    for (mode, code) in [
        ("return", 0),
        ("thread", 0),
        ("panic", 101),
        ("sigkill", 128 + 9),
    ] {
        let out = run_helper("helper_start_the_shared_ministack", mode);
        out.assert_code(code);
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.split_once("ministack pid=").map(|(_, rest)| rest.trim()))
            .unwrap_or_else(|| panic!("helper printed no pid:\n{}\n{}", out.stdout, out.stderr));
        let (pid, endpoint) = line.split_once(" endpoint=").unwrap();
        let pid: u32 = pid.parse().unwrap();

        let deadline = Instant::now() + Duration::from_secs(5);
        while is_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "mode {mode}: ministack {pid} outlived its test process by 5 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let addr = endpoint.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "mode {mode}: something still listens on {endpoint}"
        );
    }
}

/// Not a test: the child process for `a_missing_venv_is_an_error_not_a_skip`.
#[test]
#[ignore = "helper process, run by other tests"]
fn helper_start_a_private_ministack() {
    if std::env::var_os("TESTKIT_HELPER_MODE").is_some() {
        drop(Ministack::start());
    }
}

#[test]
fn a_missing_venv_is_an_error_not_a_skip() {
    let missing = tempfile::tempdir().unwrap();
    let out = Cmd::new(std::env::current_exe().unwrap())
        .args(["helper_start_a_private_ministack", "--exact", "--ignored"])
        .env("TESTKIT_HELPER_MODE", "start")
        .env("OPSGUARD_VENV", missing.path().join("no-venv"))
        .timeout(Duration::from_secs(60))
        .output();
    out.assert_code(101);
    assert!(
        out.stdout.contains("scripts/test") && out.stdout.contains("no-venv"),
        "the panic names the venv and says how to create it:\n{}",
        out.stdout
    );
}
