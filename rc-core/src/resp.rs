//! Replies read from a blocking connection's socket (RESP2), as the `redis`
//! crate's [`Value`]s.
//!
//! Written by hand because the `redis` crate's parser (combine) is about half
//! a multi-get's client CPU: parsing + decoding one 1000-value `MGET` reply
//! (108 KB) took 188 µs through it against 68 µs here, and the client CPU
//! of a 1000-key cluster `get_many` went from 1.12× to 0.78× that of a raw
//! `redis` `MGET` + decode (`cluster-get_many-cpu` of `cargo xtask bench`).
//! It also reads into one buffer that is zeroed once, where combine zeroes
//! 8 KiB before every `read`.
//!
//! A reply is first framed (its end found, without allocating), then decoded
//! in one pass; framing resumes where it stopped when more bytes come, so a
//! reply that arrives in pieces is not scanned again from its start. Error
//! replies are handed to the `redis` crate's own parser, so they become the
//! same `ServerError`s as everywhere else in rc.

use std::io::{self, Read};

use redis::{ErrorKind, RedisError, RedisResult, Value};

/// Buffer of a new connection; it doubles while a reply does not fit.
const INITIAL: usize = 16 * 1024;
/// A buffer grown past this by one large reply is given back once empty.
const KEEP: usize = 1024 * 1024;
/// Arrays nested deeper than this are refused.
const MAX_DEPTH: usize = 32;

/// The bytes read from one connection and not yet handed out as replies.
pub(crate) struct Reader {
    /// Zeroed once when allocated: reads go into `buf[end..]`.
    buf: Vec<u8>,
    /// The next reply's first byte.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// How far the next reply is framed.
    frame: Frame,
}

impl Reader {
    pub(crate) fn new() -> Self {
        Reader {
            buf: vec![0; INITIAL],
            start: 0,
            end: 0,
            frame: Frame::default(),
        }
    }

    /// Reads one whole reply from `src`, reading from it only as much as
    /// that needs beyond what earlier reads left.
    pub(crate) fn read(&mut self, src: &mut impl Read) -> RedisResult<Value> {
        loop {
            if let Some(value) = self.next()? {
                return Ok(value);
            }
            let n = loop {
                match src.read(self.room()) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            };
            self.filled(n)?;
        }
    }

    /// The next reply, if the bytes read hold all of it. After an error the
    /// bytes are out of step with the replies: the connection must go.
    fn next(&mut self) -> RedisResult<Option<Value>> {
        match self.frame.scan(&self.buf[self.start..self.end])? {
            Scanned::Whole(len) => {
                let reply = &self.buf[self.start..self.start + len];
                let value = Decode { b: reply, at: 0 }.value()?;
                self.frame = Frame::default();
                self.consume(len);
                Ok(Some(value))
            }
            Scanned::Needs => Ok(None),
        }
    }

    fn consume(&mut self, len: usize) {
        self.start += len;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            if self.buf.len() > KEEP {
                self.buf = vec![0; INITIAL];
            }
        }
    }

    /// Where the next read goes, after the bytes read.
    fn room(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Doubled only when full, not sized to the length a reply claims:
        // memory follows the bytes that came, whatever a server announces.
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Counts `n` bytes read into [`room`](Self::room); none means the
    /// server closed the connection.
    fn filled(&mut self, n: usize) -> RedisResult<()> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )
            .into());
        }
        self.end += n;
        Ok(())
    }
}

/// How far framing one reply got.
enum Scanned {
    /// The reply is this many bytes.
    Whole(usize),
    /// It needs more bytes; framing resumes where it stopped.
    Needs,
}

/// Where framing one reply stands: the next item's offset and the items
/// still to come in each array it is inside.
#[derive(Default)]
struct Frame {
    at: usize,
    open: Vec<u64>,
}

