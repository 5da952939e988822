//! `cargo xtask interop`: rc for Rust against the real Python rc 0.3.1.
//!
//! Finds Python 2.7 (rc 0.3.1 runs on nothing newer), installs rc 0.3.1 and
//! redis-py 3.5.3 with `pip --target` into `target/interop-python` (kept for
//! the next run), then runs the `rc-interop` package, which starts its own
//! redis-servers and runs `interop/rc_side.py` beside the Rust side.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{Result, cargo, redis_install, root, show};

/// The Python packages the suite runs, pinned.
const PACKAGES: &[(&str, &str)] = &[("rc", "0.3.1"), ("redis", "3.5.3")];

const NO_PYTHON: &str = "cargo xtask interop needs Python 2.7 (rc 0.3.1 runs on Python 2 only) \
    with pip, and found none: tried $RC_INTEROP_PYTHON, python2.7 and python2 on PATH, and \
    pyenv's versions/2.7.*. Install it (for example `pyenv install 2.7.18`) or set \
    RC_INTEROP_PYTHON to its interpreter.";

pub fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("cargo xtask interop: unexpected argument {arg:?}"));
    }
    let started = Instant::now();
    redis_install::ensure()?;
    let python = find_python().ok_or(NO_PYTHON)?;
    println!("python 2.7 found: {}", python.display());
    let site = root().join("target").join("interop-python");
    install(&python, &site)?;
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "-p", "rc-interop", "--", "--python"])
        .arg(&python)
        .arg("--site")
        .arg(&site)
        .arg("--script")
        .arg(root().join("interop").join("rc_side.py"));
    println!("==> {}", show(&cmd));
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "xtask interop: failed ({status}) after {:.1}s",
            started.elapsed().as_secs_f64()
        ));
    }
    println!(
        "==> xtask interop: passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The first Python 2.7 among `$RC_INTEROP_PYTHON`, `python2.7` and
/// `python2` on `PATH` (a pyenv shim counts when it runs), and pyenv's
/// installed 2.7 versions (newest first).
fn find_python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(std::env::var_os("RC_INTEROP_PYTHON").map(PathBuf::from));
    candidates.push("python2.7".into());
    candidates.push("python2".into());
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(versions) = pyenv_root.map(|r| r.join("versions"))
        && let Ok(entries) = std::fs::read_dir(versions)
    {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("2.7"))
            .map(|e| e.path().join("bin").join("python2.7"))
            .collect();
        found.sort();
        candidates.extend(found.into_iter().rev());
    }
    candidates.into_iter().find(|p| is_python27(p))
}

fn is_python27(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import sys; sys.stdout.write('%d.%d' % sys.version_info[:2])",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout == b"2.7")
}

/// Installs the pinned packages into `site` unless they are there; a run
/// that fails leaves nothing half-installed behind.
fn install(python: &Path, site: &Path) -> Result {
    let installed = |dir: &Path| {
        PACKAGES
            .iter()
            .all(|(name, version)| dir.join(format!("{name}-{version}.dist-info")).is_dir())
    };
    if installed(site) {
        println!("rc 0.3.1 and redis-py 3.5.3 found in {}", site.display());
        return Ok(());
    }
    let partial = site.with_extension("partial");
    for dir in [site, partial.as_path()] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
    }
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--target",
    ])
    .arg(&partial)
    .args(
        PACKAGES
            .iter()
            .map(|(name, version)| format!("{name}=={version}")),
    );
    println!("==> {}", show(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !status.success() || !installed(&partial) {
        return Err(format!(
            "pip could not install rc==0.3.1 and redis==3.5.3 ({status}); \
             it needs PyPI (or a configured index) and pip for Python 2.7"
        ));
    }
    std::fs::rename(&partial, site).map_err(|e| format!("cannot move {}: {e}", partial.display()))
}
