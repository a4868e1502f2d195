//! A byte range of a segment file handed to readers, ready for `sendfile(2)`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// A byte range of a segment file. Holding it keeps the file open even if the segment is
/// deleted meanwhile.
#[derive(Clone, Debug)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u32,
}

impl FileRegion {
    /// Reads the range into memory with positional reads.
    pub fn read_to_bytes(&self) -> io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len as usize);
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }

    /// Appends the range to `out`, reading straight into its spare capacity.
    pub fn read_into(&self, out: &mut BytesMut) -> io::Result<()> {
        let len = self.len as usize;
        out.reserve(len);
        let mut done = 0;
        while done < len {
            let at = libc::off_t::try_from(self.position + done as u64)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
            let spare = out.spare_capacity_mut();
            // SAFETY: `spare` has room for at least `len - done` bytes (reserved above, and
            // each read only fills what it reports); pread writes at most that many into it.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    len - done,
                    at,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ends before the region",
                ));
            }
            let n = n as usize;
            // SAFETY: pread initialised the first `n` spare bytes.
            unsafe { out.set_len(out.len() + n) };
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_range_even_after_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"0123456789").unwrap();
        let region = FileRegion {
            file: Arc::new(File::open(&path).unwrap()),
            position: 3,
            len: 4,
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&region.read_to_bytes().unwrap()[..], b"3456");
        let mut out = BytesMut::from(&b"x"[..]);
        region.read_into(&mut out).unwrap();
        assert_eq!(&out[..], b"x3456");
        let past_end = FileRegion { len: 20, ..region };
        assert!(past_end.read_to_bytes().is_err());
    }
}
