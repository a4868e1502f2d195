//! Positional gather writes (`pwritev(2)`): a patched batch header and the untouched rest of the
//! produced bytes go to the segment file in one system call, without copying the batch.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// Writes every byte of `parts`, in order, at `offset` in `file`.
pub(crate) fn write_all_vectored_at(
    file: &File,
    parts: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    while !parts.is_empty() {
        let iov: Vec<libc::iovec> = parts
            .iter()
            .take(64)
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        let file_offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
        // SAFETY: every iovec points into a live slice borrowed for the duration of the call and
        // pwritev only reads from them; the descriptor is owned by `file`.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                iov.len() as libc::c_int,
                file_offset,
            )
        };
        if written < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        let mut written = written as usize;
        offset += written as u64;
        while written > 0 {
            let first = parts[0];
            if written >= first.len() {
                written -= first.len();
                parts.remove(0);
            } else {
                parts[0] = &first[written..];
                written = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn gathers_parts_at_offset() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all_at(b"xxxx", 0).unwrap();
        let big = vec![7u8; 100_000];
        write_all_vectored_at(&f, &[b"ab", b"", b"cd", &big], 2).unwrap();
        let mut back = vec![0u8; 6];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back, b"xxabcd");
        assert_eq!(f.metadata().unwrap().len(), 6 + 100_000);
    }
}
