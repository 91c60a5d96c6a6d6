//! Listening sockets: bound here, or inherited from a parent that bound them.
//!
//! Probing for a free port and binding it later (in another process) races with anything else on
//! the machine that binds ports in between. So the embedded stack binds every listener itself and
//! passes the sockets to its children by inheritance (`LISTEN_FD` / `ADMIN_FD`, the way systemd
//! socket activation does it); a service started without those variables binds its configured
//! address, as in a container. A bind that fails because the port is taken says who holds it.
//!
//! Accepted connections get `TCP_NODELAY` ([`set_nodelay`]): small request/response exchanges
//! must not wait for Nagle's algorithm to meet the peer's delayed ACK (a 40 ms stall).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::{BorrowedFd, FromRawFd, RawFd},
    path::Path,
};

use anyhow::{Context, Result, bail};
use nix::{
    fcntl::{FcntlArg, FdFlag, fcntl},
    sys::socket::{getsockopt, sockopt},
};

/// Pending connections the kernel queues for a listener. Larger than std's default (128) because
/// an inherited socket outlives its service: while the supervisor restarts a killed service, new
/// connections wait here instead of being refused.
pub const BACKLOG: u32 = 1024;

/// The process that holds a listening port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The process's command name (`/proc/PID/comm`).
    pub command: String,
}

/// A bind refused because the address is taken, with the holder when `/proc` tells it.
#[derive(Debug, thiserror::Error)]
pub struct PortInUse {
    pub addr: SocketAddr,
    pub holder: Option<Holder>,
}

impl fmt::Display for PortInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.holder {
            Some(h) => write!(
                f,
                "{} is in use by pid {} ({})",
                self.addr, h.pid, h.command
            ),
            // Another user's process or another network namespace: /proc does not say.
            None => write!(f, "{} is in use (holder not found)", self.addr),
        }
    }
}

/// Why [`bind`] failed: the address is taken (with its holder), or the socket call that failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    InUse(#[from] PortInUse),
    /// `action` is what failed, e.g. `binding` or `listening on`.
    #[error("{action} {addr}")]
    Socket {
        action: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds a listener on `addr` (port 0: the kernel picks a free one) with `SO_REUSEADDR`, as
/// std's bind does, and a [`BACKLOG`]-long queue. A taken address is [`BindError::InUse`].
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BindError> {
    let failed = |action: &'static str| {
        move |source| BindError::Socket {
            action,
            addr,
            source,
        }
    };
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(failed("creating a TCP socket for"))?;
    socket
        .set_reuseaddr(true)
        .map_err(failed("setting SO_REUSEADDR for"))?;
    if let Err(e) = socket.bind(addr) {
        if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 {
            return Err(PortInUse {
                addr,
                holder: holder_of(addr),
            }
            .into());
        }
        return Err(failed("binding")(e));
    }
    let listener = socket.listen(BACKLOG).map_err(failed("listening on"))?;
    // Leaves tokio's reactor: whoever serves it registers it again (here or in a child).
    listener
        .into_std()
        .map_err(failed("detaching the listener on"))
}

/// Turns Nagle's algorithm off on an accepted connection (for `axum::serve::ListenerExt::tap_io`).
/// A failure only costs latency, so it is logged, not fatal.
pub fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!(error = %e, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// A tokio listener on the inherited socket `fd` if given (named by `fd_var`), else bound on
/// `addr` (named by `addr_var`). Must run inside a tokio runtime.
pub fn open(
    fd: Option<RawFd>,
    fd_var: &str,
    addr: SocketAddr,
    addr_var: &str,
) -> Result<tokio::net::TcpListener> {
    let std = match fd {
        Some(fd) => adopt(fd).with_context(|| format!("adopting {fd_var}={fd}"))?,
        None => bind(addr).with_context(|| format!("binding {addr_var} {addr}"))?,
    };
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std).context("registering the listener")
}

/// Takes ownership of the inherited listening socket `fd`, after checking that it is one (a
/// wrong number in the environment must not make us close or read some other file).
fn adopt(fd: RawFd) -> Result<std::net::TcpListener> {
    if fd < 3 {
        bail!("{fd} is stdin, stdout or stderr, not an inherited socket");
    }
    // SAFETY: only borrowed for the checks below; nothing is closed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match getsockopt(&borrowed, sockopt::AcceptConn) {
        Ok(true) => {}
        Ok(false) => bail!("fd {fd} is a socket but not listening"),
        Err(e) => bail!("fd {fd} is not an open socket: {e}"),
    }
    // The parent cleared close-on-exec for us to inherit it; set it back so that nothing this
    // process might start inherits the listener in turn.
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .with_context(|| format!("setting close-on-exec on fd {fd}"))?;
    // SAFETY: the fd is an open listening socket handed to this process, which nothing else in
    // it owns; from here the TcpListener owns (and eventually closes) it. Closing it here does
    // not close the parent's copy, so the socket outlives this process.
    Ok(unsafe { std::net::TcpListener::from_raw_fd(fd) })
}

