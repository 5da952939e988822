//! TLS (`rediss://`) against a real redis-server with a self-signed
//! certificate. Built and run by `cargo xtask test` with `--features tls`.
#![cfg(feature = "tls")]

use std::path::{Path, PathBuf};
use std::process::Command;

use rc::testing::{RedisServer, RedisServerBuilder};
use rc::{AsyncCache, Cache, Error};

/// A self-signed certificate for 127.0.0.1 made with the `openssl` tool.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the TLS test needs the `openssl` tool (apt-get install openssl)");
    assert!(
        status.success(),
        "openssl could not make a test certificate"
    );
    (key, cert)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server with a plain port (for its readiness probe) and a TLS port.
fn tls_server() -> (RedisServer, u16, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let (key, cert) = self_signed(dir.path());
    let tls_port = free_port();
    let server = RedisServerBuilder::default()
        .config("tls-port", &tls_port.to_string())
        .config("tls-cert-file", cert.to_str().unwrap())
        .config("tls-key-file", key.to_str().unwrap())
        .config("tls-auth-clients", "no")
        .start();
    (server, tls_port, dir)
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let p = std::env::temp_dir().join(format!("rc-tls-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn rediss_with_a_self_signed_certificate() {
    let (server, tls_port, _dir) = tls_server();
    let cache = Cache::open(&format!("rediss://127.0.0.1:{tls_port}/0?insecure")).unwrap();
    assert!(cache.set("k", &"over tls", None).unwrap());
    assert_eq!(
        cache.get::<String>("k").unwrap().as_deref(),
        Some("over tls")
    );
    // The value really went to this server.
    assert_eq!(server.cli(&["GET", "k"]), "\"over tls\"");

    // Without `insecure` the unknown certificate is refused, with a clear error.
    let strict = Cache::open(&format!("rediss://127.0.0.1:{tls_port}/0")).unwrap();
    let err = strict.get::<String>("k").unwrap_err();
    assert!(matches!(err, Error::Redis { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{tls_port}")),
        "{err}"
    );
}

#[tokio::test]
async fn async_rediss_with_a_self_signed_certificate() {
    let (_server, tls_port, _dir) = tls_server();
    let cache = AsyncCache::open(&format!("rediss://127.0.0.1:{tls_port}/0?insecure")).unwrap();
    assert!(cache.set("k", &vec![1, 2, 3], None).await.unwrap());
    assert_eq!(
        cache.get::<Vec<i32>>("k").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}
