//! Test harness for opsguard's integration tests.
//!
//! * [`ministack`] starts the AWS emulator (`ministack`, a Python program from
//!   the workspace venv) and hands out isolated accounts on it.
//! * [`replica`] seeds the environment of the 2021-07-27 incident: the
//!   Elasticsearch users and role, their Secrets Manager secrets and the ECS
//!   cluster whose services consume them.
//! * [`proxy`] a loopback proxy that injects faults (503, throttling, delays,
//!   hangs) in front of the ES double or ministack;
//! * [`cmd`] runs the `opsguard` binary with a bounded timeout, and scans its
//!   output for leaked secrets.
//! * [`snap`] insta settings that filter times, ids and ports out of output
//!   snapshots.
//! * [`schema`] checks opsguard's JSON output against the JSON Schemas in
//!   `docs/schema/`.
//!
//! Everything here is test code: it panics instead of returning errors, with a
//! message that says what to do next.

pub mod cmd;
pub mod ministack;
mod process;
pub mod proxy;
pub mod replica;
pub mod schema;
pub mod snap;

pub use cmd::{assert_no_leak, assert_no_leak_named, Cmd, Output};
pub use ministack::{Account, Ministack};
pub use process::is_alive;
pub use replica::{seed, seed_at, write_config, Replica, ReplicaSecret, ReplicaService};