/// Clears close-on-exec on `fds` so that a program about to be exec'd inherits them. Meant for
/// `CommandExt::pre_exec`, i.e. in the forked child only: the parent's descriptors keep the flag,
/// so other children spawned at the same time do not inherit them. Only calls `fcntl`, which is
/// async-signal-safe, and does not allocate.
pub fn inherit_in_child(fds: &[RawFd]) -> std::io::Result<()> {
    for &fd in fds {
        // SAFETY: `fds` are descriptors the parent keeps open while it spawns.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
    }
    Ok(())
}

/// The process holding a TCP listener that conflicts with `addr` (same port, same address or a
/// wildcard one), from `/proc/net/tcp{,6}` and the `/proc/PID/fd` links.
pub fn holder_of(addr: SocketAddr) -> Option<Holder> {
    let proc = Path::new("/proc");
    let inodes: Vec<u64> = ["net/tcp", "net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(proc.join(table)).ok())
        .flat_map(|text| listening_inodes(&text, addr))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir(proc).ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Other users' processes are unreadable without privileges: skip them.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|link| targets.iter().any(|t| link.as_os_str() == t.as_str()))
        });
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            return Some(Holder { pid, command });
        }
    }
    None
}

/// Inodes of the listening sockets in a `/proc/net/tcp` or `tcp6` table that conflict with `addr`.
fn listening_inodes(table: &str, addr: SocketAddr) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != LISTEN {
                return None;
            }
            let (ip, port) = local.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = proc_ip(ip)?;
            let conflicts = port == addr.port()
                && (ip == addr.ip() || ip.is_unspecified() || addr.ip().is_unspecified());
            conflicts.then(|| inode.parse().ok()).flatten()
        })
        .collect()
}

/// An address as `/proc/net/tcp{,6}` prints it: 32-bit words in hex, each in host byte order.
fn proc_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| {
        u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
            .ok()
            .map(u32::to_ne_bytes)
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A v4-mapped listener (`::ffff:127.0.0.1`) conflicts like its v4 address.
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[tokio::test]
    async fn a_taken_port_names_this_process_as_holder() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let err = bind(addr).unwrap_err();
        let BindError::InUse(in_use) = &err else {
            panic!("a PortInUse error, not {err:?}")
        };
        assert_eq!(in_use.addr, addr);
        let holder = in_use.holder.as_ref().expect("the holder is found");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(
            err.to_string(),
            format!(
                "{addr} is in use by pid {} ({})",
                std::process::id(),
                holder.command
            )
        );
    }

    #[tokio::test]
    async fn an_inherited_socket_is_adopted_and_accepts() {
        let parent = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = parent.local_addr().unwrap();
        // What a child gets: the same socket under another descriptor number.
        let dup = nix::unistd::dup(&parent).unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(dup);
        let listener = open(Some(fd), "LISTEN_FD", addr, "LISTEN_ADDR").unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);
        let flags = fcntl(&listener, FcntlArg::F_GETFD).unwrap();
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        client.unwrap();
        accepted.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_descriptor_is_refused_without_being_closed() {
        let file = tempfile::tempfile().unwrap();
        let fd = file.as_raw_fd();
        let err = open(
            Some(fd),
            "LISTEN_FD",
            "127.0.0.1:0".parse().unwrap(),
            "LISTEN_ADDR",
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!("LISTEN_FD={fd}")),
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("not an open socket"), "{err:#}");
        // Still ours, still open.
        assert!(fcntl(&file, FcntlArg::F_GETFD).is_ok());
        assert!(
            open(
                Some(1),
                "ADMIN_FD",
                "127.0.0.1:0".parse().unwrap(),
                "ADMIN_ADDR"
            )
            .is_err()
        );
    }

    #[test]
    fn proc_addresses_parse_in_host_byte_order() {
        let lo = u32::from_ne_bytes([127, 0, 0, 1]);
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: {lo:08X}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0\n   1: {lo:08X}:1F91 {lo:08X}:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0\n   2: 00000000:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0\n"
        );
        let at = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(listening_inodes(&table, at(8080)), vec![4242]);
        // An established connection on a port is not a listener.
        assert!(listening_inodes(&table, at(8081)).is_empty());
        // 0.0.0.0:8082 blocks 127.0.0.1:8082.
        assert_eq!(listening_inodes(&table, at(8082)), vec![4444]);
        let mapped = {
            let w = |b: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(b));
            format!(
                "{}{}{}{}",
                w([0; 4]),
                w([0; 4]),
                w([0, 0, 0xff, 0xff]),
                w([127, 0, 0, 1])
            )
        };
        assert_eq!(proc_ip(&mapped), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
