//! TLS (`rediss://`) against a real redis-server whose certificate is
//! signed by a throwaway test CA. Built and run by `cargo xtask test` with `--features tls`.
#![cfg(feature = "tls")]

use std::path::{Path, PathBuf};
use std::process::Command;

use rc::testing::{RedisServer, RedisServerBuilder};
use rc::{AsyncCache, Cache, Error, HostConfig, SslOptions};

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the TLS tests need the `openssl` tool (cargo xtask test installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA (`ca.pem`) and a server certificate it signed for 127.0.0.1
/// (`cert.pem`, `key.pem`).
fn certificates(dir: &Path) -> (PathBuf, PathBuf) {
    let subject = ["-days", "2", "-nodes", "-newkey", "rsa:2048"];
    openssl(
        dir,
        &[
            &[
                "req",
                "-x509",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=rc test CA",
            ][..],
            &subject,
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &[
                "req",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ][..],
            &subject[2..],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    (dir.join("key.pem"), dir.join("cert.pem"))
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
    let (key, cert) = certificates(dir.path());
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
fn rediss_with_an_untrusted_certificate() {
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
async fn async_rediss_with_an_untrusted_certificate() {
    let (_server, tls_port, _dir) = tls_server();
    let cache = AsyncCache::open(&format!("rediss://127.0.0.1:{tls_port}/0?insecure")).unwrap();
    assert!(cache.set("k", &vec![1, 2, 3], None).await.unwrap());
    assert_eq!(
        cache.get::<Vec<i32>>("k").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}

#[test]
fn a_ca_file_makes_the_certificate_trusted() {
    let (server, tls_port, dir) = tls_server();
    let trusted = HostConfig::new()
        .host("127.0.0.1")
        .port(tls_port)
        .ssl_options(SslOptions {
            insecure: false,
            ca_file: Some(dir.path().join("ca.pem")),
        });
    let cache = Cache::builder().host_config(trusted).build().unwrap();
    assert!(cache.set("ca", &1, None).unwrap());
    assert_eq!(server.cli(&["GET", "ca"]), "1");
    let missing = HostConfig::new()
        .host("127.0.0.1")
        .port(tls_port)
        .ssl_options(SslOptions {
            insecure: false,
            ca_file: Some(dir.path().join("no-such-ca.pem")),
        });
    let err = Cache::builder().host_config(missing).build().unwrap_err();
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("no-such-ca.pem"),
        "{err}"
    );
}
