//! Zero-copy transfer of segment-file regions to a socket with `sendfile(2)`.
//!
//! Record bytes of fetch responses go from the page cache straight to the socket: the response
//! header is written first, then each region with `sendfile`, never through user space.

use std::io;
use std::os::fd::AsRawFd;

use storage::FileRegion;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends `region` to `socket` with sendfile(2), waiting for writability as needed.
///
/// Fails with `UnexpectedEof` if the file ends before the region does (the segment was
/// truncated after the region was taken): the caller must drop the connection, since the
/// response length already promised those bytes.
pub async fn send_region(socket: &TcpStream, region: &FileRegion) -> io::Result<u64> {
    let file_fd = region.file.as_raw_fd();
    let socket_fd = socket.as_raw_fd();
    let mut offset = i64::try_from(region.position)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "region position too large"))?;
    let mut remaining = region.len as usize;
    let mut sent = 0u64;
    while remaining > 0 {
        socket.writable().await?;
        let result = socket.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (the region holds
            // an Arc of the file and the socket is borrowed), `offset` is a valid pointer, and
            // the kernel copies at most `remaining` bytes.
            let n = unsafe { libc::sendfile(socket_fd, file_fd, &mut offset, remaining) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match result {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended before the region (truncated concurrently)",
                ))
            }
            Ok(n) => {
                remaining -= n;
                sent += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn sends_exactly_the_region() {
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let region = FileRegion {
            file: Arc::new(file),
            position: 1000,
            len: 150_000,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let sent = send_region(&client, &region).await.unwrap();
        drop(client);
        let got = reader.await.unwrap();
        assert_eq!(sent, 150_000);
        assert_eq!(got, data[1000..151_000]);
    }

    #[tokio::test]
    async fn short_file_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 100]).unwrap();
        let region = FileRegion {
            file: Arc::new(file),
            position: 50,
            len: 100,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.unwrap() });
        let client = TcpStream::connect(addr).await.unwrap();
        let _server = accept.await.unwrap();
        let err = send_region(&client, &region).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
