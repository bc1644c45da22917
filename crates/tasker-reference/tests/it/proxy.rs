//! A TCP proxy for fault tests: it forwards to a real server until told to black-hole every
//! connection (they stay open and carry nothing, as a partition or a hung server leaves them)
//! or to cut them (closed at once, and new ones refused, as a server that went away).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What new connections get.
const FORWARD: u8 = 0;
const BLACK_HOLE: u8 = 1;
const REFUSE: u8 = 2;

/// One proxied connection: set `dead` and it carries nothing more; set `cut` and it closes.
#[derive(Debug, Default)]
struct Link {
    dead: AtomicBool,
    cut: tokio::sync::Notify,
}

/// A proxy in front of one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Proxy {
    mode: Arc<AtomicU8>,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
}

impl Proxy {
    /// Listens on a port of its own in front of `upstream` (`host:port`); returns the port.
    pub(crate) async fn start(&self, upstream: String) -> anyhow::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let proxy = self.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = proxy.mode.load(Ordering::SeqCst);
                if mode == REFUSE {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let link = Arc::new(Link::default());
                link.dead.store(mode == BLACK_HOLE, Ordering::SeqCst);
                proxy.links().push(Arc::clone(&link));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, Arc::clone(&link)));
                tokio::spawn(pump(server_read, client_write, link));
            }
        });
        Ok(port)
    }

    fn links(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Link>>> {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every connection open now, and every one opened until [`Proxy::forward`], goes silent
    /// for good.
    pub(crate) fn black_hole(&self) {
        self.mode.store(BLACK_HOLE, Ordering::SeqCst);
        for link in self.links().iter() {
            link.dead.store(true, Ordering::SeqCst);
        }
    }

    /// Every connection open now is closed, and new ones are refused until
    /// [`Proxy::forward`].
    pub(crate) fn cut(&self) {
        self.mode.store(REFUSE, Ordering::SeqCst);
        for link in self.links().drain(..) {
            link.dead.store(true, Ordering::SeqCst);
            link.cut.notify_waiters();
            link.cut.notify_one();
        }
    }

    /// New connections are forwarded again (black-holed ones stay silent).
    pub(crate) fn forward(&self) {
        self.mode.store(FORWARD, Ordering::SeqCst);
    }
}

/// Copies bytes from `from` to `to` until either closes or the link is cut; once the link is
/// dead, swallows them.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            () = link.cut.notified() => return,
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            },
        };
        if link.dead.load(Ordering::SeqCst) {
            // Held open, never answered: the peer waits until it gives up by itself.
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
