//! A loopback TCP proxy that delays every chunk of bytes, to make a local
//! Redis server look like one across a network, or a slow network.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP proxy on a free port of 127.0.0.1 that forwards each connection to
/// a server on `127.0.0.1:upstream_port`, holding every chunk read in either
/// direction for the current delay before writing it on.
///
/// Each chunk's deadline is counted from when it was read, so delays do not
/// add up when a reply arrives in several chunks: a request/reply exchange
/// costs about two delays more than without the proxy.
///
/// The delay can change while connections are open
/// ([`set_delay`](Self::set_delay)), as a network link's would: the bytes
/// of one direction are never delivered before bytes read earlier in that
/// direction, on any of the proxy's connections (a shorter delay waits for
/// the chunks held longer before it). So the proxy slows commands down but
/// never reorders them, across connections included.
///
/// Dropping it stops listening and closes every connection it forwards; its
/// threads end shortly after. A server that refuses the proxy's connection
/// (it is down) closes the client's at once.
///
/// ```
/// use std::time::Duration;
/// use rc::testing::{DelayProxy, RedisServer};
///
/// let server = RedisServer::start();
/// let proxy = DelayProxy::start(server.port().unwrap(), Duration::from_millis(5)).unwrap();
/// let cache = rc::Cache::open(&format!("redis://127.0.0.1:{}", proxy.port())).unwrap();
/// cache.set("k", &1, None).unwrap();
/// proxy.set_delay(Duration::ZERO);
/// assert_eq!(cache.get::<i32>("k").unwrap(), Some(1));
/// ```
#[derive(Debug)]
pub struct DelayProxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The current delay, in ns.
    delay_ns: AtomicU64,
    stopped: AtomicBool,
    /// The sockets of each open connection, by number, shut down on drop.
    sockets: Mutex<HashMap<u64, [TcpStream; 2]>>,
    next_id: AtomicU64,
    /// Latest deadline given to a chunk, per direction (to the server, to the
    /// client): a later chunk is never due before it.
    last_due: [Mutex<Option<Instant>>; 2],
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_ns.load(Ordering::Relaxed))
    }

    /// The deadline of a chunk read now in `direction`.
    fn due(&self, direction: usize) -> Instant {
        let mut last = lock(&self.last_due[direction]);
        let due = (Instant::now() + self.delay()).max(last.unwrap_or_else(Instant::now));
        *last = Some(due);
        due
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DelayProxy {
    /// Starts a proxy to `127.0.0.1:upstream_port` with `delay` per chunk and direction.
    pub fn start(upstream_port: u16, delay: Duration) -> io::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let shared = Arc::new(Shared {
            delay_ns: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            sockets: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            last_due: [Mutex::new(None), Mutex::new(None)],
        });
        let proxy = DelayProxy { port, shared };
        proxy.set_delay(delay);
        let shared = proxy.shared.clone();
        thread::Builder::new()
            .name(format!("delay-proxy-{port}"))
            .spawn(move || {
                for client in listener.incoming() {
                    if shared.stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    // A server that is down: the client's connection closes.
                    let _ = connect(client, upstream, &shared);
                }
            })?;
        Ok(proxy)
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The delay of each chunk from now on (see the type's docs: chunks are
    /// never reordered, so a shorter delay first waits for the chunks held).
    pub fn set_delay(&self, delay: Duration) {
        let ns = delay.as_nanos().min(u64::MAX as u128) as u64;
        self.shared.delay_ns.store(ns, Ordering::Relaxed);
    }

    /// The current delay.
    pub fn delay(&self) -> Duration {
        self.shared.delay()
    }

    /// Closes every connection open through the proxy (both sides), as a
    /// network failure would; new connections are forwarded as before.
    pub fn disconnect_all(&self) {
        for pair in lock(&self.shared.sockets).drain().map(|(_, pair)| pair) {
            for s in pair {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.disconnect_all();
        // Wakes the accept loop, which then sees `stopped`.
        let _ = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) -> io::Result<()> {
    let server = TcpStream::connect_timeout(&upstream, Duration::from_secs(1))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut sockets = lock(&shared.sockets);
        if shared.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        sockets.insert(id, [client.try_clone()?, server.try_clone()?]);
    }
    let conn = Arc::new(Conn {
        id,
        shared: shared.clone(),
    });
    pump(client.try_clone()?, server.try_clone()?, 0, conn.clone())?;
    pump(server, client, 1, conn)
}

/// One forwarded connection, held by its threads: the last one to end
/// forgets its sockets.
struct Conn {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        lock(&self.shared.sockets).remove(&self.id);
    }
}

/// Copies `from` to `to` with one thread reading (stamping each chunk) and
/// one writing (waiting for each chunk's deadline).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: usize,
    conn: Arc<Conn>,
) -> io::Result<()> {
    let writer_conn = conn.clone();
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
                            .send((conn.shared.due(direction), buf[..n].to_vec()))
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
            drop(writer_conn);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_once() -> u16 {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = echo.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            while s.read_exact(&mut buf).is_ok() {
                if s.write_all(&buf).is_err() {
                    break;
                }
            }
        });
        port
    }

    #[test]
    fn forwards_with_delay() {
        let proxy = DelayProxy::start(echo_once(), Duration::from_millis(20)).unwrap();
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

    #[test]
    fn a_shorter_delay_never_overtakes_and_drop_closes() {
        let proxy = DelayProxy::start(echo_once(), Duration::from_millis(200)).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let start = Instant::now();
        c.write_all(b"first").unwrap();
        thread::sleep(Duration::from_millis(20));
        proxy.set_delay(Duration::ZERO);
        assert_eq!(proxy.delay(), Duration::ZERO);
        c.write_all(b"secnd").unwrap();
        let mut buf = [0u8; 10];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"firstsecnd", "in order");
        assert!(start.elapsed() >= Duration::from_millis(200));
        drop(proxy);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "closed by the drop");
    }
}
