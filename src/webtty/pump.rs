//! Moving a child's output onto the WebSocket with backpressure.
//!
//! One [`limits::EXEC_CHUNK_LEN`] buffer per stream: read a chunk, send it as `Data`, wait until the WebSocket
//! accepted it, then read the next. Nothing queues in between, so a client that stops reading stalls the
//! child (its pipe or PTY fills up) and the server's memory stays flat.

use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite};

use super::session::{send, ClientEnd, SessionTx};
use crate::limits;
use crate::proto::webtty::message::Payload;
use crate::proto::webtty::{Data, DataType};

/// A child's output stream (pipe or PTY master).
pub(crate) type OutputStream = Box<dyn AsyncRead + Unpin + Send>;
/// Where client stdin goes (pipe or PTY master).
pub(crate) type StdinSink = Box<dyn AsyncWrite + Unpin + Send>;

/// Copies `out` to the client as `Data(stream)` chunks, then sends `eos`.
///
/// Ends at end of file, or — once `exited` is closed (the child exited) — when the stream stays silent for
/// [`limits::WEBTTY_EXIT_DRAIN_IDLE`] (a background job still holds it open). A read error counts as end of
/// file; a send failure means the client is gone.
pub(crate) async fn pump_output<S>(
    tx: &SessionTx<S>,
    mut out: OutputStream,
    stream: DataType,
    exited: &async_channel::Receiver<()>,
) -> Result<(), ClientEnd>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; limits::EXEC_CHUNK_LEN];
    loop {
        let read = future::or(async { out.read(&mut buf).await.unwrap_or(0) }, async {
            let _ = exited.recv().await; // returns at once when the channel is closed
            async_io::Timer::after(limits::WEBTTY_EXIT_DRAIN_IDLE).await;
            0
        });
        let n = read.await;
        if n == 0 {
            return send(tx, Payload::Data(Data::eos(stream))).await;
        }
        send(tx, Payload::Data(Data::bytes(stream, buf[..n].to_vec()))).await?;
    }
}
