//! Makes sure the tools the tests run are on `PATH` (`redis-server`;
//! `openssl` for the TLS test's certificate; `chromium` and `chromedriver`
//! for the blog's browser test), installing them with apt-get when root.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, show};

/// Programs the tests and benchmarks need, with the Debian package that has each.
const SERVERS: &[(&str, &str)] = &[("redis-server", "redis-server"), ("openssl", "openssl")];
/// What the blog's browser test drives (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
const BROWSER: &[(&str, &str)] = &[
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
];

/// [`ensure_tools`] for the servers (`redis-server`, `openssl`).
pub fn ensure() -> Result {
    ensure_tools(SERVERS)
}

/// [`ensure_tools`] for all the tests: the servers and the browser.
pub fn ensure_for_tests() -> Result {
    ensure_tools(&[SERVERS, BROWSER].concat())
}

/// Finds the needed programs, or installs the missing ones (apt-get, only as
/// root), or says exactly what to install.
fn ensure_tools(needed: &[(&str, &str)]) -> Result {
    let missing: Vec<&str> = needed
        .iter()
        .filter_map(|&(bin, pkg)| match find_on_path(bin) {
            Some(path) => {
                println!("{bin} found: {}", path.display());
                None
            }
            None => Some(pkg),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(format!(
            "missing: {list}: run  sudo apt-get install -y {list}"
        ));
    }
    println!("missing: {list}; installing with apt-get (running as root):");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    for &(bin, _) in needed {
        if find_on_path(bin).is_none() {
            return Err(format!(
                "apt-get ran, but {bin} is still not on PATH ({})",
                env::var("PATH").unwrap_or_default()
            ));
        }
    }
    println!("installed: {list}");
    if missing.contains(&"redis-server") {
        println!(
            "note: the redis package may also start a system redis on port 6379; the tests \
             never use it, each starts its own server on a free port or socket"
        );
    }
    Ok(())
}

/// The first executable file called `name` in the `PATH` dirs.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `id -u` says 0.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> Result {
    let line = match cmd.get_envs().next() {
        Some((k, Some(v))) => format!(
            "{}={} {}",
            k.to_string_lossy(),
            v.to_string_lossy(),
            show(cmd)
        ),
        _ => show(cmd),
    };
    println!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{line}` failed ({status}); install the packages yourself and rerun"
        ));
    }
    Ok(())
}
