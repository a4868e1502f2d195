//! Wire framing: every message is a big-endian `u32` length followed by that many bytes of
//! JSON, an `Envelope` carrying a request id so responses can be matched on a shared connection.

use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame accepted (snapshots of big clusters travel in one frame).
pub(crate) const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// Bytes reserved up front for a frame's payload; larger frames grow as they arrive.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A message with the id that pairs a response with its request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) id: u64,
    pub(crate) body: T,
}

/// Just the id of an envelope, for answering a request whose body could not be decoded.
#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeId {
    pub(crate) id: u64,
}

/// Serializes `body` under `id` into a complete frame (length prefix included).
pub(crate) fn encode<T: Serialize>(id: u64, body: &T) -> io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, &Envelope { id, body }).map_err(io::Error::other)?;
    let len = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|len| (*len as usize) <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Decodes the JSON payload of a frame.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8]) -> io::Result<Envelope<T>> {
    serde_json::from_slice(payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Writes a complete frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

/// Reads one frame's payload; `None` on a clean end of stream between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {MAX_FRAME_BYTES}"),
        ));
    }
    // The buffer grows with the bytes that arrive, so a peer announcing a large frame and
    // sending nothing costs no memory.
    let mut payload = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
    let read = r.take(len as u64).read_to_end(&mut payload).await?;
    if read < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ended after {read} of {len} bytes"),
        ));
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let frame = encode(7, &"hello").unwrap();
        let mut reader = &frame[..];
        let payload = read_frame(&mut reader).await.unwrap().unwrap();
        let env: Envelope<String> = decode(&payload).unwrap();
        assert_eq!((env.id, env.body.as_str()), (7, "hello"));
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rejects_oversized_and_truncated_frames() {
        let huge = (u32::MAX).to_be_bytes();
        assert!(read_frame(&mut &huge[..]).await.is_err());
        let truncated = [0u8, 0, 0, 10, b'{'];
        assert!(read_frame(&mut &truncated[..]).await.is_err());
        assert!(decode::<String>(b"not json").is_err());
    }

    #[tokio::test]
    async fn an_announced_length_reserves_no_more_than_arrives() {
        let mut frame = 200_000_000u32.to_be_bytes().to_vec();
        frame.extend_from_slice(b"{\"id\":1");
        let err = read_frame(&mut &frame[..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let large = encode(3, &"x".repeat(3 * READ_CHUNK_BYTES)).unwrap();
        let payload = read_frame(&mut &large[..]).await.unwrap().unwrap();
        let env: Envelope<String> = decode(&payload).unwrap();
        assert_eq!(env.body.len(), 3 * READ_CHUNK_BYTES);
    }
}
