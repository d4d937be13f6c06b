//! Listening sockets. Every I/O thread binds its own socket on the same port
//! with SO_REUSEPORT, so the kernel spreads connections over the threads and
//! no thread hands work to another.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// Binds a non-blocking TCP listener on `addr` with SO_REUSEPORT.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
