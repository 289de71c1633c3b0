use super::*;
use http_body_util::BodyExt;
use tokio::net::TcpListener;

fn parts(req: Request<()>) -> hyper::http::request::Parts {
    req.into_parts().0
}

fn head_text(req: Request<()>, body: SizeHint) -> (String, RequestBody) {
    let mut out = Vec::new();
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let framing = write_head(&mut out, &parts(req), &body, "10.0.0.7", addr);
    (String::from_utf8(out).unwrap(), framing)
}

#[test]
fn hop_by_hop_headers_are_not_forwarded() {
    let req = Request::builder()
        .uri("/a?b=1")
        .header("connection", "keep-alive, x-secret")
        .header("x-secret", "1")
        .header("transfer-encoding", "chunked")
        .header("te", "trailers")
        .header("keep-alive", "timeout=5")
        .header("upgrade", "websocket")
        .header("expect", "100-continue")
        .header("x-keep", "1")
        .body(())
        .unwrap();
    let (head, framing) = head_text(req, SizeHint::with_exact(0));
    assert_eq!(framing, RequestBody::None);
    assert_eq!(
        head,
        "GET /a?b=1 HTTP/1.1\r\nx-keep: 1\r\nhost: 127.0.0.1:9\r\nx-forwarded-for: 10.0.0.7\r\n\r\n"
    );
}

#[test]
fn forwarded_for_is_extended_and_the_host_kept() {
    let req = Request::builder()
        .method("POST")
        .uri("http://example.test/up")
        .header("host", "example.test")
        .header("x-forwarded-for", "1.1.1.1")
        .header("x-forwarded-for", "2.2.2.2, 3.3.3.3")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let (head, framing) = head_text(req, SizeHint::with_exact(5));
    assert_eq!(framing, RequestBody::Length);
    assert_eq!(
        head,
        "POST /up HTTP/1.1\r\nhost: example.test\r\n\
         x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7\r\ncontent-length: 5\r\n\r\n"
    );
}

#[test]
fn a_body_of_unknown_length_is_sent_chunked_and_an_empty_one_keeps_its_length() {
    let req = Request::builder().method("PUT").uri("/").body(()).unwrap();
    let (head, framing) = head_text(req, SizeHint::default());
    assert_eq!(framing, RequestBody::Chunked);
    assert!(
        head.ends_with("transfer-encoding: chunked\r\n\r\n"),
        "{head}"
    );
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("content-length", "0")
        .body(())
        .unwrap();
    let (head, framing) = head_text(req, SizeHint::with_exact(0));
    assert_eq!(framing, RequestBody::None);
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
}

fn parse(text: &str, head_only: bool) -> Result<Option<Parsed>, Failure> {
    parse_head(&mut BytesMut::from(text.as_bytes()), head_only)
}

