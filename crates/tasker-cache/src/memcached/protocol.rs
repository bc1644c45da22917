//! The subset of memcached's meta protocol this backend speaks: `mg` (get), `ms` (set), `md`
//! (delete), `ma` (arithmetic, for generations) and `mn` (no-op, for health).
//!
//! Each function writes one request and reads its whole reply, so a connection is back at a
//! request boundary when it returns `Ok`. Any error leaves the connection in an unknown state,
//! and the caller closes it (the pool's lease does that on its own).

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::pool::Connection;
use crate::error::BackendError;

/// The longest reply line read before the reply counts as garbage.
const MAX_LINE: usize = 1024;
/// How much of an unexpected reply an error quotes.
const QUOTED_REPLY: usize = 120;

/// `mg <key> v`: the value, or `None` on a miss.
pub(crate) async fn get(
    connection: &mut Connection,
    key: &str,
) -> Result<Option<Vec<u8>>, BackendError> {
    send(connection, format!("mg {key} v\r\n").as_bytes(), None).await?;
    let line = read_line(connection).await?;
    if line == "EN" {
        return Ok(None);
    }
    match line.strip_prefix("VA ") {
        Some(rest) => Ok(Some(read_value(connection, rest, &line).await?)),
        None => Err(unexpected(&line)),
    }
}

/// `ms <key> <size> T<ttl>`: stores the value for `ttl_seconds` (0 never expires; the caller
/// never passes 0).
pub(crate) async fn set(
    connection: &mut Connection,
    key: &str,
    value: &[u8],
    ttl_seconds: u64,
) -> Result<(), BackendError> {
    let head = format!("ms {key} {} T{ttl_seconds}\r\n", value.len());
    send(connection, head.as_bytes(), Some(value)).await?;
    let line = read_line(connection).await?;
    match line.as_str() {
        "HD" => Ok(()),
        _ => Err(unexpected(&line)),
    }
}

/// `md <key>`: removes the entry; a missing one is fine.
pub(crate) async fn delete(connection: &mut Connection, key: &str) -> Result<(), BackendError> {
    send(connection, format!("md {key}\r\n").as_bytes(), None).await?;
    let line = read_line(connection).await?;
    match line.as_str() {
        "HD" | "NF" => Ok(()),
        _ => Err(unexpected(&line)),
    }
}

/// `ma <key> N0 J<initial> D<delta> v`: adds `delta` to the counter, creating it at `initial`
/// (never expiring) when missing, and returns the counter's value afterwards. With delta 0 this
/// reads the counter, starting it when needed, in one round trip.
pub(crate) async fn increment(
    connection: &mut Connection,
    key: &str,
    initial: u64,
    delta: u64,
) -> Result<u64, BackendError> {
    send(
        connection,
        format!("ma {key} N0 J{initial} D{delta} v\r\n").as_bytes(),
        None,
    )
    .await?;
    let line = read_line(connection).await?;
    let Some(rest) = line.strip_prefix("VA ") else {
        return Err(unexpected(&line));
    };
    let value = read_value(connection, rest, &line).await?;
    std::str::from_utf8(&value)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| unexpected(&line))
}

/// `mn`: the server answers `MN`.
pub(crate) async fn noop(connection: &mut Connection) -> Result<(), BackendError> {
    send(connection, b"mn\r\n", None).await?;
    let line = read_line(connection).await?;
    match line.as_str() {
        "MN" => Ok(()),
        _ => Err(unexpected(&line)),
    }
}

async fn send(
    connection: &mut Connection,
    head: &[u8],
    data: Option<&[u8]>,
) -> Result<(), BackendError> {
    connection.write_all(head).await?;
    if let Some(data) = data {
        connection.write_all(data).await?;
        connection.write_all(b"\r\n").await?;
    }
    connection.flush().await?;
    Ok(())
}

/// Reads one `\r\n`-terminated line, without the terminator.
async fn read_line(connection: &mut Connection) -> Result<String, BackendError> {
    let mut line = Vec::new();
    let read = (&mut *connection)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "memcached closed the connection",
        )
        .into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(unexpected(&String::from_utf8_lossy(&line)));
    }
    line.truncate(line.len() - 2);
    let line = String::from_utf8_lossy(&line).into_owned();
    if let Some(message) = line
        .strip_prefix("SERVER_ERROR ")
        .or_else(|| line.strip_prefix("CLIENT_ERROR "))
    {
        return Err(BackendError::Refused {
            message: message.to_owned(),
        });
    }
    Ok(line)
}

/// Reads the data block of a `VA <size> <flags>*` reply.
async fn read_value(
    connection: &mut Connection,
    rest: &str,
    line: &str,
) -> Result<Vec<u8>, BackendError> {
    let size: usize = rest
        .split(' ')
        .next()
        .and_then(|size| size.parse().ok())
        .ok_or_else(|| unexpected(line))?;
    let mut data = vec![0; size + 2];
    connection.read_exact(&mut data).await?;
    if !data.ends_with(b"\r\n") {
        return Err(unexpected(line));
    }
    data.truncate(size);
    Ok(data)
}

fn unexpected(line: &str) -> BackendError {
    let mut reply: String = line.chars().take(QUOTED_REPLY).collect();
    if reply.len() < line.len() {
        reply.push_str("...");
    }
    BackendError::Protocol { reply }
}
