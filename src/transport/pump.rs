//! A byte pump from one stream to another: one fixed buffer, backpressure, half-close aware.
//!
//! [`pump`] copies one direction through one [`COPY_BUF_LEN`] buffer and, at end of input, closes the
//! destination's write side (for TCP and a TLS leg that is a half-close: the other direction keeps flowing).
//! `rstream dial` runs one per direction between stdio and its stream; an agent's leg is spliced to a local
//! service without any buffer of its own (`tls_splice`).

use std::io;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::{AsyncRead, AsyncWrite};

use crate::limits::COPY_BUF_LEN;

/// Copies `from` into `to` until EOF, then closes `to`'s write side. Returns the bytes copied.
pub async fn pump<R, W>(mut from: R, mut to: W) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; COPY_BUF_LEN];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        total += n as u64;
    }
    to.close().await?;
    Ok(total)
}