impl Frame {
    fn scan(&mut self, b: &[u8]) -> RedisResult<Scanned> {
        loop {
            let Some((kind, line, next)) = line(b, self.at) else {
                return Ok(Scanned::Needs);
            };
            match kind {
                b'+' | b'-' | b':' => self.at = next,
                b'$' => match usize::try_from(int(line)?) {
                    // Negative: nil.
                    Err(_) => self.at = next,
                    Ok(len) => {
                        let end = next
                            .checked_add(len)
                            .and_then(|e| e.checked_add(2))
                            .ok_or_else(|| garbage("bulk string length"))?;
                        if end > b.len() {
                            return Ok(Scanned::Needs);
                        }
                        self.at = end;
                    }
                },
                b'*' => {
                    self.at = next;
                    if let Ok(n @ 1..) = u64::try_from(int(line)?) {
                        // rc's replies nest a few deep at most, and decoding recurses.
                        if self.open.len() == MAX_DEPTH {
                            return Err(garbage("nesting (too deep)"));
                        }
                        self.open.push(n);
                        continue;
                    }
                }
                other => return Err(unexpected(other)),
            }
            // One item is whole: close the arrays it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Scanned::Whole(self.at)),
                    Some(1) => {
                        self.open.pop();
                    }
                    Some(left) => {
                        *left -= 1;
                        break;
                    }
                }
            }
        }
    }
}

/// The line at `at`: its type byte, the rest of it, and where the next starts.
fn line(b: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let rest = b.get(at..)?;
    let cr = rest.windows(2).position(|w| w == b"\r\n")?;
    let (&kind, line) = rest[..cr].split_first()?;
    Some((kind, line, at + cr + 2))
}

/// An integer line, as the `redis` crate reads it (surrounding spaces allowed).
fn int(line: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| garbage("integer"))
}

/// One framed reply turned into a [`Value`].
struct Decode<'a> {
    b: &'a [u8],
    at: usize,
}

impl Decode<'_> {
    fn value(&mut self) -> RedisResult<Value> {
        let start = self.at;
        let (kind, line, next) = line(self.b, self.at).ok_or_else(|| garbage("reply"))?;
        self.at = next;
        Ok(match kind {
            b'+' if line == b"OK" => Value::Okay,
            b'+' => Value::SimpleString(text(line)?.to_owned()),
            b':' => Value::Int(int(line)?),
            // The `redis` crate's parser makes the `ServerError`, whose
            // fields have no public constructor.
            b'-' => redis::parse_redis_value(&self.b[start..next])?,
            b'$' => match usize::try_from(int(line)?) {
                Err(_) => Value::Nil,
                Ok(len) => {
                    let end = next + len;
                    let bytes = self
                        .b
                        .get(next..end)
                        .ok_or_else(|| garbage("bulk string"))?;
                    if self.b.get(end..end + 2) != Some(b"\r\n") {
                        return Err(garbage("bulk string end"));
                    }
                    self.at = end + 2;
                    Value::BulkString(bytes.to_vec())
                }
            },
            b'*' => match usize::try_from(int(line)?) {
                Err(_) => Value::Nil,
                Ok(n) => {
                    // Not `with_capacity(n)`: `n` is the server's word, and
                    // framing has checked that `n` items are here.
                    let mut items = Vec::with_capacity(n.min(self.b.len()));
                    for _ in 0..n {
                        items.push(self.value()?);
                    }
                    Value::Array(items)
                }
            },
            other => return Err(unexpected(other)),
        })
    }
}

fn text(line: &[u8]) -> RedisResult<&str> {
    std::str::from_utf8(line).map_err(|_| garbage("status line"))
}

fn garbage(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "unreadable reply", format!("bad {what}")))
}

