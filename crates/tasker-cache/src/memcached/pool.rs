//! A pool of memcached connections that never reuses a connection whose request was cut short.
//!
//! A request takes a [`Lease`]: a connection plus a permit of the pool's semaphore, which bounds
//! the connections open at once. The lease goes back to the idle list only after its request
//! read its whole reply ([`Lease::finish`]). A lease dropped before that (the caller's future
//! was cancelled or timed out mid-request, or the connection failed) closes its connection,
//! because the unread reply would otherwise be handed to the next request.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A byte stream to memcached: TCP or a unix socket.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// One connection, buffered both ways.
pub(crate) type Connection = BufStream<Box<dyn Stream>>;

/// Where memcached listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// `host:port`.
    Tcp(String),
    /// A unix socket's path.
    Unix(String),
}

impl Address {
    async fn connect(&self) -> io::Result<Connection> {
        let stream: Box<dyn Stream> = match self {
            Address::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address.as_str()).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            #[cfg(unix)]
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            #[cfg(not(unix))]
            Address::Unix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unix sockets are not supported on this platform",
                ));
            }
        };
        Ok(BufStream::new(stream))
    }
}

/// The pool.
pub(crate) struct Pool {
    address: Address,
    permits: Arc<Semaphore>,
    idle: Arc<Mutex<Vec<Connection>>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map_or(0, |idle| idle.len());
        f.debug_struct("Pool")
            .field("address", &self.address)
            .field("available_permits", &self.permits.available_permits())
            .field("idle", &idle)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why no connection could be had.
#[derive(Debug)]
pub(crate) enum AcquireError {
    /// Connecting failed.
    Io(io::Error),
    /// Every connection stayed busy, or connecting took, longer than the connection timeout.
    TimedOut,
}

impl Pool {
    pub(crate) fn new(address: Address, max_connections: u32, connect_timeout: Duration) -> Self {
        let permits = usize::try_from(max_connections)
            .unwrap_or(usize::MAX)
            .max(1);
        Self {
            address,
            permits: Arc::new(Semaphore::new(permits)),
            idle: Arc::new(Mutex::new(Vec::new())),
            connect_timeout,
        }
    }

    /// A connection for one request: an idle one, or a new one when none is idle.
    pub(crate) async fn acquire(&self) -> Result<Lease, AcquireError> {
        let acquire = async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| AcquireError::TimedOut)?;
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let reused = idle.is_some();
            let connection = match idle {
                Some(connection) => connection,
                None => self.address.connect().await.map_err(AcquireError::Io)?,
            };
            Ok(Lease {
                connection: Some(connection),
                reused,
                idle: Arc::clone(&self.idle),
                finished: false,
                _permit: permit,
            })
        };
        tokio::time::timeout(self.connect_timeout, acquire)
            .await
            .unwrap_or(Err(AcquireError::TimedOut))
    }

    /// The limit on getting a connection.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Closes every idle connection, so the next requests connect afresh.
    pub(crate) fn clear_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A connection lent to one request.
pub(crate) struct Lease {
    connection: Option<Connection>,
    reused: bool,
    idle: Arc<Mutex<Vec<Connection>>>,
    finished: bool,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(crate) fn connection(&mut self) -> &mut Connection {
        self.connection
            .as_mut()
            .expect("a lease holds its connection until it is dropped")
    }

    /// Whether the connection served an earlier request (and may have died idle since).
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }

    /// Marks the request complete: its reply was read whole, so the connection may serve the
    /// next request.
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.finished
            && let Some(connection) = self.connection.take()
        {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(connection);
        }
    }
}
