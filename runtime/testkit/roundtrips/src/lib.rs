//! A proxy in front of PostgreSQL that counts what its clients do, from the wire protocol alone:
//! the **round trips** (each time a client sends a request while it has no answer outstanding,
//! so a flight of pipelined statements counts once), the **statements** (each `Execute` of the
//! extended protocol, each simple `Query`), and the **transaction warnings** the server sends
//! back (SQLSTATE class 25: "there is already a transaction in progress", "there is no
//! transaction in progress"), which a client whose idea of its transaction state is wrong gets.
//!
//! ```no_run
//! let proxy = prefiq_roundtrips::Proxy::start("127.0.0.1:5432").unwrap();
//! let url = proxy.url_for("postgres://app@127.0.0.1:5432/crm").unwrap();
//! // … point a service at `url`, make requests …
//! let before = proxy.counts();
//! // … one request …
//! let spent = proxy.counts() - before;
//! assert_eq!(spent.round_trips, 1);
//! ```
//!
//! Threads, not async: the proxy serves the tests of async services and a benchmark driver
//! with no runtime, and a handful of pooled connections need a handful of threads.
//! Connection start-up (authentication, the first `ReadyForQuery`) is not counted. The proxy
//! refuses encryption itself (a client that prefers TLS goes on in plain text), so that it can
//! read what it counts: use it on a machine's own network only.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the clients of a proxy did, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests sent while no answer was outstanding: the times a client waited.
    pub round_trips: u64,
    /// Statements run: `Execute` and `Query` messages.
    pub statements: u64,
    /// Warnings and notices of SQLSTATE class 25 (transaction state) the server sent.
    pub transaction_warnings: u64,
    /// Connections opened through the proxy.
    pub connections: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;

    fn sub(self, before: Counts) -> Counts {
        Counts {
            round_trips: self.round_trips - before.round_trips,
            statements: self.statements - before.statements,
            transaction_warnings: self.transaction_warnings - before.transaction_warnings,
            connections: self.connections - before.connections,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    round_trips: AtomicU64,
    statements: AtomicU64,
    transaction_warnings: AtomicU64,
    connections: AtomicU64,
    /// The messages of the transaction warnings, for the report.
    warnings: Mutex<Vec<String>>,
}

/// A counting proxy, listening on a port of its own until dropped.
#[derive(Debug)]
pub struct Proxy {
    local: SocketAddr,
    counters: Arc<Counters>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`.
    pub fn start(upstream: impl ToSocketAddrs) -> io::Result<Proxy> {
        let upstream = upstream
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no upstream address"))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let local = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let (accepting, stop) = (counters.clone(), stopped.clone());
        thread::Builder::new()
            .name("roundtrips-accept".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let counters = accepting.clone();
                    let _ =
                        thread::Builder::new()
                            .name("roundtrips-conn".into())
                            .spawn(move || {
                                if let Ok(server) = TcpStream::connect(upstream) {
                                    counters.connections.fetch_add(1, Ordering::SeqCst);
                                    let _ = relay(client, server, counters);
                                }
                            });
                }
            })?;
        Ok(Proxy {
            local,
            counters,
            stopped,
        })
    }

    /// Starts a proxy in front of the server `url` names (`postgres://user@host:port/db`) and
    /// returns it with the URL that goes through it.
    pub fn in_front_of(url: &str) -> io::Result<(Proxy, String)> {
        let (host, port) = host_and_port(url)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a postgres:// URL"))?;
        let proxy = Proxy::start((host.as_str(), port))?;
        let through = proxy
            .url_for(url)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a postgres:// URL"))?;
        Ok((proxy, through))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.local.port()
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let credentials = authority.rsplit_once('@').map(|(c, _)| c);
        let at = credentials.map(|c| format!("{c}@")).unwrap_or_default();
        let slash = if path.is_empty() && !rest.contains('/') {
            ""
        } else {
            "/"
        };
        Some(format!(
            "{scheme}://{at}127.0.0.1:{}{slash}{path}",
            self.port()
        ))
    }

    /// What the clients did so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            round_trips: c.round_trips.load(Ordering::SeqCst),
            statements: c.statements.load(Ordering::SeqCst),
            transaction_warnings: c.transaction_warnings.load(Ordering::SeqCst),
            connections: c.connections.load(Ordering::SeqCst),
        }
    }

    /// The transaction warnings the server sent, as `SQLSTATE: message`.
    pub fn warnings(&self) -> Vec<String> {
        self.counters
            .warnings
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.local);
    }
}

/// The host and port of a `postgres://` URL (5432 when it names none).
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((host_port.to_owned(), 5432)),
    }
}