#[test]
fn response_heads_say_how_the_body_ends_and_whether_the_connection_is_kept() {
    let p = parse(
        "HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-a: 1\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (p.status.as_u16(), p.framing, p.reusable),
        (200, State::Length(12), true)
    );
    assert_eq!(p.headers["content-length"], "12");
    assert_eq!(p.headers["x-a"], "1");

    let p = parse(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\nconnection: x-b\r\nx-b: 1\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.framing, State::Chunk(Chunk::Size));
    // Both lengths given: decoded as chunked, and the connection closed after.
    assert!(!p.reusable);
    assert!(p.headers.is_empty(), "{:?}", p.headers);
    let p = parse(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: x-b\r\nx-b: 1\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.framing, State::Chunk(Chunk::Size));
    assert!(p.reusable);
    assert!(p.headers.is_empty(), "{:?}", p.headers);

    let p = parse(
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert!(!p.reusable);
    let p = parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", false)
        .unwrap()
        .unwrap();
    assert!(!p.reusable);
    let p = parse("HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
    assert_eq!((p.framing, p.reusable), (State::Close, false));
    // No body after HEAD, 204 or 304, whatever the length says.
    let p = parse("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true)
        .unwrap()
        .unwrap();
    assert_eq!((p.framing, p.reusable), (State::Done, true));
    assert_eq!(p.headers["content-length"], "9");
    for code in [204, 304] {
        let p = parse(&format!("HTTP/1.1 {code} X\r\n\r\n"), false)
            .unwrap()
            .unwrap();
        assert_eq!(p.framing, State::Done);
    }
    // Interim responses are passed over.
    let p = parse(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nlink: x\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.status.as_u16(), 201);
    assert!(!p.headers.contains_key("link"));
    assert!(parse("HTTP/1.1 200 OK\r\ncontent-le", false)
        .unwrap()
        .is_none());
}

#[test]
fn malformed_response_heads_are_errors() {
    for bad in [
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
        "HTTP/1.1 101 Switching\r\nupgrade: h2c\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
    ] {
        assert!(
            matches!(parse(bad, false), Err(Failure::Malformed(_))),
            "{bad}"
        );
    }
    let many: String = (0..MAX_HEADERS + 1)
        .map(|i| format!("x-{i}: 1\r\n"))
        .collect();
    assert!(matches!(
        parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n"), false),
        Err(Failure::Malformed("too many headers"))
    ));
    // The same length twice is fine, and kept once.
    let p = parse(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.headers.get_all("content-length").iter().count(), 1);
}

/// A connected pair: (ours, the instance's side).
async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (theirs, _) = l.accept().await.unwrap();
    (ours, theirs)
}

fn body(io: TcpStream, state: State, reusable: bool, idle: &Arc<Idle>) -> UpstreamBody {
    UpstreamBody {
        io: Some(io),
        buf: BytesMut::new(),
        state,
        reusable,
        idle: idle.clone(),
        stall_after: None,
        stalled: None,
        armed: false,
        client_wait: Duration::ZERO,
    }
}

/// Write `pieces` one by one, with a pause between so that each is its own read.
fn dribble(mut theirs: TcpStream, pieces: Vec<&'static str>, close: bool) {
    tokio::spawn(async move {
        for p in pieces {
            theirs.write_all(p.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !close {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}

#[tokio::test]
async fn a_chunked_body_is_decoded_across_reads_and_the_connection_kept() {
    let idle = Arc::new(Idle::default());
    let (ours, theirs) = pair().await;
    dribble(
        theirs,
        vec![
            "5\r\nhel",
            "lo\r\n6;ext=1\r",
            "\n world\r\n0\r\nx-trailer: 1\r\n",
            "\r\n",
        ],
        false,
    );
    let b = body(ours, State::Chunk(Chunk::Size), true, &idle);
    let got = b.collect().await.unwrap().to_bytes();
    assert_eq!(&got[..], b"hello world");
    assert_eq!(idle.len(), 1);
}

#[tokio::test]
async fn a_length_body_hands_its_connection_back_only_when_read_to_the_end() {
    let idle = Arc::new(Idle::default());
    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["01234", "56789"], false);
    let b = body(ours, State::Length(10), true, &idle);
    assert_eq!(&b.collect().await.unwrap().to_bytes()[..], b"0123456789");
    assert_eq!(idle.len(), 1);

    // Dropped half way: closed, not kept.
    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["01234"], false);
    let mut b = body(ours, State::Length(10), true, &idle);
    let first = b.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"01234");
    drop(b);
    assert_eq!(idle.len(), 1);

    // Not reusable (the instance said close): not kept either.
    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["ab"], false);
    let b = body(ours, State::Length(2), false, &idle);
    assert_eq!(&b.collect().await.unwrap().to_bytes()[..], b"ab");
    assert_eq!(idle.len(), 1);
}

#[tokio::test]
async fn a_body_without_length_runs_to_the_close_and_a_short_one_is_an_error() {
    let idle = Arc::new(Idle::default());
    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["until ", "the end"], true);
    let b = body(ours, State::Close, false, &idle);
    assert_eq!(&b.collect().await.unwrap().to_bytes()[..], b"until the end");
    assert!(idle.is_empty());

    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["short"], true);
    let b = body(ours, State::Length(10), true, &idle);
    let err = b.collect().await.err().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);

    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["zz\r\n"], true);
    let b = body(ours, State::Chunk(Chunk::Size), true, &idle);
    assert!(b.collect().await.is_err());
    assert!(idle.is_empty());
}

