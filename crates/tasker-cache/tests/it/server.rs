//! The services the network backends' tests need: the shared ones at 127.0.0.1, and private
//! server processes (redis-server, memcached) on free ports for the fault tests.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};

use crate::support::eventually;

/// Fails with a clear message unless a service answers on the port.
pub(crate) fn require_service(name: &str, port: u16) -> anyhow::Result<()> {
    TcpStream::connect(("127.0.0.1", port)).with_context(|| {
        format!(
            "{name} is not answering on 127.0.0.1:{port}; the tests need it (`.ci/run` and \
             `cargo xtask ci` start it)"
        )
    })?;
    Ok(())
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A server process this test started; it is stopped when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    program: &'static str,
    args: Vec<String>,
    port: u16,
    pidfile: PathBuf,
}

impl Server {
    /// A private Redis on `port`, without persistence.
    #[cfg(feature = "redis")]
    pub(crate) fn redis(port: u16) -> Self {
        let pidfile = std::env::temp_dir().join(format!("tasker-cache-redis-{port}.pid"));
        let args = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            &pidfile.display().to_string(),
            "--logfile",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        Self {
            program: "redis-server",
            args,
            port,
            pidfile,
        }
    }

    /// A private memcached on `port` (TCP only).
    #[cfg(feature = "memcached")]
    pub(crate) fn memcached(port: u16) -> Self {
        let pidfile = std::env::temp_dir().join(format!("tasker-cache-memcached-{port}.pid"));
        let mut args = [
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-l",
            "127.0.0.1",
            "-m",
            "16",
            "-d",
            "-P",
            &pidfile.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        if is_root() {
            args.extend(["-u".to_owned(), "root".to_owned()]);
        }
        Self {
            program: "memcached",
            args,
            port,
            pidfile,
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        let status = Command::new(self.program)
            .args(&self.args)
            .status()
            .with_context(|| {
                format!(
                    "starting `{}`; the fault tests need it installed (`.ci/run` installs it)",
                    self.program
                )
            })?;
        ensure!(status.success(), "`{}` exited with {status}", self.program);
        let port = self.port;
        eventually(
            &format!("{} listens on {port}", self.program),
            || async move { port_open(port) },
        )
        .await
    }

    /// Stops the server and waits until its port is closed.
    pub(crate) async fn stop(&self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        let status = Command::new("kill").arg(&pid).status()?;
        ensure!(status.success(), "kill {pid} failed");
        let port = self.port;
        eventually(
            &format!("{} stops listening on {port}", self.program),
            || async move { !port_open(port) },
        )
        .await?;
        let _ = std::fs::remove_file(&self.pidfile);
        Ok(())
    }

    fn pid(&self) -> anyhow::Result<String> {
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&self.pidfile)
                && !text.trim().is_empty()
            {
                return Ok(text.trim().to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "{} wrote no pid to {}",
            self.program,
            self.pidfile.display()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.pidfile) {
            let _ = Command::new("kill").arg(text.trim()).status();
            let _ = std::fs::remove_file(&self.pidfile);
        }
    }
}

#[cfg(feature = "memcached")]
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
