//! `BindAddress`: the socket address a server listens on.

use std::{fmt, net::SocketAddr, str::FromStr};

use crate::{
    problem::ProblemKind,
    schema::{Setting, Shape, reject},
    validate::Validator,
};

/// A socket address (`ip:port`) a server binds to, e.g. `0.0.0.0:8080` or `[::]:9190`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindAddress(pub SocketAddr);

impl BindAddress {
    /// The socket address.
    pub fn socket_addr(self) -> SocketAddr {
        self.0
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Setting for BindAddress {
    type Raw = String;
    const SHAPE: Shape = Shape::String;

    fn type_name() -> String {
        "socket address".to_owned()
    }

    fn constraint() -> Option<String> {
        Some("`ip:port`".to_owned())
    }

    fn validate<'r>(raw: &'r String, v: &mut Validator<'r>) -> Option<Self> {
        match SocketAddr::from_str(raw) {
            Ok(addr) => Some(Self(addr)),
            Err(_) => reject(v, ProblemKind::InvalidBindAddress),
        }
    }
}

/// Whether two bind addresses would collide: the same address with a fixed port (port 0
/// asks the OS for a free port, so two of them never collide).
pub(crate) fn same_listener(a: &str, b: &str) -> bool {
    match (SocketAddr::from_str(a), SocketAddr::from_str(b)) {
        (Ok(a), Ok(b)) => a == b && a.port() != 0,
        _ => false,
    }
}
