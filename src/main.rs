//! The `opsguard` binary: a thin shell over the library (see `opsguard::cli`).

fn main() -> std::process::ExitCode {
    opsguard::cli::main()
}
