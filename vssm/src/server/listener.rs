//! Listening sockets. Each port is bound once, without SO_REUSEPORT, so a
//! second process on the same address fails to start instead of silently
//! taking half of the connections; the I/O threads accept on duplicates of
//! the one socket.

use crate::config::Config;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// Binds a non-blocking TCP listener on `addr` that no other socket may
/// share. SO_REUSEADDR only lets a restarted node bind while connections
/// of its previous run linger in TIME_WAIT.
pub fn bind_exclusive(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let bind = || -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_nodelay(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    bind().map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Every port of a node, bound before anything is served: a port that is
/// taken stops the start with its address in the error.
pub struct NodeListeners {
    /// The client API (8080).
    pub api: std::net::TcpListener,
    /// The plain-HTTP health check (8081).
    pub health: std::net::TcpListener,
    /// The cluster's sync and join ports (8082, 8083), when clustered.
    pub cluster: Option<ClusterListeners>,
}

/// The cluster's ports.
pub struct ClusterListeners {
    /// Sync (8082).
    pub sync: std::net::TcpListener,
    /// Join (8083).
    pub join: std::net::TcpListener,
}

impl NodeListeners {
    /// Binds every port `config` names.
    pub fn bind(config: &Config) -> std::io::Result<Self> {
        let at = |port| bind_exclusive(SocketAddr::new(config.bind_address, port));
        let ports = config.ports;
        let cluster = match config.cluster {
            Some(_) => Some(ClusterListeners { sync: at(ports.sync)?, join: at(ports.join)? }),
            None => None,
        };
        Ok(NodeListeners { api: at(ports.api)?, health: at(ports.health)?, cluster })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_an_error_naming_the_address() {
        let first = bind_exclusive("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let error = bind_exclusive(addr).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
        drop(first);
        bind_exclusive(addr).expect("free again once the first socket is closed");
    }
}