fn unexpected(kind: u8) -> RedisError {
    RedisError::from((
        ErrorKind::Parse,
        "unreadable reply",
        format!("unexpected type byte {:?}", kind as char),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `data` `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn replies() -> Vec<Vec<u8>> {
        let big = format!("${}\r\n{}\r\n", 100_000, "v".repeat(100_000));
        let mget: String = (0..500)
            .map(|i| match i % 7 {
                0 => "$-1\r\n".to_owned(),
                _ => format!("${}\r\n\"value {i}\"\r\n", format!("\"value {i}\"").len()),
            })
            .collect();
        [
            "+OK\r\n".to_owned(),
            "+QUEUED\r\n".to_owned(),
            ":42\r\n".to_owned(),
            ":-7\r\n".to_owned(),
            "$-1\r\n".to_owned(),
            "*-1\r\n".to_owned(),
            "$0\r\n\r\n".to_owned(),
            "$4\r\na\r\nb\r\n".to_owned(),
            "*0\r\n".to_owned(),
            "-ERR unknown command 'FOO'\r\n".to_owned(),
            "-MOVED 3999 127.0.0.1:6381\r\n".to_owned(),
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_owned(),
            "*3\r\n*2\r\n:1\r\n$1\r\nx\r\n*0\r\n-ERR inner\r\n".to_owned(),
            "*2\r\n*1\r\n*1\r\n:5\r\n$-1\r\n".to_owned(),
            format!("*500\r\n{mget}"),
            big,
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect()
    }

    #[test]
    fn reads_every_reply_as_the_redis_crate_does_in_any_pieces() {
        let all: Vec<u8> = replies().concat();
        for step in [1, 2, 3, 7, 64, 4096, usize::MAX] {
            let mut reader = Reader::new();
            let mut src = Trickle { data: &all, step };
            for reply in replies() {
                let expected = redis::parse_redis_value(&reply).expect("a reply");
                let got = reader.read(&mut src).expect("a reply");
                assert_eq!(
                    got,
                    expected,
                    "step {step}: {}",
                    String::from_utf8_lossy(&reply[..reply.len().min(60)])
                );
            }
            assert!(src.data.is_empty(), "step {step}: every byte read");
            assert_eq!(
                (reader.start, reader.end),
                (0, 0),
                "step {step}: nothing left over"
            );
        }
    }

    #[test]
    fn a_large_reply_grows_the_buffer_and_gives_it_back() {
        let big = format!("${}\r\n{}\r\n+OK\r\n", 3 * KEEP, "b".repeat(3 * KEEP)).into_bytes();
        let mut reader = Reader::new();
        let mut src = Trickle {
            data: &big,
            step: usize::MAX,
        };
        match reader.read(&mut src).expect("the big reply") {
            Value::BulkString(b) => assert_eq!(b.len(), 3 * KEEP),
            other => panic!("not a bulk string: {other:?}"),
        }
        assert_eq!(reader.read(&mut src).expect("the next reply"), Value::Okay);
        assert_eq!(reader.buf.len(), INITIAL, "the grown buffer is given back");
    }

    #[test]
    fn garbage_is_a_parse_error_and_a_closed_socket_a_dropped_connection() {
        for bad in [
            "?what\r\n",
            ":12x\r\n",
            "$abc\r\n",
            "$3\r\nabcde\r\n",
            "*1\r\n!x\r\n",
        ] {
            let mut src = Trickle {
                data: bad.as_bytes(),
                step: usize::MAX,
            };
            let e = Reader::new().read(&mut src).expect_err(bad);
            assert_eq!(e.kind(), ErrorKind::Parse, "{bad}: {e}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1) + ":1\r\n";
        let mut src = Trickle {
            data: deep.as_bytes(),
            step: usize::MAX,
        };
        let e = Reader::new().read(&mut src).expect_err("too deep");
        assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
        // A length no reply of this stream backs is not allocated up front.
        let mut reader = Reader::new();
        let mut src = Trickle {
            data: b"$4000000000\r\nabc",
            step: usize::MAX,
        };
        let e = reader.read(&mut src).expect_err("cut");
        assert!(e.is_connection_dropped(), "{e}");
        assert_eq!(reader.buf.len(), INITIAL);
        for cut in ["", "$10\r\nabc", "*2\r\n:1\r\n", "+OK"] {
            let mut src = Trickle {
                data: cut.as_bytes(),
                step: usize::MAX,
            };
            let e = Reader::new().read(&mut src).expect_err(cut);
            assert!(e.is_connection_dropped(), "{cut:?}: {e}");
        }
    }
}
