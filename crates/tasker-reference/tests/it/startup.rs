//! Start-up against a database server that accepts connections and never answers: the process
//! gives up within the configured timeout, with a message naming the database, instead of
//! hanging.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

#[test]
fn a_silent_database_port_fails_fast_naming_the_database() -> anyhow::Result<()> {
    // Accepts every connection and holds it open without a byte in reply.
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a silent port")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tasker-reference"))
        .args(["--tasks", "1", "--no-progress"])
        .env("TASKER_ENV", "test")
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{port}/tasker_silent"),
        )
        .env(
            "TASKER__COMMON__DATABASE__POOL__ACQUIRE_TIMEOUT_SECONDS",
            "2",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning tasker-reference")?;
    let deadline = started + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("tasker-reference still waits on a silent database after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .context("the child's stderr")?
        .read_to_string(&mut stderr)?;
    ensure!(!status.success(), "it failed: {status}");
    ensure!(
        stderr.contains("tasker_silent") && stderr.contains(&port.to_string()),
        "the error names the database and its address: {stderr}"
    );
    ensure!(
        stderr.contains("did not answer within 2s"),
        "the error says what it waited for: {stderr}"
    );
    Ok(())
}
