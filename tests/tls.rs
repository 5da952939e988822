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
    tls_server_with(false)
}

/// [`tls_server`], asking clients for a certificate signed by the test CA
/// when `auth_clients`.
fn tls_server_with(auth_clients: bool) -> (RedisServer, u16, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let (key, cert) = certificates(dir.path());
    let tls_port = free_port();
    let ca = dir.path().join("ca.pem");
    let server = RedisServerBuilder::default()
        .config("tls-port", &tls_port.to_string())
        .config("tls-cert-file", cert.to_str().unwrap())
        .config("tls-key-file", key.to_str().unwrap())
        .config("tls-ca-cert-file", ca.to_str().unwrap())
        .config("tls-auth-clients", if auth_clients { "yes" } else { "no" })
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
            ..SslOptions::default()
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
            ..SslOptions::default()
        });
    let err = Cache::builder().host_config(missing).build().unwrap_err();
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("no-such-ca.pem"),
        "{err}"
    );
}

/// A host as a Python rc config gives it: redis-py's TLS names in
/// `ssl_options`, a client certificate the server requires.
#[test]
fn python_host_map_with_a_client_certificate() {
    let (server, tls_port, dir) = tls_server_with(true);
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let host = |client_cert: bool| {
        let mut ssl =
            serde_json::json!({"ssl_ca_certs": file("ca.pem"), "ssl_cert_reqs": "required"});
        if client_cert {
            // The server's certificate, signed by the CA, serves as a client's too.
            ssl["ssl_certfile"] = file("cert.pem").into();
            ssl["ssl_keyfile"] = file("key.pem").into();
        }
        serde_json::from_value::<HostConfig>(serde_json::json!({
            "host": "127.0.0.1", "port": tls_port, "ssl": true, "ssl_options": ssl,
            "socket_timeout": 2
        }))
        .unwrap()
    };
    let cache = Cache::builder().host_config(host(true)).build().unwrap();
    assert!(cache.set("mtls", &"yes", None).unwrap());
    assert_eq!(server.cli(&["GET", "mtls"]), "\"yes\"");
    let refused = Cache::builder().host_config(host(false)).build().unwrap();
    assert!(
        refused.get::<String>("mtls").is_err(),
        "the server requires a client certificate"
    );
}
