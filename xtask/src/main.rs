//! Project tasks, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `test`: installs `redis-server`, `openssl`, `chromium` and `chromedriver`
//!   when missing, then fmt check, clippy, all tests (the blog's browser test
//!   included) and rustdoc.
//! - `demo`: runs every example against a throwaway `redis-server`.
//! - `bench`: runs the `rc-bench` benchmark in release mode.
//! - `interop`: rc for Rust against the real Python rc 0.3.1 (Python 2.7).

mod demo;
mod interop;
mod redis_install;
mod test;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [-- <args>]  install redis-server, openssl, chromium and chromium-driver if
                    missing (apt-get, as root), then run
                    cargo fmt --check, clippy -D warnings, all tests and doc tests;
                    <args> go to the test binaries, e.g. `cargo xtask test -- --nocapture`
  bench [<args>]    run the benchmark (rc-bench, release) against its own redis-servers
                    and rewrite BENCHMARKS.md; <args> such as --quick, --filter SUBSTR
                    go to rc-bench (`cargo xtask bench --help` lists them)
  interop           check rc for Rust against the real Python rc 0.3.1: installs rc
                    0.3.1 and redis-py 3.5.3 for Python 2.7 (pip --target, into
                    target/interop-python), starts redis-servers, and compares key
                    placement, values crossed each way and decorated keys
  demo              run each example of examples/examples/ (except blog) against a
                    throwaway redis-server, with REDIS_URL pointing at it
";

/// What a failed task reports; printed as is on stderr.
type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("interop") => interop::run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(format!("no command given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask bench [args]`: `cargo run --release -p rc-bench -- [args]`,
/// telling rc-bench the command to record in `BENCHMARKS.md`.
fn bench(args: &[String]) -> Result {
    redis_install::ensure()?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "-p", "rc-bench", "--"])
        .args(args);
    let shown = ["cargo xtask bench".to_owned()]
        .into_iter()
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    cmd.env("RC_BENCH_COMMAND", shown);
    println!("==> {}", show(&cmd));
    match cmd.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("rc-bench failed ({status})")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}

/// `cargo` (the one running us, if any), run from the workspace root.
fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// The command line of `cmd`, for headers and errors.
fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let program = match program.file_name() {
        // Show `cargo`, not the full path of the toolchain's cargo.
        Some(name) if name == "cargo" => "cargo".into(),
        _ => program.to_string_lossy(),
    };
    let mut out = program.into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(' ') {
            out += &format!(" {arg:?}");
        } else {
            out += &format!(" {arg}");
        }
    }
    out
}
