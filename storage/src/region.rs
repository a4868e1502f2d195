//! A byte range of a segment file handed to readers, ready for `sendfile(2)`.

use std::fs::File;
use std::os::unix::fs::FileExt;
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
    pub fn read_to_bytes(&self) -> std::io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len as usize);
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }

    /// Appends the range to `out`.
    pub(crate) fn read_into(&self, out: &mut BytesMut) -> std::io::Result<()> {
        let start = out.len();
        out.resize(start + self.len as usize, 0);
        self.file.read_exact_at(&mut out[start..], self.position)
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
