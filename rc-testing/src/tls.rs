//! [`TestCertificates`]: the files of a TLS test server, and the admin
//! connections the harness makes to such a server.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rc_core::SslOptions;
use tempfile::TempDir;

/// The files a TLS test server needs: a CA certificate, and a certificate
/// that CA signed for `127.0.0.1` and `localhost` with its private key (PEM).
/// Given to [`RedisServerBuilder::tls`](crate::RedisServerBuilder::tls) or
/// [`RedisClusterBuilder::tls`](crate::RedisClusterBuilder::tls); a cache
/// trusts such a server through [`ssl_options`](Self::ssl_options).
///
/// Cloning is cheap; generated files are removed when the last clone is
/// dropped.
///
/// ```
/// use rc::testing::TestCertificates;
///
/// let certs = TestCertificates::generate();
/// assert!(certs.ca_file().exists() && certs.cert_file().exists() && certs.key_file().exists());
/// assert_eq!(certs.ssl_options().ca_file.as_deref(), Some(certs.ca_file()));
/// ```
#[derive(Clone)]
pub struct TestCertificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// Where generated files are; removed with the last clone.
    _dir: Option<Arc<TempDir>>,
}

impl fmt::Debug for TestCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificates")
            .field("ca_file", &self.ca)
            .field("cert_file", &self.cert)
            .field("key_file", &self.key)
            .finish()
    }
}

impl TestCertificates {
    /// A new throwaway CA (valid 2 days) and a certificate it signed for
    /// `127.0.0.1` and `localhost`, made by the `openssl` tool in a temp dir.
    ///
    /// # Panics
    ///
    /// If `openssl` is not on `PATH` or fails.
    pub fn generate() -> TestCertificates {
        generate().unwrap_or_else(|e| panic!("TestCertificates::generate: {e}"))
    }

    /// The caller's files: `ca_file` signed `cert_file`, whose private key is
    /// `key_file` (PEM). They are read when a server starts or the harness
    /// connects to it, and never removed.
    pub fn from_files(
        ca_file: impl Into<PathBuf>,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> TestCertificates {
        TestCertificates {
            ca: ca_file.into(),
            cert: cert_file.into(),
            key: key_file.into(),
            _dir: None,
        }
    }

    /// The CA certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The server's certificate, signed by the CA.
    pub fn cert_file(&self) -> &Path {
        &self.cert
    }

    /// The private key of [`cert_file`](Self::cert_file).
    pub fn key_file(&self) -> &Path {
        &self.key
    }

    /// TLS options that trust the CA (and verify the server's certificate),
    /// for [`HostConfig::ssl_options`](rc_core::HostConfig::ssl_options) or
    /// [`CacheBuilder::ssl_options`](rc_core::CacheBuilder::ssl_options).
    pub fn ssl_options(&self) -> SslOptions {
        SslOptions {
            insecure: false,
            ca_file: Some(self.ca.clone()),
            ..SslOptions::default()
        }
    }

    /// `redis.conf` lines of a server listening with TLS only, on `port`:
    /// its replication and cluster bus use TLS too, and clients need no
    /// certificate of their own (a later `tls-auth-clients yes` asks for one).
    pub(crate) fn conf_lines(&self, port: u16, quote: fn(&str) -> String) -> Vec<String> {
        let file = |p: &Path| quote(&p.to_string_lossy());
        vec![
            // No plaintext port: a client under test cannot reach the server
            // without TLS, and the harness's own connections use TLS too.
            "port 0".to_owned(),
            format!("tls-port {port}"),
            format!("tls-cert-file {}", file(&self.cert)),
            format!("tls-key-file {}", file(&self.key)),
            format!("tls-ca-cert-file {}", file(&self.ca)),
            "tls-auth-clients no".to_owned(),
            "tls-replication yes".to_owned(),
            "tls-cluster yes".to_owned(),
        ]
    }
}

/// The `redis.conf` directives [`TestCertificates::conf_lines`] writes.
pub(crate) const DIRECTIVES: &[&str] = &[
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-replication",
    "tls-cluster",
];

/// A client of the TLS server at `addr` (`127.0.0.1`, `port`) that trusts
/// the CA and shows the server's own certificate as its client certificate,
/// so that admin connections work with `tls-auth-clients yes` too.
#[cfg(feature = "tls")]
pub(crate) fn client(
    certs: &TestCertificates,
    port: u16,
    settings: redis::RedisConnectionInfo,
) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;

    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            redis::RedisError::from(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ))
        })
    };
    let addr = redis::ConnectionAddr::TcpTls {
        host: "127.0.0.1".to_owned(),
        port,
        insecure: false,
        tls_params: None,
    };
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    let certificates = redis::TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig {
            client_cert: read(&certs.cert)?,
            client_key: read(&certs.key)?,
        }),
        root_cert: Some(read(&certs.ca)?),
    };
    redis::Client::build_with_tls(info, certificates)
}

/// Without rustls the harness cannot talk to a TLS server.
#[cfg(not(feature = "tls"))]
pub(crate) fn client(
    _certs: &TestCertificates,
    _port: u16,
    _settings: redis::RedisConnectionInfo,
) -> redis::RedisResult<redis::Client> {
    Err(io::Error::new(io::ErrorKind::Unsupported, NO_TLS).into())
}

/// Why a TLS server cannot start without the `tls` feature.
pub(crate) const NO_TLS: &str =
    "a TLS test server needs rc's `tls` feature (e.g. `cargo test --features tls`)";

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> io::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => io::Error::new(
                e.kind(),
                "the `openssl` tool is not on PATH: run `cargo xtask test` (installs it) \
                 or `apt-get install openssl`",
            ),
            _ => io::Error::new(e.kind(), format!("cannot run openssl: {e}")),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "openssl {} failed ({}): {}",
        args[0],
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

fn generate() -> io::Result<TestCertificates> {
    let dir = tempfile::Builder::new().prefix("rc-tls-").tempdir()?;
    let d = dir.path();
    let key = [
        "-days",
        "2",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ];
    let ca = ["req", "-x509", "-keyout", "ca.key", "-out", "ca.pem"];
    openssl(d, &[&ca[..], &key, &["-subj", "/CN=rc test CA"]].concat())?;
    let csr = ["req", "-keyout", "key.pem", "-out", "server.csr"];
    openssl(
        d,
        &[&csr[..], &key[2..], &["-subj", "/CN=localhost"]].concat(),
    )?;
    std::fs::write(
        d.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(
        d,
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
    )?;
    Ok(TestCertificates {
        ca: d.join("ca.pem"),
        cert: d.join("cert.pem"),
        key: d.join("key.pem"),
        _dir: Some(Arc::new(dir)),
    })
}
