//! `cargo xtask demo`: every example against a throwaway `redis-server`.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Result, cargo, redis_install, root, show};

/// The tutorial app; it serves forever, so the demo leaves it out.
const SKIPPED: &[&str] = &["blog"];

/// Runs each example once with `REDIS_URL` set, then reports the failures.
pub fn run(args: &[String]) -> Result {
    if let Some(arg) = args.first() {
        return Err(format!("cargo xtask demo takes no arguments, got {arg:?}"));
    }
    let dir = root().join("examples").join("examples");
    let examples = find_examples(&dir)?;
    if examples.is_empty() {
        println!(
            "no examples in {} (besides {SKIPPED:?}): nothing to run",
            dir.display()
        );
        return Ok(());
    }
    redis_install::ensure()?;
    let server = DemoRedis::start()?;
    let url = format!("redis://127.0.0.1:{}", server.port);
    println!(
        "redis-server (pid {}) listening at {url}",
        server.child.id()
    );

    let mut failed = Vec::new();
    for (i, name) in examples.iter().enumerate() {
        let mut cmd = cargo();
        cmd.args(["run", "-p", "examples", "--example", name])
            .env("REDIS_URL", &url);
        println!(
            "\n==> [{}/{}] example {name}: REDIS_URL={url} {}",
            i + 1,
            examples.len(),
            show(&cmd)
        );
        match cmd.status() {
            Ok(status) if status.success() => {}
            Ok(status) => failed.push(format!("{name} ({status})")),
            Err(e) => return Err(format!("cannot run cargo: {e}")),
        }
    }
    drop(server);
    if failed.is_empty() {
        println!("\n==> xtask demo: all {} examples ran", examples.len());
        Ok(())
    } else {
        Err(format!(
            "\nxtask demo: {} of {} examples failed: {}",
            failed.len(),
            examples.len(),
            failed.join(", ")
        ))
    }
}

/// Example names, sorted: `<name>.rs` files and `<name>/main.rs` dirs.
fn find_examples(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name.and_then(|n| n.to_str())
            && !SKIPPED.contains(&name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// A `redis-server` on a free port of 127.0.0.1, killed on drop.
struct DemoRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl DemoRedis {
    fn start() -> Result<DemoRedis> {
        let dir = std::env::temp_dir().join(format!("rc-xtask-demo-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // Another process may take the port between our probe and redis' bind.
        for _ in 0..5 {
            let port = TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot find a free port: {e}"))?
                .port();
            let mut cmd = Command::new("redis-server");
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot run `{}`: {e}", show(&cmd)))?;
            let mut server = DemoRedis {
                child,
                port,
                dir: dir.clone(),
            };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        let log = fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let _ = fs::remove_dir_all(&dir);
        Err(format!(
            "cannot start redis-server: {last_error}\nlast lines of its log:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// Waits (at most 10 s) for `PING` to answer `+PONG`.
    fn wait_ready(&mut self) -> Result {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status})"));
            }
            if ping(self.port) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err("it did not answer PING within 10s".into())
    }
}

impl Drop for DemoRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn ping(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let addr = ([127, 0, 0, 1], port).into();
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0; 7];
        stream.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rs_files_and_main_dirs_but_not_blog() {
        let dir = std::env::temp_dir().join(format!("rc-xtask-find-{}", std::process::id()));
        fs::create_dir_all(dir.join("multi")).unwrap();
        fs::create_dir_all(dir.join("empty")).unwrap();
        for file in [
            "zeta.rs",
            "alpha.rs",
            "blog.rs",
            "notes.txt",
            "multi/main.rs",
        ] {
            fs::write(dir.join(file), "fn main() {}").unwrap();
        }
        let found = find_examples(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), ["alpha", "multi", "zeta"]);
        assert_eq!(
            find_examples(&dir.join("missing")).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn demo_redis_answers_ping_and_is_gone_after_drop() {
        let server = DemoRedis::start().unwrap();
        let (port, dir) = (server.port, server.dir.clone());
        assert!(ping(port));
        drop(server);
        assert!(!ping(port));
        assert!(!dir.exists());
    }
}
