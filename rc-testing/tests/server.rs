//! `RedisServer` against a real `redis-server`.

use std::io::{Read, Write};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rc_core::HostConfig;
use rc_testing::{RedisServer, TestCertificates};

/// Sends a raw `PING` (no AUTH) and returns the first reply line.
fn raw_ping(mut stream: impl Read + Write) -> String {
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0; 256];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().to_owned()
}

#[test]
fn tcp_server_answers_ping_set_get() {
    let server = RedisServer::start();
    let port = server.port().expect("TCP server has a port");
    assert_ne!(port, 0);
    assert!(server.socket_path().is_none());
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert_eq!(server.cli(&["SET", "k", "v w"]), "OK");
    assert_eq!(server.cli(&["GET", "k"]), "v w");
    assert_eq!(server.cli(&["DBSIZE"]), "1");
    assert_eq!(server.cli(&["GET", "nope"]), "(nil)");
    assert_eq!(server.cli(&["MGET", "k", "nope"]), "1) v w\n2) (nil)");
    assert_eq!(server.cli(&["KEYS", "zz*"]), "(empty array)");
    assert!(server.cli(&["NOSUCHCOMMAND"]).starts_with("(error) ERR"));
    // It runs with no persistence.
    assert_eq!(server.cli(&["CONFIG", "GET", "save"]), "1) save\n2) ");
    assert_eq!(
        server.cli(&["CONFIG", "GET", "appendonly"]),
        "1) appendonly\n2) no"
    );

    let from_url = HostConfig::from_url(&server.url()).unwrap();
    assert_eq!(from_url, server.host_config());
    assert_eq!(
        server.host_config(),
        HostConfig::new().host("127.0.0.1").port(port)
    );
}

#[test]
#[cfg(unix)]
fn unix_server_listens_only_on_its_socket() {
    let server = RedisServer::builder().unix_socket(true).start();
    assert!(server.port().is_none());
    let socket = server
        .socket_path()
        .expect("unix server has a socket")
        .to_owned();
    assert!(socket.starts_with(server.dir()));
    assert_eq!(server.url(), format!("redis+unix://{}", socket.display()));
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(raw_ping(UnixStream::connect(&socket).unwrap()), "+PONG");
    assert_eq!(server.cli(&["SET", "k", "1"]), "OK");
    assert_eq!(server.cli(&["INCR", "k"]), "2");
    assert_eq!(server.cli(&["CONFIG", "GET", "port"]), "1) port\n2) 0");

    let from_url = HostConfig::from_url(&server.url()).unwrap();
    assert_eq!(from_url, server.host_config());
    assert_eq!(from_url.unix_socket_path.as_deref(), Some(socket.as_path()));
}

#[test]
fn password_server_rejects_clients_without_auth() {
    let server = RedisServer::builder().password("p@ss word").start();
    let port = server.port().unwrap();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(raw_ping(stream).starts_with("-NOAUTH"));
    // `cli` authenticates.
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert_eq!(
        server.url(),
        format!("redis://:p%40ss%20word@127.0.0.1:{port}")
    );
    let from_url = HostConfig::from_url(&server.url()).unwrap();
    assert_eq!(
        from_url.password.as_ref().map(|p| p.expose()),
        Some("p@ss word")
    );
    assert_eq!(from_url, server.host_config());
}

#[test]
#[cfg(unix)]
fn password_unix_server_rejects_clients_without_auth() {
    let unix = RedisServer::builder()
        .unix_socket(true)
        .password("pw")
        .start();
    assert!(
        raw_ping(UnixStream::connect(unix.socket_path().unwrap()).unwrap()).starts_with("-NOAUTH")
    );
    assert_eq!(unix.cli(&["DBSIZE"]), "0");
    assert!(unix.url().ends_with("/redis.sock?pass=pw"));
    assert_eq!(
        HostConfig::from_url(&unix.url()).unwrap(),
        unix.host_config()
    );
}

#[test]
fn extra_config_directives_are_applied() {
    let server = RedisServer::builder()
        .config("maxmemory", "1mb")
        .config("maxclients", "7")
        .config("save", "900 1")
        .start();
    assert_eq!(
        server.cli(&["CONFIG", "GET", "maxmemory"]),
        "1) maxmemory\n2) 1048576"
    );
    assert_eq!(
        server.cli(&["CONFIG", "GET", "maxclients"]),
        "1) maxclients\n2) 7"
    );
    assert_eq!(server.cli(&["CONFIG", "GET", "save"]), "1) save\n2) 900 1");
}

#[test]
fn bad_config_is_an_error_with_the_log() {
    let err = RedisServer::builder()
        .config("no-such-directive", "1")
        .try_start()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("exited while starting"), "{msg}");
    assert!(msg.contains("no-such-directive"), "{msg}");

    let err = RedisServer::builder()
        .config("port", "6379")
        .try_start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = RedisServer::builder()
        .config("maxmemory", "1mb\nport 1")
        .try_start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// A TLS server needs the `tls` feature (the harness talks TLS to it), TCP,
/// and its `tls-*` directives to itself.
#[test]
fn tls_servers_refuse_what_they_cannot_do() {
    let certs = TestCertificates::from_files("ca.pem", "cert.pem", "key.pem");
    let tls = || RedisServer::builder().tls(&certs);
    let mut refusals = vec![
        tls().config("tls-port", "6380").try_start(),
        tls().config("TLS-Cluster", "no").try_start(),
    ];
    if cfg!(unix) {
        refusals.push(tls().unix_socket(true).try_start());
    }
    for refused in refusals {
        let err = refused.unwrap_err();
        if cfg!(feature = "tls") {
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        } else {
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains("`tls` feature"), "{err}");
        }
    }
}