#[tokio::test]
async fn idle_connections_are_taken_newest_first_and_old_ones_closed() {
    let idle = Idle::default();
    let (a, _ta) = pair().await;
    let (b, _tb) = pair().await;
    let b_port = b.local_addr().unwrap().port();
    idle.put(a);
    idle.put(b);
    assert_eq!(idle.take().unwrap().local_addr().unwrap().port(), b_port);
    assert_eq!(idle.len(), 1);
    // Aged past IDLE_FOR: dropped instead of used.
    let long_ago = Instant::now()
        .checked_sub(IDLE_FOR)
        .unwrap_or_else(Instant::now);
    if let Some(front) = idle.lock().front_mut() {
        front.1 = long_ago;
    }
    if Instant::now().checked_sub(IDLE_FOR).is_some() {
        assert!(idle.take().is_none());
        assert!(idle.is_empty());
    }
    // A connection the instance closed is swept out; an open one stays.
    let (open, _t1) = pair().await;
    let (closed, t2) = pair().await;
    idle.put(open);
    idle.put(closed);
    drop(t2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    idle.sweep();
    assert_eq!(idle.len(), 1);
    idle.lock().clear();
    for _ in 0..IDLE_MAX + 3 {
        let (s, _t) = pair().await;
        idle.put(s);
    }
    assert_eq!(idle.len(), IDLE_MAX);
}

/// An instance written by hand: answers each request with its method and body, as they came
/// (chunked when `chunked`), and closes the connection after each answer, without saying so,
/// when `hang_up`. Returns its address and the count of connections it accepted.
async fn instance(
    chunked: bool,
    hang_up: bool,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    let (method, used, length, te) = loop {
                        let mut h = [httparse::EMPTY_HEADER; 32];
                        let mut r = httparse::Request::new(&mut h);
                        if let Ok(httparse::Status::Complete(n)) = r.parse(&buf) {
                            let get = |k: &str| {
                                r.headers
                                    .iter()
                                    .find(|x| x.name.eq_ignore_ascii_case(k))
                                    .map(|x| String::from_utf8_lossy(x.value).to_string())
                            };
                            let length = get("content-length").map(|v| v.parse::<usize>().unwrap());
                            let te = get("transfer-encoding").is_some();
                            break (r.method.unwrap().to_string(), n, length, te);
                        }
                        if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    };
                    buf.advance(used);
                    let end = |b: &BytesMut| {
                        if te {
                            b.ends_with(b"0\r\n\r\n").then_some(b.len())
                        } else {
                            (b.len() >= length.unwrap_or(0)).then_some(length.unwrap_or(0))
                        }
                    };
                    while end(&buf).is_none() {
                        if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    let body = buf.split_to(end(&buf).unwrap());
                    let answer = format!("{method} {}", String::from_utf8_lossy(&body));
                    let out = if chunked {
                        let (a, b) = answer.split_at(answer.len() / 2);
                        format!(
                            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                            a.len(),
                            b.len()
                        )
                    } else {
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        )
                    };
                    if s.write_all(out.as_bytes()).await.is_err() || hang_up {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// A router with one instance, `addr`, taking all traffic; its instance and their window.
async fn router_to(
    addr: SocketAddr,
) -> (
    Arc<crate::local::router::Router>,
    Arc<crate::local::router::Backend>,
    Arc<crate::local::metrics::Window>,
) {
    router_with(addr, Duration::from_secs(5)).await
}

/// [`router_to`], with the router's timeout `timeout`.
async fn router_with(
    addr: SocketAddr,
    timeout: Duration,
) -> (
    Arc<crate::local::router::Router>,
    Arc<crate::local::router::Backend>,
    Arc<crate::local::metrics::Window>,
) {
    use crate::local::router::{Backend, Router};
    let r = Router::start("web", "127.0.0.1:0".parse().unwrap(), timeout)
        .await
        .unwrap();
    let b = Arc::new(Backend::new("web@1#0".into(), addr));
    b.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let key = crate::provider::RevisionKey("web@1".into());
    let window = Arc::new(crate::local::metrics::Window::new());
    r.set_backends(&key, vec![b.clone()], window.clone());
    r.set_weights(&[(key, 100)]);
    (r, b, window)
}

/// Whether `backend` comes to have `n` requests in flight within 5 s.
async fn busy_with(backend: &crate::local::router::Backend, n: usize) -> bool {
    use std::sync::atomic::Ordering;
    for _ in 0..250 {
        if backend.inflight.load(Ordering::Relaxed) == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Ok(httparse::Status::Complete((used, size))) = httparse::parse_chunk_size(b) else {
            panic!("not chunked: {}", String::from_utf8_lossy(b));
        };
        let size = size as usize;
        b = &b[used..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        assert_eq!(&b[size..size + 2], b"\r\n");
        b = &b[size + 2..];
    }
}

/// Send raw bytes on a new connection; the whole response, read to its close.
async fn raw(router: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(router).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn the_router_keeps_one_connection_to_an_instance_across_requests() {
    let (addr, accepted) = instance(false, false).await;
    let (router, _, _) = router_to(addr).await;
    let client = crate::net::client().unwrap();
    for i in 0..5 {
        let r = client
            .post(format!("http://{}/", router.listen))
            .body(format!("n{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), format!("POST n{i}"));
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    router.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_connection_the_instance_closed_is_replaced_without_failing_a_request() {
    let (addr, accepted) = instance(false, true).await;
    let (router, _, _) = router_to(addr).await;
    let client = crate::net::client().unwrap();
    for i in 0..4 {
        // Sent at once: the closed connection may not be known closed yet (a GET is sent again).
        let r = client
            .get(format!("http://{}/", router.listen))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {i}");
        assert_eq!(r.text().await.unwrap(), "GET ");
        // After a pause the close has been seen: a POST is not sent on that connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = client
            .post(format!("http://{}/", router.listen))
            .body("once")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "POST {i}");
        assert_eq!(r.text().await.unwrap(), "POST once");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 8);
    router.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn chunked_bodies_pass_through_the_router_both_ways() {
    let (addr, _) = instance(true, false).await;
    let (router, _, _) = router_to(addr).await;
    let out = raw(
        router.listen,
        "POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(head.contains("transfer-encoding: chunked"), "{out}");
    // The client's answer, de-chunked, is the instance's: the method and the body it was
    // sent, itself chunked, which de-chunked is what the client sent.
    let answer = dechunk(body.as_bytes());
    let sent = answer.strip_prefix(b"POST ").expect("the method first");
    assert_eq!(dechunk(sent), b"abcde");
    let client = crate::net::client().unwrap();
    let r = client
        .get(format!("http://{}/", router.listen))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "GET ");
    router.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn content_lengths_are_digits_or_a_list_of_the_same() {
    assert_eq!(content_length(b"12"), Some(12));
    assert_eq!(content_length(b"5, 5"), Some(5));
    for bad in [
        &b"+5"[..],
        b"-1",
        b"5, 6",
        b"",
        b" ",
        b"0x10",
        b"99999999999999999999",
    ] {
        assert_eq!(
            content_length(bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // A normalised value goes on, not the instance's text.
    let p = parse("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n", false)
        .unwrap()
        .unwrap();
    assert_eq!(p.headers["content-length"], "3");
    // Both lengths: read as chunked, and the connection is not used again.
    let p = parse(
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
        false,
    )
    .unwrap()
    .unwrap();
    assert_eq!((p.framing, p.reusable), (State::Chunk(Chunk::Size), false));
}

#[tokio::test]
async fn a_chunk_without_a_size_is_an_error_not_the_end() {
    let idle = Arc::new(Idle::default());
    let (ours, theirs) = pair().await;
    dribble(theirs, vec!["3\r\nabc\r\n\r\n0\r\n\r\n"], false);
    let b = body(ours, State::Chunk(Chunk::Size), true, &idle);
    assert!(b.collect().await.is_err());
    assert!(idle.is_empty());
}

/// An instance that reads each connection's first request head (none of its body), then
/// writes `pieces` in turn, each after its pause, and keeps the socket open 3 s (so the
/// router's writes are not reset). Returns its address and the connections it accepted.
async fn scripted(
    pieces: &'static [(u64, &'static [u8])],
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
                for (pause_ms, piece) in pieces {
                    tokio::time::sleep(Duration::from_millis(*pause_ms)).await;
                    let _ = s.write_all(piece).await;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn an_answer_before_the_upload_ends_reaches_the_client() {
    // The instance refuses at the head, reading none of the body.
    let (addr, _) = scripted(&[(
        0,
        b"HTTP/1.1 413 Too Large\r\ncontent-length: 4\r\n\r\nbig!",
    )])
    .await;
    let (router, _, window) = router_to(addr).await;
    let client = crate::net::client().unwrap();
    let r = client
        .post(format!("http://{}/", router.listen))
        .body(vec![b'x'; 16 << 20])
        .send()
        .await;
    let r = r.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.text().await.unwrap(), "big!");
    // Counted for the revision as the answer it was: one request, not a server or transport
    // error.
    assert_eq!(window.totals(), (1, 0, 0));
    router.shutdown(Duration::from_secs(1)).await;
}

/// A client that gives up in the middle of its upload says nothing about the instance: the
/// revision's analysis does not count it as a transport error.
#[tokio::test]
async fn a_client_that_abandons_its_upload_is_not_held_against_the_instance() {
    let (addr, _) = instance(false, false).await;
    let (router, backend, window) = router_to(addr).await;
    let mut c = TcpStream::connect(router.listen).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 100000\r\n\r\n0123456789")
        .await
        .unwrap();
    assert!(
        busy_with(&backend, 1).await,
        "the request never reached the instance"
    );
    drop(c);
    assert!(
        busy_with(&backend, 0).await,
        "the instance is still counted busy"
    );
    assert_eq!(window.totals(), (0, 0, 0));
    // The instance still serves the next request.
    let r = raw(
        router.listen,
        "GET / HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(window.totals(), (1, 0, 0));
    router.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bytes_left_on_an_idle_connection_are_not_taken_for_the_next_answer() {
    use std::sync::atomic::Ordering;
    // Answers each GET, then sends a 408 on its own a moment later.
    let (addr, accepted) = scripted(&[
        (0, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        (
            20,
            b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n",
        ),
    ])
    .await;
    let (router, _, _) = router_to(addr).await;
    let client = crate::net::client().unwrap();
    for _ in 0..3 {
        let r = client
            .get(format!("http://{}/", router.listen))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    router.shutdown(Duration::from_secs(1)).await;
}

/// An instance that stops sending in the middle of a body is cut off after the router's
/// timeout: the client sees its connection end short of the length, and the instance is no
/// longer counted as busy with it.
#[tokio::test]
async fn a_body_that_stalls_is_cut_off_after_the_routers_timeout() {
    // Ten bytes of a hundred, then nothing for 10 s.
    let (addr, _) = scripted(&[
        (
            0,
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
        ),
        (10_000, b""),
    ])
    .await;
    let (router, backend, _) = router_with(addr, Duration::from_secs(1)).await;
    let mut c = TcpStream::connect(router.listen).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), c.read_to_end(&mut got))
        .await
        .expect("the router kept the stalled response open")
        .ok();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0123456789"), "{text}");
    assert!(
        took >= Duration::from_millis(900),
        "cut off early: {took:?}"
    );
    // The instance itself would hang up only after 13 s.
    assert!(took < Duration::from_secs(5), "not cut off: {took:?}");
    assert!(
        busy_with(&backend, 0).await,
        "the instance is still counted busy"
    );
    router.shutdown(Duration::from_secs(1)).await;
}

/// A client that uploads slowly but steadily is served, however long the whole upload takes:
/// the router's timeout limits each wait, not the request; and the time spent waiting for the
/// client is not the instance's response time.
#[tokio::test]
async fn a_slow_steady_upload_is_served_and_not_held_against_the_instance() {
    let (addr, _) = instance(false, false).await;
    let (router, _, window) = router_with(addr, Duration::from_secs(1)).await;
    let mut c = TcpStream::connect(router.listen).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nhost: web\r\nconnection: close\r\ncontent-length: 16\r\n\r\n")
        .await
        .unwrap();
    // Sixteen bytes over 1.6 s, longer than the timeout.
    for b in b"0123456789abcdef" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.write_all(&[*b]).await.unwrap();
    }
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("POST 0123456789abcdef"), "{text}");
    assert_eq!(window.totals(), (1, 0, 0));
    let m = window.metrics(Duration::from_secs(60));
    let p99 = m.get("response_time_p99").copied().unwrap_or(f64::MAX);
    assert!(
        p99 < 1000.0,
        "the upload's 1.6 s counted as the instance's: {p99} ms"
    );
    router.shutdown(Duration::from_secs(1)).await;
}

/// A client that goes away while the instance is still thinking takes its request with it:
/// the instance is no longer counted as busy with it (which holds up its retirement).
#[tokio::test]
async fn a_client_that_leaves_while_waiting_frees_the_instance() {
    // Reads the request, then says nothing for 10 s.
    let (addr, _) = scripted(&[(10_000, b"")]).await;
    let (router, backend, _) = router_to(addr).await;
    let mut c = TcpStream::connect(router.listen).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
        .await
        .unwrap();
    assert!(
        busy_with(&backend, 1).await,
        "the request never reached the instance"
    );
    drop(c);
    assert!(
        busy_with(&backend, 0).await,
        "the instance is still counted busy"
    );
    router.shutdown(Duration::from_secs(1)).await;
}

/// A client that stops sending its body gets 408 after the router's timeout, and the
/// instance is not blamed; an instance that takes the request and never answers gets the
/// client a 504, counted against it.
#[tokio::test]
async fn an_idle_client_gets_408_and_a_silent_instance_504() {
    let (addr, _) = instance(false, false).await;
    let (router, _, window) = router_with(addr, Duration::from_millis(300)).await;
    let mut c = TcpStream::connect(router.listen).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 8\r\n\r\n01")
        .await
        .unwrap();
    let mut got = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(window.totals(), (0, 0, 0));
    router.shutdown(Duration::from_secs(1)).await;

    // Reads the request, then says nothing for 10 s.
    let (addr, _) = scripted(&[(10_000, b"")]).await;
    let (router, _, window) = router_with(addr, Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let r = raw(
        router.listen,
        "GET / HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 504"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(window.totals(), (1, 0, 1));
    router.shutdown(Duration::from_secs(1)).await;
}
