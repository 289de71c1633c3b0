//! HTTP/1.1 from a router to its instances, over connections the router holds itself.
//!
//! Owns: each instance's idle connections ([`Idle`]), writing a proxied request on one (its head
//! and its body), reading the response head, and the response body read in place
//! ([`UpstreamBody`]: by length, chunked or until close). The downstream connection's task does
//! the whole exchange: no client task, no channel, no pool keyed by URI in between. Must not
//! touch: routing choices, metrics, the listen socket.
//!
//! Why not hyper's client: it hands each request through a channel to a task per connection and
//! checks connections out of a pool keyed by the URI's authority, which needs a URI formatted
//! and parsed per request. At saturation on one core that was a third of the router's time
//! (`benches/router.sh`). Requests from clients are still parsed by hyper's server.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections kept per instance.
const IDLE_MAX: usize = 64;
/// An idle connection older than this is closed rather than reused.
const IDLE_FOR: Duration = Duration::from_secs(30);
/// Largest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// Most response headers read (hyper's server takes as many).
const MAX_HEADERS: usize = 100;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a request body the instance did not take is still read, in all and between two
/// pieces ([`linger`]).
const LINGER_FOR: Duration = Duration::from_secs(30);
const LINGER_IDLE: Duration = Duration::from_secs(5);
/// Largest chunk-size line or trailer section read.
const MAX_LINE: usize = 16 * 1024;

/// Why an exchange with an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("closed the connection before answering")]
    Closed,
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("reading the request body: {0}")]
    Client(hyper::Error),
    /// The client sent nothing of its body for this long: the client's doing, not the
    /// instance's.
    #[error("the client sent nothing of its body for {0:?}")]
    ClientIdle(Duration),
    /// The instance took this long to read the request or to send anything back.
    #[error("the instance sent or took nothing for {0:?}")]
    Timeout(Duration),
}

/// The answer's deadline and the limit it came from (none: no limit).
type Deadline = Option<(tokio::time::Instant, Duration)>;

/// `step`, by `deadline`; past it, the instance took too long.
async fn by<T>(
    deadline: Deadline,
    step: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match deadline {
        None => step.await,
        Some((at, w)) => tokio::time::timeout_at(at, step)
            .await
            .unwrap_or_else(|_| Err(Failure::Timeout(w))),
    }
}

/// Write all of `data` to the instance, each write given at most `wait`: progress resets the
/// limit, as nginx's `proxy_send_timeout`.
async fn put<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    mut data: &[u8],
    wait: Option<Duration>,
) -> Result<(), Failure> {
    while !data.is_empty() {
        let n = within(wait, async { Ok(w.write(data).await?) }, Failure::Timeout).await?;
        if n == 0 {
            return Err(Failure::Io(io::ErrorKind::WriteZero.into()));
        }
        data = &data[n..];
    }
    Ok(())
}

/// What sending a request left to know: whether its body was cut short by an early answer,
/// how long was spent waiting for the client's body, and when the answer is due.
struct Sent {
    cut_short: bool,
    client_wait: Duration,
    deadline: Deadline,
}

/// `step`, given at most `wait` (no limit when `None`); past it, `late(wait)`.
async fn within<T>(
    wait: Option<Duration>,
    step: impl Future<Output = Result<T, Failure>>,
    late: fn(Duration) -> Failure,
) -> Result<T, Failure> {
    match wait {
        None => step.await,
        Some(w) => tokio::time::timeout(w, step)
            .await
            .unwrap_or_else(|_| Err(late(w))),
    }
}

/// An instance's idle connections, most recently used last.
#[derive(Debug, Default)]
pub struct Idle {
    conns: Mutex<VecDeque<(TcpStream, Instant)>>,
}

impl Idle {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(TcpStream, Instant)>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection that is not too old.
    fn take(&self) -> Option<TcpStream> {
        let mut conns = self.lock();
        let (stream, since) = conns.pop_back()?;
        if since.elapsed() < IDLE_FOR {
            return Some(stream);
        }
        // The newest is too old: so are the others.
        conns.clear();
        None
    }

    fn put(&self, stream: TcpStream) {
        let now = Instant::now();
        let mut conns = self.lock();
        // Close the oldest when it has waited too long or there are too many.
        if conns
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) >= IDLE_FOR)
            || conns.len() >= IDLE_MAX
        {
            conns.pop_front();
        }
        conns.push_back((stream, now));
    }

    /// Close the connections that waited too long or that the instance has closed (so none
    /// sits half-closed holding a descriptor while no request comes).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock()
            .retain(|(s, since)| now.duration_since(*since) < IDLE_FOR && looks_open(s));
    }

    /// Idle connections held (tests, status).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a forwarded request's body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestBody {
    None,
    Length,
    Chunked,
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers that belong to one connection, never forwarded (RFC 9110 7.6.1).
fn hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == KEEP_ALIVE
        || *name == header::PROXY_AUTHENTICATE
        || *name == header::PROXY_AUTHORIZATION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
}

