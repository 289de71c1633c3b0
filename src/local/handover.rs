//! Handing the host's sockets from one worker to the next.
//!
//! The host runs as two processes: a small supervisor (`cutover host supervise`) and the worker
//! it starts (`cutover host serve`), which does everything else. The supervisor holds a copy of
//! every socket the service depends on (the API socket `host.sock` and each router's listen
//! socket) so that none of them closes when the worker dies; the next worker inherits them.
//!
//! Owns: the messages between worker and supervisor (JSON over a `SOCK_SEQPACKET` socketpair,
//! a listen socket riding along as `SCM_RIGHTS`) and the environment that tells a worker which
//! descriptors it inherits. Must not touch: what the sockets serve.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

/// The worker's end of its socketpair with the supervisor.
pub const CHANNEL_ENV: &str = "CUTOVER_SUPERVISOR_FD";
/// The API listener (`host.sock`) the worker inherits.
pub const API_ENV: &str = "CUTOVER_HOST_API_FD";
/// The routers' listen sockets the worker inherits: a JSON object, component -> fd.
pub const LISTENERS_ENV: &str = "CUTOVER_HOST_LISTENERS";

/// Longest message (the JSON of one [`Message`]).
const MAX_MESSAGE: usize = 64 * 1024;

/// What a worker tells its supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Message {
    /// Keep the listen socket sent with this message for `component` (replacing any held).
    Hold { component: String },
    /// Close the socket held for `component` (its router is gone).
    Release { component: String },
    /// The worker serves: a later death is a crash to recover from.
    Ready,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A connected pair of `SOCK_SEQPACKET` sockets (message boundaries kept), close-on-exec.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: socketpair succeeded, so both are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Set or clear close-on-exec.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we borrow; no memory is passed.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) })?;
    let flags = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) }).map(|_| ())
}

/// Send one message, with `fd` attached if given.
pub fn send(sock: BorrowedFd<'_>, msg: &Message, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let mut iov = libc::iovec {
        iov_base: body.as_ptr() as *mut libc::c_void,
        iov_len: body.len(),
    };
    // Room for one descriptor, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        hdr.msg_controllen = space;
        // SAFETY: msg_control points at `control`, large enough (64 bytes) for one cmsghdr
        // holding one int; CMSG_FIRSTHDR/CMSG_DATA stay inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd.as_raw_fd());
        }
    }
    // SAFETY: hdr points at live buffers (body, control) for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive one message without blocking: `Ok(None)` when the peer has gone, an error of kind
/// `WouldBlock` when nothing is pending. A descriptor that came along is returned close-on-exec.
pub fn recv(sock: BorrowedFd<'_>) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
    let mut body = vec![0u8; MAX_MESSAGE];
    let mut iov = libc::iovec {
        iov_base: body.as_mut_ptr() as *mut libc::c_void,
        iov_len: body.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    hdr.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: hdr points at live buffers (body, control) for the duration of the call.
    let n = unsafe {
        libc::recvmsg(
            sock.as_raw_fd(),
            &mut hdr,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // Take ownership of every descriptor that came, so none leaks whatever the message says.
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: the kernel filled `control` up to msg_controllen; CMSG_FIRSTHDR/NXTHDR walk it
    // within those bounds, and each SCM_RIGHTS payload is an array of ints it installed for us.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let len = (*c).cmsg_len - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    if n == 0 && fds.is_empty() {
        return Ok(None);
    }
    if hdr.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated message",
        ));
    }
    let msg: Message = serde_json::from_slice(&body[..n as usize])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds.into_iter().next())))
}

/// The environment that hands `api`, `listeners` and the worker's end of `channel` to a worker
/// (the descriptors must survive exec: see [`set_cloexec`]).
pub fn env_for(
    channel: RawFd,
    api: RawFd,
    listeners: &BTreeMap<String, RawFd>,
) -> Vec<(String, String)> {
    vec![
        (CHANNEL_ENV.into(), channel.to_string()),
        (API_ENV.into(), api.to_string()),
        (
            LISTENERS_ENV.into(),
            serde_json::to_string(listeners).unwrap_or_else(|_| "{}".into()),
        ),
    ]
}

/// What a worker inherits from its supervisor.
#[derive(Debug, Default)]
pub struct Inherited {
    /// The worker's end of the socketpair; `None`: no supervisor (a plain `host serve`).
    pub channel: Option<OwnedFd>,
    /// The API listener, bound to `host.sock` by the supervisor.
    pub api: Option<OwnedFd>,
    /// Each component's listen socket.
    pub listeners: BTreeMap<String, OwnedFd>,
}

