//! Byte pumps between two streams: fixed buffers, backpressure, half-close aware.
//!
//! [`pump`] copies one direction through one [`COPY_BUF_LEN`] buffer and, at end of input, closes the
//! destination's write side (for TCP and [`super::TlsStream`] that is a half-close: the other direction keeps
//! flowing). [`splice`] runs both directions of two streams: it ends when both directions have ended, or at
//! the first error (which abandons the other direction — a reset on one side must not leave the other hanging).

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

/// Copies both directions between `a` and `b`; returns the bytes copied `(a → b, b → a)`.
pub async fn splice<A, B>(a: A, b: B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (a_read, a_write) = futures_lite::io::split(a);
    let (b_read, b_write) = futures_lite::io::split(b);
    futures_lite::future::try_zip(pump(a_read, b_write), pump(b_read, a_write)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_carries_both_directions_and_half_closes() {
        smol::block_on(async {
            // Two TCP pairs: client ⇄ (a | splice | b) ⇄ server.
            let l1 = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let l2 = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = async_net::TcpStream::connect(l1.local_addr().unwrap()).await.unwrap();
            let (a, _) = l1.accept().await.unwrap();
            let b = async_net::TcpStream::connect(l2.local_addr().unwrap()).await.unwrap();
            let (mut server, _) = l2.accept().await.unwrap();
            let spliced = smol::spawn(splice(a, b));

            let request = vec![7u8; 3 * COPY_BUF_LEN + 5];
            client.write_all(&request).await.unwrap();
            client.close().await.unwrap(); // half-close: the answer must still come back
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, request);
            server.write_all(b"answer after EOF").await.unwrap();
            server.close().await.unwrap();
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, b"answer after EOF");
            assert_eq!(spliced.await.unwrap(), (request.len() as u64, 16));
        });
    }
}
