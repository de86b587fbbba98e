//! `es-double`: run the Elasticsearch 8.x security-API test double as a
//! process (for scripts and tests in other languages).
//!
//! ```text
//! es-double --port 9200 --elastic-password PW      # or ES_DOUBLE_ELASTIC_PASSWORD=PW es-double
//! ```
//!
//! Prints exactly one line, `es-double listening on http://127.0.0.1:PORT`,
//! once it accepts connections, then serves until SIGTERM or SIGINT.

use clap::Parser;
use es_double::EsDouble;
use std::io::Write;
use std::process::ExitCode;

/// Loopback Elasticsearch 8.x security-API test double (binds 127.0.0.1 only).
#[derive(Parser)]
#[command(name = "es-double", version)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free port.
    #[arg(long, default_value_t = 9200)]
    port: u16,

    /// Password of the built-in `elastic` superuser.
    #[arg(long, env = "ES_DOUBLE_ELASTIC_PASSWORD", hide_env_values = true)]
    elastic_password: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let double = match EsDouble::start_on(args.port, &args.elastic_password) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("es-double: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("es-double: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Install the signal handlers before announcing the URL, so a SIGTERM
    // sent right after the line is seen always stops the double cleanly.
    let stopped = {
        let _guard = rt.enter();
        stop_signal()
    };
    let stopped = match stopped {
        Ok(f) => f,
        Err(e) => {
            eprintln!("es-double: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "es-double listening on {}", double.url());
        let _ = out.flush();
    }
    rt.block_on(stopped);
    drop(double);
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when called.
#[cfg(unix)]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