#[test]
#[cfg(unix)]
fn pause_freezes_and_resume_thaws() {
    let server = RedisServer::start();
    server.pause();
    assert!(server.is_running());
    let stream = TcpStream::connect(("127.0.0.1", server.port().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut stream = stream;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut buf = [0; 64];
    let err = stream
        .read(&mut buf)
        .expect_err("a stopped server does not answer");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    server.resume();
    // The request sent while frozen is answered once it runs again.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = stream.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"+PONG\r\n");
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
fn kill_and_restart_on_the_same_port() {
    let server = RedisServer::builder()
        .password("pw")
        .config("maxmemory", "2mb")
        .start();
    let (port, url, pid) = (server.port(), server.url(), server.pid());
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
    server.kill();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port.unwrap())).is_err());
    server.kill(); // no-op
    server.restart();
    assert!(server.is_running());
    assert_ne!(server.pid(), pid);
    assert_eq!((server.port(), server.url()), (port, url));
    assert_eq!(
        server.cli(&["GET", "k"]),
        "(nil)",
        "a restarted server starts empty"
    );
    assert_eq!(
        server.cli(&["CONFIG", "GET", "maxmemory"]),
        "1) maxmemory\n2) 2097152"
    );
    // Restarting a running server replaces the process.
    let pid = server.pid();
    server.restart();
    assert_ne!(server.pid(), pid);
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
#[cfg(unix)]
fn kill_and_restart_on_the_same_socket() {
    let server = RedisServer::builder().unix_socket(true).start();
    let socket = server.socket_path().unwrap().to_owned();
    server.kill();
    assert!(!server.is_running());
    server.restart();
    assert_eq!(server.socket_path(), Some(socket.as_path()));
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
#[should_panic(expected = "is not running")]
fn pause_after_kill_panics() {
    let server = RedisServer::start();
    server.kill();
    server.pause();
}

#[test]
fn stop_shuts_down_cleanly_and_restart_brings_it_back() {
    let server = RedisServer::builder().password("pw").start();
    let (port, url, pid) = (server.port(), server.url(), server.pid());
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
    server.stop();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port.unwrap())).is_err());
    let log = std::fs::read_to_string(server.dir().join("redis.log")).unwrap();
    assert!(log.contains("ready to exit, bye bye"), "{log}");
    assert!(
        !server.dir().join("dump.rdb").exists(),
        "SHUTDOWN NOSAVE saves nothing"
    );
    server.stop(); // no-op
    server.restart();
    assert!(server.is_running());
    assert_ne!(server.pid(), pid);
    assert_eq!((server.port(), server.url()), (port, url));
    assert_eq!(
        server.cli(&["DBSIZE"]),
        "0",
        "a restarted server starts empty"
    );
}

#[test]
#[cfg(unix)]
fn stop_of_a_paused_server_shuts_it_down() {
    let server = RedisServer::builder().unix_socket(true).start();
    let socket = server.socket_path().unwrap().to_owned();
    server.pause();
    server.stop();
    assert!(!server.is_running());
    let log = std::fs::read_to_string(server.dir().join("redis.log")).unwrap();
    assert!(log.contains("ready to exit, bye bye"), "{log}");
    server.restart();
    assert_eq!(server.socket_path(), Some(socket.as_path()));
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
fn stop_after_a_password_change_still_stops() {
    let server = RedisServer::builder().password("pw").start();
    assert_eq!(server.cli(&["CONFIG", "SET", "requirepass", "other"]), "OK");
    assert!(server.cli(&["PING"]).starts_with("(error) WRONGPASS"));
    server.stop(); // SHUTDOWN is refused: killed instead
    assert!(!server.is_running());
}

#[test]
#[cfg(unix)]
fn drop_kills_the_process_and_removes_the_temp_dir() {
    let server = RedisServer::builder().unix_socket(true).start();
    let dir = server.dir().to_owned();
    let pid = server.pid();
    assert!(dir.join("redis.log").is_file());
    server.pause(); // a frozen server is killed too
    drop(server);
    assert!(!dir.exists(), "{} still exists", dir.display());
    // SAFETY: signal 0 only checks whether the pid exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    assert!(!alive, "pid {pid} still exists");
}

#[test]
fn many_servers_at_once_get_distinct_ports() {
    let threads: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(RedisServer::start))
        .collect();
    let servers: Vec<RedisServer> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut ports: Vec<u16> = servers.iter().map(|s| s.port().unwrap()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), servers.len());
    for s in &servers {
        assert!(
            s.cli(&["INFO", "server"])
                .contains(&format!("process_id:{}", s.pid()))
        );
    }
}

#[test]
fn password_with_url_special_characters_round_trips() {
    let password = "a%41/b:c?d#e+f é";
    let server = RedisServer::builder().password(password).start();
    let from_url = HostConfig::from_url(&server.url()).unwrap();
    assert_eq!(
        from_url.password.as_ref().map(|p| p.expose()),
        Some(password)
    );
    assert_eq!(server.cli(&["PING"]), "PONG");
}

#[test]
fn cli_shows_nested_arrays_indented() {
    let server = RedisServer::start();
    assert_eq!(
        server.cli(&["EVAL", "return {1, {'a', {}}, 'b'}", "0"]),
        "1) 1\n2) 1) a\n   2) (empty array)\n3) b"
    );
    assert_eq!(
        server.cli(&["EVAL", "return redis.error_reply('MY oops')", "0"]),
        "(error) MY oops"
    );
}
