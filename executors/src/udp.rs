//! Non-blocking UDP system calls for relay hot paths, beside glommio's sockets.
//!
//! glommio's UDP sockets complete one datagram per io_uring operation and wake the task once per
//! datagram. A relay that has just been woken for one datagram usually has more queued; these
//! helpers move them in one system call (`recvmmsg`/`sendmmsg`) without waiting, and send a
//! single datagram without a round trip through the ring.
//!
//! Contract:
//! * Every call passes `MSG_DONTWAIT`; none blocks, none changes the socket's flags (glommio's
//!   own operations on the same descriptor keep working).
//! * `WouldBlock` means "nothing (more) to do now"; callers treat it as an empty result or a
//!   dropped datagram (UDP may drop; a relay must never stall on one peer).
//! * Buffers are the caller's and reused: nothing here allocates per datagram.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Sends `data` on a connected socket. `Ok(n)` bytes sent; `Err(WouldBlock)` when the socket
/// buffer is full.
pub fn send_nowait(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is a valid readable buffer of `data.len()` bytes for the call's duration.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    /// The kernel form of `addr`.
    pub fn new(addr: SocketAddr) -> RawAddr {
        // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    /// Back to a `SocketAddr`; `None` for a family other than IPv4/IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Sends `data` to `to` on an unconnected socket without blocking.
pub fn send_to_nowait(fd: RawFd, data: &[u8], to: &RawAddr) -> io::Result<usize> {
    // SAFETY: `data` is readable for its length; `to.storage` is a valid address of `to.len`.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&to.storage as *const libc::sockaddr_storage).cast(),
            to.len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Up to [`Batch::CAPACITY`] datagram buffers for one `recvmmsg`/`sendmmsg`, allocated once.
pub struct Batch {
    bufs: Vec<Box<[u8]>>,
    lens: [usize; Self::CAPACITY],
    addrs: [MaybeUninit<libc::sockaddr_storage>; Self::CAPACITY],
    addr_lens: [libc::socklen_t; Self::CAPACITY],
    count: usize,
}

impl Batch {
    /// Datagrams per system call (Linux's UIO_MAXIOV bounds it far above this).
    pub const CAPACITY: usize = 32;

    /// A batch of [`Batch::CAPACITY`] buffers of `buf_len` bytes each.
    pub fn new(buf_len: usize) -> Batch {
        Batch {
            bufs: (0..Self::CAPACITY)
                .map(|_| vec![0u8; buf_len].into_boxed_slice())
                .collect(),
            lens: [0; Self::CAPACITY],
            addrs: [MaybeUninit::uninit(); Self::CAPACITY],
            addr_lens: [0; Self::CAPACITY],
            count: 0,
        }
    }

    /// Datagrams held after the last receive.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i` of the last receive and its source (`None` for an unknown family).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let data = &self.bufs[i][..self.lens[i]];
        // SAFETY: `recv` initialised `addrs[i]` for every i < count (zeroed before the call).
        let storage = unsafe { self.addrs[i].assume_init() };
        let raw = RawAddr {
            storage,
            len: self.addr_lens[i],
        };
        (data, raw.to_socket_addr())
    }

    /// Receives up to [`Batch::CAPACITY`] queued datagrams without waiting. `Ok(0)` when none
    /// were queued. Datagrams longer than a buffer are truncated (as with `recvfrom`).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: all-zero iovec/mmsghdr values are valid; every pointer set below stays valid
        // (it points into `self`) until `recvmmsg` returns.
        let mut iovs: [libc::iovec; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; Self::CAPACITY] = unsafe { std::mem::zeroed() };
        for i in 0..Self::CAPACITY {
            self.addrs[i] = MaybeUninit::zeroed();
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = self.bufs[i].len();
            hdrs[i].msg_hdr.msg_name = self.addrs[i].as_mut_ptr().cast();
            hdrs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` holds CAPACITY valid headers whose buffers live in `self`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                Self::CAPACITY as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = hdr.msg_len as usize;
            self.addr_lens[i] = hdr.msg_hdr.msg_namelen;
        }
        self.count = n;
        Ok(n)
    }
}

/// Sends every datagram of `datagrams` to `to` with as few `sendmmsg` calls as possible,
/// without blocking. Returns how many were sent; the rest hit a full socket buffer (dropped).
pub fn send_all_to_nowait(fd: RawFd, datagrams: &[&[u8]], to: &RawAddr) -> io::Result<usize> {
    send_batch_nowait(fd, datagrams, Some(to))
}

/// [`send_all_to_nowait`] on a connected socket (its peer is the destination).
pub fn send_all_nowait(fd: RawFd, datagrams: &[&[u8]]) -> io::Result<usize> {
    send_batch_nowait(fd, datagrams, None)
}

fn send_batch_nowait(fd: RawFd, datagrams: &[&[u8]], to: Option<&RawAddr>) -> io::Result<usize> {
    const MAX: usize = Batch::CAPACITY;
    let mut sent = 0;
    while sent < datagrams.len() {
        let chunk = &datagrams[sent..datagrams.len().min(sent + MAX)];
        // SAFETY: all-zero iovec/mmsghdr values are valid; the pointers set below point into
        // `chunk` and `to`, which outlive the call; the kernel only reads them.
        let mut iovs: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
        for (i, d) in chunk.iter().enumerate() {
            iovs[i].iov_base = d.as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = d.len();
            if let Some(to) = to {
                hdrs[i].msg_hdr.msg_name =
                    (&to.storage as *const libc::sockaddr_storage) as *mut libc::c_void;
                hdrs[i].msg_hdr.msg_namelen = to.len;
            }
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs[..chunk.len()]` are valid headers (see above).
        let n = unsafe {
            libc::sendmmsg(
                fd,
                hdrs.as_mut_ptr(),
                chunk.len() as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(sent);
            }
            if sent > 0 {
                return Ok(sent);
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(sent);
        }
        sent += n as usize;
    }
    Ok(sent)
}

/// Waits, through the executor's io_uring, until a UDP socket has a datagram (or an error)
/// queued, without taking it. A relay then takes everything queued with [`Batch::recv`].
///
/// Why not glommio's `recv_from`: it first tries a non-blocking `recvmsg` (a failed system call
/// on every wake-up of a relay that has drained its queue) and then submits its ring entry at
/// once (one more `io_uring_enter`), and completes one datagram per wake-up. This waiter
/// submits one `POLL_ADD` (the vendored glommio's `TcpStream::readable`), which glommio batches
/// into the ring flush it does anyway before it parks; the kernel completes it when a datagram
/// arrives. Nothing is read, and no speculative non-blocking `recv` is made first.
///
/// glommio's UDP socket type has no readiness wait of its own, so the waiter holds a duplicate of
/// the descriptor in glommio's stream type, which has one. The duplicate only observes: it never
/// reads, writes or changes the socket (file status flags are shared and untouched). It works
/// for stream sockets too (the RTMP splice relay waits on its origin socket with it).
/// Dropping the waiter closes only the duplicate.
pub struct Readable {
    probe: glommio::net::TcpStream,
}

impl std::fmt::Debug for Readable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::fd::AsRawFd;
        f.debug_struct("Readable")
            .field("fd", &self.probe.as_raw_fd())
            .finish()
    }
}

impl Readable {
    /// A waiter for `fd`, which must be a UDP socket; call on the executor that waits.
    pub fn new(fd: RawFd) -> io::Result<Readable> {
        use std::os::fd::FromRawFd;
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open returns a new
        // descriptor that this waiter alone owns (and closes).
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let probe = unsafe { glommio::net::TcpStream::from_raw_fd(dup) };
        Ok(Readable { probe })
    }

    /// Resolves when the socket is readable (`Ok`: a datagram queued, or for a stream socket,
    /// bytes or the end of the stream), or with the socket's pending error (an ICMP error on a
    /// connected socket), which this also clears.
    pub async fn wait(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let revents = self.probe.readable().await.map_err(io::Error::from)?;
        if revents & libc::POLLERR as usize != 0 {
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into `err`, a c_int we own.
            let r = unsafe {
                libc::getsockopt(
                    self.probe.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            if r == 0 && err != 0 {
                return Err(io::Error::from_raw_os_error(err));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn raw_addr_round_trips() {
        for a in [
            "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
            "[::1]:443".parse().unwrap(),
        ] {
            assert_eq!(RawAddr::new(a).to_socket_addr(), Some(a));
        }
    }

    #[test]
    fn batch_receive_and_send_on_loopback() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_b = RawAddr::new(b.local_addr().unwrap());
        let mut batch = Batch::new(1500);
        assert_eq!(batch.recv(b.as_raw_fd()).unwrap(), 0, "nothing queued yet");
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + i as usize]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        assert_eq!(send_all_to_nowait(a.as_raw_fd(), &refs, &to_b).unwrap(), 40);
        let mut got = Vec::new();
        while got.len() < 40 {
            let n = batch.recv(b.as_raw_fd()).unwrap();
            assert!(n > 0, "datagrams lost on loopback");
            for i in 0..n {
                let (d, from) = batch.get(i);
                assert_eq!(from, Some(a.local_addr().unwrap()));
                got.push(d.to_vec());
            }
        }
        assert_eq!(got, payloads);
        assert_eq!(send_to_nowait(a.as_raw_fd(), b"yo", &to_b).unwrap(), 2);
        a.connect(b.local_addr().unwrap()).unwrap();
        assert_eq!(send_nowait(a.as_raw_fd(), b"hi").unwrap(), 2);
        assert_eq!(send_all_nowait(a.as_raw_fd(), &[b"x1", b"x2"]).unwrap(), 2);
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"yo");
        assert_eq!(b.recv(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"hi");
        for want in [b"x1", b"x2"] {
            assert_eq!(b.recv(&mut buf).unwrap(), 2);
            assert_eq!(&buf[..2], want);
        }
    }
}
