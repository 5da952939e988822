//! Makes sure `redis-server` is on `PATH`, installing it with apt-get when root.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::{Result, show};

/// Finds `redis-server`, or installs it (apt-get, only as root), or says
/// exactly what to install.
pub fn ensure() -> Result {
    if let Some(path) = find_on_path("redis-server") {
        println!("redis-server found: {}", path.display());
        return Ok(());
    }
    if !is_root() {
        return Err("redis-server is missing: run  sudo apt-get install -y redis-server".into());
    }
    println!("redis-server is missing; installing it with apt-get (running as root):");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "redis-server"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let Some(path) = find_on_path("redis-server") else {
        return Err(format!(
            "apt-get installed redis-server, but it is still not on PATH ({})",
            env::var("PATH").unwrap_or_default()
        ));
    };
    println!("redis-server installed: {}", path.display());
    println!(
        "note: the package may also start a system redis on port 6379; \
         the tests never use it, each starts its own server on a free port or socket"
    );
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
            "`{line}` failed ({status}); install redis-server yourself and rerun"
        ));
    }
    Ok(())
}
