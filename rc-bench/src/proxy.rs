//! A loopback TCP proxy that delays every chunk of bytes, to make a local
//! Redis server look like one across a network.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Listens on a free port of 127.0.0.1 and forwards each connection to
/// `upstream`, holding every chunk read in either direction for `delay`
/// before writing it on.
///
/// Each chunk's deadline is counted from when it was read, so delays do not
/// add up when a reply arrives in several chunks: a request/reply exchange
/// costs about two delays more than without the proxy. Its threads live as
/// long as the process (the benchmark is a short-lived process); each
/// connection's threads end when either side closes.
#[derive(Debug)]
pub struct DelayProxy {
    port: u16,
}

impl DelayProxy {
    /// Starts a proxy to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, delay: Duration) -> io::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        thread::Builder::new()
            .name(format!("delay-proxy-{port}"))
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    if let Err(e) = connect(client, upstream, delay) {
                        eprintln!("delay proxy {port}: {e}");
                    }
                }
            })?;
        Ok(DelayProxy { port })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, delay: Duration) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    pump(client.try_clone()?, server.try_clone()?, delay)?;
    pump(server, client, delay)
}

/// Copies `from` to `to` with one thread reading (stamping each chunk) and
/// one writing (waiting for each chunk's deadline).
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> io::Result<()> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::Builder::new()
        .name("delay-proxy-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = from.shutdown(Shutdown::Read);
        })?;
    thread::Builder::new()
        .name("delay-proxy-write".into())
        .spawn(move || {
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_with_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let proxy = DelayProxy::start(echo_port, Duration::from_millis(20)).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let start = Instant::now();
        c.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
    }
}
