//! What the UDP relays (SRT, WebRTC) share: the connected origin socket and the batched
//! origin → client forwarding after a wake-up.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use executors::udp::{send_all_to_nowait, Batch, RawAddr};

/// A UDP socket on an ephemeral port of `origin`'s family, connected to it. No SO_REUSEPORT
/// (glommio's `bind` would set it): two ephemeral binds must never share a port.
pub fn dial_connected(origin: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let any: SocketAddr = if origin.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let sock = std::net::UdpSocket::bind(any)?;
    sock.connect(origin)?;
    Ok(sock)
}

/// What [`drain_forward`] moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drained {
    pub datagrams: u64,
    pub bytes: u64,
    /// `sendmmsg` calls.
    pub writes: u64,
    /// `last` said a datagram ends the session.
    pub last_seen: bool,
}

/// Forwards what is queued on `from_fd` to `to` through `via_fd`, one `recvmmsg` and one
/// `sendmmsg` per batch, until the queue is empty (called after
/// [`executors::udp::Readable::wait`] said it is not). `last(datagram)` marks a datagram that
/// ends the session (SRT SHUTDOWN, a DTLS alert): forwarding stops after its batch.
pub fn drain_forward(
    batch: &mut Batch,
    from_fd: RawFd,
    via_fd: RawFd,
    to: &RawAddr,
    last: impl Fn(&[u8]) -> bool,
) -> Drained {
    let mut d = Drained::default();
    while !d.last_seen {
        let k = batch.recv(from_fd).unwrap_or(0);
        if k == 0 {
            break;
        }
        let mut list: [&[u8]; Batch::CAPACITY] = [&[]; Batch::CAPACITY];
        for (i, slot) in list.iter_mut().enumerate().take(k) {
            *slot = batch.get(i).0;
            d.bytes += slot.len() as u64;
            d.last_seen |= last(slot);
        }
        let _ = send_all_to_nowait(via_fd, &list[..k], to);
        d.datagrams += k as u64;
        d.writes += 1;
        if k < Batch::CAPACITY {
            break;
        }
    }
    d
}