/// A descriptor named by the environment, if it is open; made close-on-exec so instances do
/// not inherit it.
fn claim(raw: &str) -> Option<OwnedFd> {
    let fd: RawFd = raw.trim().parse().ok()?;
    if fd < 3 {
        return None;
    }
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the supervisor put this descriptor in our table for us alone and nothing in this
    // process has taken it (the variables are read once, then removed).
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(owned.as_fd(), true).ok()?;
    Some(owned)
}

impl Inherited {
    /// Read the descriptors named by the environment and remove the variables (call before any
    /// thread starts: it changes the process environment).
    pub fn take_from_env() -> Inherited {
        let get = |k: &str| std::env::var(k).ok();
        let channel = get(CHANNEL_ENV).and_then(|v| claim(&v));
        let api = get(API_ENV).and_then(|v| claim(&v));
        let listeners = get(LISTENERS_ENV)
            .and_then(|v| serde_json::from_str::<BTreeMap<String, RawFd>>(&v).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(c, fd)| claim(&fd.to_string()).map(|fd| (c, fd)))
            .collect();
        for k in [CHANNEL_ENV, API_ENV, LISTENERS_ENV] {
            std::env::remove_var(k);
        }
        Inherited {
            channel,
            api,
            listeners,
        }
    }
}

/// The worker's line to its supervisor (absent when it runs alone).
#[derive(Debug)]
pub struct Supervisor {
    channel: OwnedFd,
}

impl Supervisor {
    pub fn new(channel: OwnedFd) -> Supervisor {
        Supervisor { channel }
    }

    fn tell(&self, msg: &Message, fd: Option<BorrowedFd<'_>>) {
        if let Err(e) = send(self.channel.as_fd(), msg, fd) {
            tracing::warn!("cannot tell the supervisor {msg:?}: {e}");
        }
    }

    /// Have the supervisor keep a copy of `component`'s listen socket.
    pub fn hold(&self, component: &str, listener: BorrowedFd<'_>) {
        self.tell(
            &Message::Hold {
                component: component.to_string(),
            },
            Some(listener),
        );
    }

    /// Have the supervisor close its copy of `component`'s listen socket.
    pub fn release(&self, component: &str) {
        self.tell(
            &Message::Release {
                component: component.to_string(),
            },
            None,
        );
    }

    pub fn ready(&self) {
        self.tell(&Message::Ready, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_listen_socket_sent_over_the_pair_accepts_for_the_receiver() {
        let (a, b) = socketpair().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let msg = Message::Hold {
            component: "web".into(),
        };
        send(a.as_fd(), &msg, Some(l.as_fd())).unwrap();
        send(a.as_fd(), &Message::Ready, None).unwrap();
        // The sender closes its own copy: the socket stays open through the received one.
        drop(l);
        let (got, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(got, msg);
        let fd = fd.expect("the descriptor came along");
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "received close-on-exec");
        let held = std::net::TcpListener::from(fd);
        assert_eq!(held.local_addr().unwrap(), addr);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let (mut s, _) = held.accept().unwrap();
        c.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        // Messages keep their boundaries; nothing more is pending; a closed peer is `None`.
        let (m, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(m, Message::Ready);
        assert!(fd.is_none());
        let e = recv(b.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert!(recv(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn garbage_on_the_pair_is_an_error_not_a_panic() {
        let (a, b) = socketpair().unwrap();
        // SAFETY: writing a byte buffer we own to a descriptor we own.
        let n = unsafe { libc::write(a.as_raw_fd(), b"{nope".as_ptr() as *const _, 5) };
        assert_eq!(n, 5);
        let e = recv(b.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_environment_names_the_descriptors_and_claims_only_open_ones() {
        let mut l = BTreeMap::new();
        l.insert("web".to_string(), 7);
        let env = env_for(5, 6, &l);
        assert_eq!(env[0], (CHANNEL_ENV.to_string(), "5".to_string()));
        assert_eq!(env[2].1, "{\"web\":7}");
        // Standard streams and closed descriptors are never claimed.
        assert!(claim("0").is_none());
        assert!(claim("nope").is_none());
        let (a, _b) = socketpair().unwrap();
        let raw = a.as_raw_fd();
        set_cloexec(a.as_fd(), false).unwrap();
        std::mem::forget(a);
        let claimed = claim(&raw.to_string()).expect("an open descriptor is claimed");
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(claimed.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }
}