/// The start-up codes of the untyped messages a client may send first.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// Relays one connection: the start-up exchange (encryption refused), then both directions
/// counted.
fn relay(mut client: TcpStream, mut server: TcpStream, counters: Arc<Counters>) -> io::Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    // Start-up: untyped messages until the start-up message itself.
    loop {
        let message = read_untyped(&mut client)?;
        let code = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
        if code == SSL_REQUEST || code == GSSENC_REQUEST {
            // Refused by the proxy itself, so that what follows can be read: a client that
            // prefers encryption goes on in plain text, one that requires it gives up.
            client.write_all(b"N")?;
            continue;
        }
        server.write_all(&message)?;
        break;
    }
    // The start-up message waits for a ReadyForQuery like any request; it is not counted.
    let outstanding = Arc::new(AtomicI64::new(1));
    let (to_server, from_server) = (server.try_clone()?, client.try_clone()?);
    let (up_counters, up_outstanding) = (counters.clone(), outstanding.clone());
    let upstream = thread::Builder::new()
        .name("roundtrips-up".into())
        .spawn(move || {
            pump(client, to_server, |kind, _| match kind {
                b'S' | b'Q' | b'F' => {
                    if up_outstanding.fetch_add(1, Ordering::SeqCst) == 0 {
                        up_counters.round_trips.fetch_add(1, Ordering::SeqCst);
                    }
                    if kind != b'S' {
                        up_counters.statements.fetch_add(1, Ordering::SeqCst);
                    }
                }
                b'E' => {
                    up_counters.statements.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            })
        })?;
    let down = pump(server, from_server, |kind, body| match kind {
        // Counted down before the client sees it, so that its next request finds none
        // outstanding.
        b'Z' => {
            outstanding.fetch_sub(1, Ordering::SeqCst);
        }
        b'N' => {
            let (code, message) = notice_fields(body);
            if code.starts_with("25") {
                counters.transaction_warnings.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut warnings) = counters.warnings.lock() {
                    warnings.push(format!("{code}: {message}"));
                }
            }
        }
        _ => {}
    });
    let _ = upstream.join();
    down
}

/// Reads one untyped start-up message (a length, then the rest).
fn read_untyped(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let total = u32::from_be_bytes(length) as usize;
    if !(8..=10_000).contains(&total) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a start-up message",
        ));
    }
    let mut message = length.to_vec();
    message.resize(total, 0);
    stream.read_exact(&mut message[4..])?;
    Ok(message)
}

/// Copies `from` to `to`, calling `seen` with the type and body of each whole message before
/// the bytes that complete it are passed on.
fn pump(mut from: TcpStream, mut to: TcpStream, mut seen: impl FnMut(u8, &[u8])) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    // The bytes of the message being read, once its header is complete.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return Ok(());
            }
            Ok(read) => read,
        };
        partial.extend_from_slice(&buffer[..read]);
        let mut at = 0;
        while partial.len() - at >= 5 {
            let length = u32::from_be_bytes([
                partial[at + 1],
                partial[at + 2],
                partial[at + 3],
                partial[at + 4],
            ]) as usize;
            if partial.len() - at < 1 + length {
                break;
            }
            seen(partial[at], &partial[at + 5..at + 1 + length]);
            at += 1 + length;
        }
        partial.drain(..at);
        if to.write_all(&buffer[..read]).is_err() {
            let _ = from.shutdown(Shutdown::Read);
            return Ok(());
        }
    }
}

/// The SQLSTATE and message of a NoticeResponse body.
fn notice_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    let mut fields = body.split(|b| *b == 0);
    for field in fields.by_ref() {
        let Some((&kind, value)) = field.split_first() else {
            break;
        };
        let value = String::from_utf8_lossy(value).into_owned();
        match kind {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pointed_at_the_proxy() {
        assert_eq!(
            host_and_port("postgres://u:p@db.example:6543/app?sslmode=disable"),
            Some(("db.example".into(), 6543))
        );
        assert_eq!(
            host_and_port("postgresql://localhost/app"),
            Some(("localhost".into(), 5432))
        );
        assert_eq!(host_and_port("sqlite:app.db"), None);
        let proxy = Proxy::start("127.0.0.1:9").unwrap();
        let port = proxy.port();
        assert_eq!(
            proxy
                .url_for("postgres://u:p@db.example:6543/app?x=1")
                .unwrap(),
            format!("postgres://u:p@127.0.0.1:{port}/app?x=1")
        );
        assert_eq!(
            proxy.url_for("postgres://db.example").unwrap(),
            format!("postgres://127.0.0.1:{port}")
        );
    }

    #[test]
    fn notices_give_their_code_and_message() {
        let body = b"SWARNING\0VWARNING\0C25001\0Mthere is already a transaction in progress\0\0";
        assert_eq!(
            notice_fields(body),
            (
                "25001".into(),
                "there is already a transaction in progress".into()
            )
        );
    }
}
