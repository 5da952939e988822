//! `cargo xtask test`: what CI runs.

use std::process::Command;
use std::time::Instant;

use crate::{Result, cargo, redis_install, show};

/// Runs the steps in order, stopping at the first failure.
/// `args` is empty or `-- <args for the test binaries>`.
pub fn run(args: &[String]) -> Result {
    let test_args = match args {
        [] => &[][..],
        [dash, rest @ ..] if dash == "--" => rest,
        [other, ..] => {
            return Err(format!(
                "cargo xtask test: unexpected argument {other:?}; \
                 arguments for the tests go after `--`, e.g. `cargo xtask test -- --nocapture`"
            ));
        }
    };
    let started = Instant::now();
    let mut steps: Vec<(&str, Step)> = vec![
        ("tools", Step::EnsureRedis),
        (
            "fmt",
            Step::Cargo(cargo_cmd(&["fmt", "--all", "--", "--check"], &[])),
        ),
        (
            "clippy",
            Step::Cargo(cargo_cmd(
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
                &[],
            )),
        ),
        (
            "tests",
            Step::Cargo(cargo_cmd(
                &["test", "--workspace", "--all-targets"],
                test_args,
            )),
        ),
        (
            "doc tests",
            Step::Cargo(cargo_cmd(&["test", "--workspace", "--doc"], test_args)),
        ),
        (
            "tls tests",
            Step::Cargo(cargo_cmd(
                &[
                    "test",
                    "-p",
                    "rc-cache",
                    "--features",
                    "tls",
                    "--test",
                    "tls",
                ],
                test_args,
            )),
        ),
        ("docs", Step::Cargo(rustdoc_cmd())),
        // Packages every publishable crate and builds each from its package
        // against the others' packages, as crates.io would see them.
        // `--allow-dirty`: nothing is uploaded, and a local run usually has
        // uncommitted changes; a real `cargo publish` still refuses them.
        (
            "publish dry run",
            Step::Publish({
                let mut cmd = cargo_cmd(
                    &["publish", "--workspace", "--dry-run", "--allow-dirty"],
                    &[],
                );
                cmd.env("CARGO_TARGET_DIR", PUBLISH_TARGET);
                cmd
            }),
        ),
    ];
    let total = steps.len();
    for (i, (name, step)) in steps.iter_mut().enumerate() {
        let n = i + 1;
        let outcome = match step {
            Step::EnsureRedis => {
                println!(
                    "\n==> [{n}/{total}] {name}: check that redis-server, openssl, chromium and chromedriver are installed"
                );
                redis_install::ensure_for_tests()
            }
            Step::Cargo(cmd) => {
                println!("\n==> [{n}/{total}] {name}: {}", show(cmd));
                status(cmd)
            }
            Step::Publish(cmd) => {
                println!("\n==> [{n}/{total}] {name}: {}", show(cmd));
                forget_packaged().and_then(|()| status(cmd))
            }
        };
        if let Err(why) = outcome {
            return Err(format!(
                "{why}\n\nxtask test: step {n}/{total} `{name}` failed after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    println!(
        "\n==> xtask test: all {total} steps passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

enum Step {
    EnsureRedis,
    Cargo(Command),
    /// A publish dry run, after [`forget_packaged`].
    Publish(Command),
}

fn status(cmd: &mut Command) -> Result {
    match cmd.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{status}")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// Where the publish dry run builds (see [`forget_packaged`]).
const PUBLISH_TARGET: &str = "target/publish-check";

/// Removes what an earlier publish dry run left of our packages: the copies
/// unpacked under `$CARGO_HOME/registry/src/-<hash>/` (the local registry it
/// verifies against) and their builds in [`PUBLISH_TARGET`]. Cargo takes a
/// registry crate of the same name and version as unchanged and reuses both,
/// so without this a dry run verifies each crate against the other crates as
/// an earlier run packaged them, not as they are now.
fn forget_packaged() -> Result {
    let builds = crate::root().join(PUBLISH_TARGET);
    if builds.exists() {
        std::fs::remove_dir_all(&builds)
            .map_err(|e| format!("cannot remove {}: {e}", builds.display()))?;
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        // Local registries only: crates.io's directory is named after its host.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in std::fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if krate.file_name().to_string_lossy().starts_with("rc-cache") {
                std::fs::remove_dir_all(krate.path())
                    .map_err(|e| format!("cannot remove {}: {e}", krate.path().display()))?;
            }
        }
    }
    Ok(())
}

/// `cargo doc` with warnings (broken links, missing docs) as errors.
fn rustdoc_cmd() -> Command {
    let mut cmd = cargo();
    cmd.args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    cmd
}

/// `cargo <args>`, plus `-- <test_args>` when there are any.
fn cargo_cmd(args: &[&str], test_args: &[String]) -> Command {
    let mut cmd = cargo();
    cmd.args(args);
    if !test_args.is_empty() {
        cmd.arg("--").args(test_args);
    }
    cmd
}
