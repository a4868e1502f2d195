//! Positional gather writes (`pwritev(2)`): a patched batch header and the untouched rest of the
//! produced bytes go to the segment file in one system call, without copying the batch.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;

/// Most parts handed to one system call.
const MAX_PARTS: usize = 16;

/// Writes every byte of `parts`, in order, at `offset` in `file`.
pub(crate) fn write_all_vectored_at(
    file: &File,
    parts: &[&[u8]],
    mut offset: u64,
) -> io::Result<()> {
    let mut index = 0;
    let mut skip = 0;
    while index < parts.len() {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_PARTS];
        let mut count = 0;
        for (k, part) in parts[index..].iter().enumerate() {
            if count == MAX_PARTS {
                break;
            }
            let part = if k == 0 { &part[skip..] } else { part };
            if !part.is_empty() {
                iov[count] = libc::iovec {
                    iov_base: part.as_ptr() as *mut libc::c_void,
                    iov_len: part.len(),
                };
                count += 1;
            }
        }
        if count == 0 {
            break;
        }
        let file_offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
        // SAFETY: the first `count` iovecs point into slices borrowed for the duration of the
        // call and pwritev only reads from them; the descriptor is owned by `file`.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iov.as_ptr(),
                count as libc::c_int,
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
        while written > 0 && index < parts.len() {
            let left = parts[index].len() - skip;
            if written >= left {
                written -= left;
                index += 1;
                skip = 0;
            } else {
                skip += written;
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
        let many: Vec<&[u8]> = (0..40).map(|_| &b"z"[..]).collect();
        write_all_vectored_at(&f, &[b"ab", b"", b"cd", &big], 2).unwrap();
        write_all_vectored_at(&f, &many, 6 + 100_000).unwrap();
        let mut back = vec![0u8; 6];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back, b"xxabcd");
        assert_eq!(f.metadata().unwrap().len(), 6 + 100_000 + 40);
    }
}