/// The header names a `Connection` header lists (besides `close` and `keep-alive`).
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// Write the request head for an instance at `addr`: the client's method, target and headers
/// less hop-by-hop ones, `X-Forwarded-For` extended by `client_ip`, and the body's framing.
fn write_head(
    out: &mut Vec<u8>,
    parts: &hyper::http::request::Parts,
    body: &SizeHint,
    client_ip: &str,
    addr: SocketAddr,
) -> RequestBody {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let listed = if parts.headers.contains_key(header::CONNECTION) {
        connection_listed(&parts.headers)
    } else {
        Vec::new()
    };
    let mut host = false;
    let mut forwarded: Vec<&[u8]> = Vec::new();
    for (name, value) in parts.headers.iter() {
        if *name == FORWARDED_FOR {
            forwarded.push(value.as_bytes());
            continue;
        }
        if hop_by_hop(name)
            || *name == header::CONTENT_LENGTH
            || *name == header::EXPECT
            || listed.contains(name)
        {
            continue;
        }
        host |= *name == header::HOST;
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(addr.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for prev in forwarded {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    let framing = match body.exact() {
        Some(0) => {
            if parts.headers.contains_key(header::CONTENT_LENGTH) {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
            RequestBody::None
        }
        Some(n) => {
            out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
            RequestBody::Length
        }
        None => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            RequestBody::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    framing
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, Failure> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| Failure::Connect(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
        .map_err(Failure::Connect)?;
    stream.set_nodelay(true).map_err(Failure::Connect)?;
    Ok(stream)
}

/// Whether an idle connection still looks open: nothing to read, no end of stream. (Reads
/// nothing the kernel has not already said is there.)
fn looks_open(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Forward `req` to the instance at `addr`, on one of `idle`'s connections or a new one, and
/// read the response head. Waits are limited to `wait` each, as nginx's timeouts are: for the
/// client's next piece of body ([`Failure::ClientIdle`]), for the instance to take the next
/// piece, and for its whole response head once the request is sent ([`Failure::Timeout`]); a
/// slow but steady upload takes as long as it needs. The response's body tells how long was
/// spent waiting for the client ([`UpstreamBody::client_wait`]).
pub async fn send(
    req: Request<Incoming>,
    addr: SocketAddr,
    idle: &Arc<Idle>,
    client_ip: &str,
    wait: Duration,
) -> Result<Response<UpstreamBody>, Failure> {
    let (parts, mut body) = req.into_parts();
    let mut head = Vec::with_capacity(512);
    let framing = write_head(&mut head, &parts, &body.size_hint(), client_ip, addr);
    let head_only = parts.method == Method::HEAD;
    let may_repeat = framing == RequestBody::None && parts.method.is_idempotent();
    let request = Outgoing {
        head: &head,
        framing,
        body: Some(&mut body),
        may_repeat,
        head_only,
        wait: Some(wait),
    };
    let result = request.send(addr, idle).await;
    if !body.is_end_stream() {
        tokio::spawn(linger(body));
    }
    result
}

/// What is left of a request body the instance did not take (it answered first, or failed):
/// read and dropped for a while (at most 5 s between pieces, 30 s in all), so that a client
/// still sending reads the answer instead of a reset when the connection closes under its
/// upload (nginx's lingering close).
async fn linger(mut body: Incoming) {
    use http_body_util::BodyExt;
    let drain = async {
        while let Ok(Some(Ok(_))) = tokio::time::timeout(LINGER_IDLE, body.frame()).await {}
    };
    let _ = tokio::time::timeout(LINGER_FOR, drain).await;
}

/// `GET path` of the instance at `addr` (a health probe), on `idle`'s connection or a new one.
/// `path` must be a request target (checked by [`probe_target`]).
pub async fn get(
    addr: SocketAddr,
    path: &str,
    idle: &Arc<Idle>,
) -> Result<Response<UpstreamBody>, Failure> {
    let head = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nuser-agent: cutover-probe\r\naccept: */*\r\n\r\n"
    );
    let request = Outgoing {
        head: head.as_bytes(),
        framing: RequestBody::None,
        body: None,
        may_repeat: true,
        head_only: false,
        // The probe limits the whole check itself.
        wait: None,
    };
    request.send(addr, idle).await
}

/// Whether `path` can be sent as a request target as it is (no spaces, no line breaks).
pub fn probe_target(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with /".into());
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic() || *c == '#') {
        return Err(format!("{c:?} cannot be sent in a request target"));
    }
    path.parse::<hyper::http::uri::PathAndQuery>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A request about to be sent.
struct Outgoing<'a> {
    head: &'a [u8],
    framing: RequestBody,
    body: Option<&'a mut Incoming>,
    /// No body and an idempotent method: may be sent again on a new connection when a reused
    /// one turns out to have been closed by the instance.
    may_repeat: bool,
    head_only: bool,
    /// The limit on each wait (see [`send`]).
    wait: Option<Duration>,
}

impl Outgoing<'_> {
    async fn send(
        mut self,
        addr: SocketAddr,
        idle: &Arc<Idle>,
    ) -> Result<Response<UpstreamBody>, Failure> {
        let mut reused = idle.take();
        'attempt: loop {
            let (mut stream, was_reused) = match reused.take() {
                Some(s) if looks_open(&s) => (s, true),
                _ => (connect(addr).await?, false),
            };
            let retry = was_reused && self.may_repeat;
            let mut buf = BytesMut::new();
            let sent = match self.exchange(&mut stream, &mut buf).await {
                Ok(sent) => sent,
                Err(Failure::Closed) if retry => continue,
                Err(Failure::Io(e)) if retry && stale(&e) => continue,
                Err(e) => return Err(e),
            };
            let parsed = loop {
                match parse_head(&mut buf, self.head_only) {
                    Ok(Some(p)) => break p,
                    // Bytes left on a reused connection from before (a late body, a 408).
                    Err(Failure::Malformed(_)) if retry => continue 'attempt,
                    Err(e) => return Err(e),
                    Ok(None) => {
                        if buf.len() > MAX_HEAD {
                            return Err(Failure::Malformed("response head too large"));
                        }
                        buf.reserve(8 * 1024);
                        let read = async { Ok(stream.read_buf(&mut buf).await?) };
                        if by(sent.deadline, read).await? == 0 {
                            return Err(Failure::Malformed("closed in the response head"));
                        }
                    }
                }
            };
            let body = UpstreamBody {
                io: Some(stream),
                buf,
                state: parsed.framing,
                // A request body not sent whole leaves the connection in no known state.
                reusable: parsed.reusable && !sent.cut_short,
                idle: idle.clone(),
                stall_after: None,
                stalled: None,
                armed: false,
                client_wait: sent.client_wait,
            };
            let mut resp = Response::new(body);
            *resp.status_mut() = parsed.status;
            *resp.headers_mut() = parsed.headers;
            resp.body_mut().finish_if_done();
            return Ok(resp);
        }
    }

    /// Write the head and body, then read until the first bytes of the response are in `buf`.
    /// An instance may answer before it has read the whole body (a 413, a 401, or a stream it
    /// answers as it reads): sending stops there and the answer is read (the body was cut
    /// short).
    async fn exchange(
        &mut self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
    ) -> Result<Sent, Failure> {
        let wait = self.wait;
        put(stream, self.head, wait).await?;
        let mut cut_short = false;
        let mut client_wait = Duration::ZERO;
        if let (Some(body), true) = (self.body.as_mut(), self.framing != RequestBody::None) {
            let chunked = self.framing == RequestBody::Chunked;
            let (mut rd, mut wr) = stream.split();
            let waited = &mut client_wait;
            let upload = async {
                use http_body_util::BodyExt;
                loop {
                    let asked = Instant::now();
                    let next = async { Ok(body.frame().await) };
                    let next = within(wait, next, Failure::ClientIdle).await;
                    *waited += asked.elapsed();
                    let Some(frame) = next? else {
                        break;
                    };
                    let frame = frame.map_err(Failure::Client)?;
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers: not forwarded
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if chunked {
                        put(&mut wr, format!("{:x}\r\n", data.len()).as_bytes(), wait).await?;
                        put(&mut wr, &data, wait).await?;
                        put(&mut wr, b"\r\n", wait).await?;
                    } else {
                        put(&mut wr, &data, wait).await?;
                    }
                }
                if chunked {
                    put(&mut wr, b"0\r\n\r\n", wait).await?;
                }
                Ok::<(), Failure>(())
            };
            tokio::select! {
                biased;
                answered = first_bytes(&mut rd, buf) => {
                    answered?;
                    cut_short = true;
                }
                sent = upload => sent?,
            }
        }
        // The whole response head is due within `wait` of the request's end.
        let deadline = wait.map(|w| (tokio::time::Instant::now() + w, w));
        if buf.is_empty() {
            buf.reserve(8 * 1024);
            let read = async { Ok(stream.read_buf(buf).await?) };
            if by(deadline, read).await? == 0 {
                return Err(Failure::Closed);
            }
        }
        Ok(Sent {
            cut_short,
            client_wait,
            deadline,
        })
    }
}

/// Errors by which a reused connection shows it was closed under us.
fn stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Wait for the instance to send something (or close) while the request body goes out.
async fn first_bytes(
    rd: &mut tokio::net::tcp::ReadHalf<'_>,
    buf: &mut BytesMut,
) -> Result<(), Failure> {
    buf.reserve(8 * 1024);
    match rd.read_buf(buf).await? {
        0 => Err(Failure::Closed),
        _ => Ok(()),
    }
}

struct Parsed {
    status: StatusCode,
    headers: HeaderMap,
    framing: State,
    reusable: bool,
}

/// A content-length value: digits, or a list of the same digits repeated (RFC 9110 8.6).
fn content_length(value: &[u8]) -> Option<u64> {
    let mut found: Option<u64> = None;
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Parse a response head at the front of `buf` and take it off; `None` until it is whole.
/// Interim responses (1xx but 101) are skipped.
fn parse_head(buf: &mut BytesMut, head_only: bool) -> Result<Option<Parsed>, Failure> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        let used = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Failure::Malformed("too many headers"))
            }
            Err(_) => return Err(Failure::Malformed("not an HTTP/1 response head")),
        };
        let code = resp.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| Failure::Malformed("bad status code"))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Failure::Malformed("an upgrade the request did not ask for"));
            }
            buf.advance(used);
            continue;
        }
        let http11 = resp.version == Some(1);
        let mut headers = HeaderMap::with_capacity(resp.headers.len());
        let mut close = !http11;
        let mut chunked = false;
        let mut encoded = false;
        let mut length: Option<u64> = None;
        let mut listed = Vec::new();
        for h in resp.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| Failure::Malformed("bad header name"))?;
            if name == header::CONNECTION {
                for token in std::str::from_utf8(h.value)
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        close &= http11;
                    } else if let Ok(n) = HeaderName::from_bytes(token.as_bytes()) {
                        listed.push(n);
                    }
                }
                continue;
            }
            if name == header::TRANSFER_ENCODING {
                encoded = true;
                chunked = std::str::from_utf8(h.value)
                    .unwrap_or("")
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
                continue;
            }
            if hop_by_hop(&name) {
                continue;
            }
            if name == header::CONTENT_LENGTH {
                let n = content_length(h.value).ok_or(Failure::Malformed("bad content-length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::Malformed("conflicting content-length"));
                }
                if length.is_some() {
                    continue;
                }
                length = Some(n);
                headers.append(name, HeaderValue::from(n));
                continue;
            }
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| Failure::Malformed("bad header value"))?;
            headers.append(name, value);
        }
        for name in listed {
            headers.remove(name);
        }
        let framing = if head_only
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            State::Done
        } else if chunked {
            // The length is the chunks'; a content-length beside it is wrong (RFC 9112 6.3).
            headers.remove(header::CONTENT_LENGTH);
            State::Chunk(Chunk::Size)
        } else if encoded {
            headers.remove(header::CONTENT_LENGTH);
            State::Close
        } else {
            match length {
                Some(n) => State::Length(n),
                None => State::Close,
            }
        };
        // Both lengths, or a transfer coding from an HTTP/1.0 server, may be an attempt to
        // smuggle a response: this one is read as chunked, and the connection not used again
        // (RFC 9112 6.3).
        let suspect = encoded && (length.is_some() || !http11);
        let reusable = !close && !suspect && !matches!(framing, State::Close);
        buf.advance(used);
        return Ok(Some(Parsed {
            status,
            headers,
            framing,
            reusable,
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one (read, not forwarded).
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes left of a content-length body.
    Length(u64),
    Chunk(Chunk),
    /// Until the instance closes the connection.
    Close,
    Done,
}

/// A response body read from the instance's connection as the client's connection asks for
/// it. Once read to its end, the connection goes back to the instance's idle list when it may
/// be reused; dropped before, it is closed.
pub struct UpstreamBody {
    io: Option<TcpStream>,
    buf: BytesMut,
    state: State,
    reusable: bool,
    idle: Arc<Idle>,
    /// How long the instance may send nothing in the middle of the body ([`Self::stall_limit`]).
    stall_after: Option<Duration>,
    /// The stall timer (made the first time a read waits, then reset), and whether it runs:
    /// armed when a read waits, disarmed by the bytes that arrive.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    /// How long the request spent waiting for the client's body.
    client_wait: Duration,
}

impl UpstreamBody {
    /// Give up on the body, with an error, when the instance sends nothing for `after` in the
    /// middle of it (as nginx's `proxy_read_timeout`): a stalled instance then no longer holds
    /// the client's connection, and its own count of requests in flight, for as long as the
    /// client waits.
    pub fn stall_limit(&mut self, after: Duration) {
        self.stall_after = Some(after);
    }

    /// How long sending the request waited for the client's body: not the instance's time.
    pub fn client_wait(&self) -> Duration {
        self.client_wait
    }

    /// At the end: hand the connection back (if reusable and nothing extra was sent).
    fn finish_if_done(&mut self) {
        if self.state == State::Length(0) {
            self.state = State::Done;
        }
        if self.state != State::Done {
            return;
        }
        if let Some(io) = self.io.take() {
            if self.reusable && self.buf.is_empty() {
                self.idle.put(io);
            }
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(io) = self.io.as_ref() else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        loop {
            if io.poll_read_ready(cx)?.is_pending() {
                let Some(after) = self.stall_after else {
                    return Poll::Pending;
                };
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
                if !self.armed {
                    timer.as_mut().reset(tokio::time::Instant::now() + after);
                    self.armed = true;
                }
                ready!(timer.as_mut().poll(cx));
                self.armed = false;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the instance sent nothing for {after:?} in the body"),
                )));
            }
            match io.try_read_buf(&mut self.buf) {
                Ok(n) => {
                    self.armed = false;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Read more; the end of the stream here is an error.
    fn poll_more(&mut self, cx: &mut Context<'_>, what: &str) -> Poll<io::Result<()>> {
        if self.buf.len() > MAX_LINE && matches!(self.state, State::Chunk(_)) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} too long"),
            )));
        }
        match ready!(self.poll_fill(cx))? {
            0 => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the instance closed the connection in the {what}"),
            ))),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Up to `left` bytes already read, as a frame.
    fn take(&mut self, left: u64) -> Bytes {
        let n = self
            .buf
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        self.buf.split_to(n).freeze()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done => {
                    this.finish_if_done();
                    return Poll::Ready(None);
                }
                State::Length(0) => this.state = State::Done,
                State::Length(left) => {
                    if this.buf.is_empty() {
                        ready!(this.poll_more(cx, "body"))?;
                        continue;
                    }
                    let data = this.take(left);
                    this.state = State::Length(left - data.len() as u64);
                    this.finish_if_done();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Close => {
                    if this.buf.is_empty() {
                        if ready!(this.poll_fill(cx))? == 0 {
                            this.reusable = false;
                            this.state = State::Done;
                        }
                        continue;
                    }
                    let data = this.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunk(Chunk::Size)
                    if this.buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) =>
                {
                    return Poll::Ready(Some(Err(invalid("a chunk without its size"))));
                }
                State::Chunk(Chunk::Size) => match httparse::parse_chunk_size(&this.buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        this.buf.advance(used);
                        this.state = State::Chunk(if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        });
                    }
                    Ok(httparse::Status::Partial) => {
                        ready!(this.poll_more(cx, "chunk size"))?;
                    }
                    Err(_) => return Poll::Ready(Some(Err(invalid("bad chunk size")))),
                },
                State::Chunk(Chunk::Data(left)) => {
                    if this.buf.is_empty() {
                        ready!(this.poll_more(cx, "chunk"))?;
                        continue;
                    }
                    let data = this.take(left);
                    let left = left - data.len() as u64;
                    this.state = State::Chunk(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Chunk(Chunk::DataEnd) => {
                    if this.buf.len() < 2 {
                        ready!(this.poll_more(cx, "chunk"))?;
                        continue;
                    }
                    if &this.buf[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(invalid("chunk without its CRLF"))));
                    }
                    this.buf.advance(2);
                    this.state = State::Chunk(Chunk::Size);
                }
                State::Chunk(Chunk::Trailers) => {
                    match this.buf.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            this.buf.advance(2);
                            this.state = State::Done;
                        }
                        Some(end) => this.buf.advance(end + 2),
                        None => ready!(this.poll_more(cx, "trailers"))?,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
