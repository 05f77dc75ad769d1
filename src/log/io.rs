//! The filesystem seam of the log: segment data goes through [`SegmentFile`] handles that a
//! [`Storage`] opens; whole-file writes (indexes, checkpoints, snapshots), removals and
//! directory fsyncs go through the [`Storage`] itself. Production uses [`OsStorage`] (plain files, positional I/O); tests use
//! [`FaultyStorage`] to inject ENOSPC on writes, failing fsyncs and read errors, so disk-fault
//! behaviour (KAFKA_STORAGE_ERROR, poisoning, recovery when space returns) is tested for real.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Positional I/O on one segment file.
pub trait SegmentFile: Send + Sync + Debug {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Writes `parts` one after another from `pos` (`parts` is consumed by the call).
    fn write_all_vectored_at(&self, parts: &mut [io::IoSlice<'_>], pos: u64) -> io::Result<()> {
        let mut pos = pos;
        for p in parts.iter() {
            self.write_all_at(p, pos)?;
            pos += p.len() as u64;
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()>;
    /// Starts writing the file's dirty pages back without waiting (a hint; durability comes
    /// only from [`SegmentFile::sync_data`]).
    fn start_writeback(&self) -> io::Result<()> {
        Ok(())
    }
    /// Reserves disk blocks for `len` bytes at `offset` without changing the file's size (a
    /// hint: appends into reserved blocks skip the filesystem's per-page delayed allocation).
    fn preallocate(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
    /// The plain file behind this handle, when there is one, so reads can be handed to the
    /// kernel (sendfile). `None` makes readers copy through [`SegmentFile::read_exact_at`].
    fn as_file(&self) -> Option<&File> {
        None
    }
}

pub type SharedFile = Arc<dyn SegmentFile>;

/// A byte range of a segment file: whole batches, ready to be sent to a client. Holding it keeps
/// the file open, so a segment deleted by retention meanwhile is still readable.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: SharedFile,
    pub position: u64,
    pub len: usize,
}

impl FileRange {
    /// Copies the range into memory.
    pub fn read_to_bytes(&self) -> io::Result<bytes::Bytes> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.into())
    }
}

/// Opens segment files and makes whole files and directory entries durable.
pub trait Storage: Send + Sync + Debug {
    /// Opens `path` for reading and writing; with `create`, creates or truncates it.
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile>;
    /// Replaces `path` with `data` durably: a temporary file, fsynced, renamed over `path`,
    /// then the directory fsynced. A reader sees the old or the new content, never a mix.
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Removes a file; a file already gone is not an error. Durable only after
    /// [`Storage::sync_dir`] of its directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory: entries created, renamed or removed in it become durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

fn os_write_file_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let f = File::create(&tmp)?;
        FileExt::write_all_at(&f, data, 0)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(parent) => os_sync_dir(parent),
        None => Ok(()),
    }
}

fn os_remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn os_sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SegmentFile for File {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, pos)
    }
    /// One pwritev(2) per call in the usual case (the kernel may write less; the rest follows).
    fn write_all_vectored_at(&self, parts: &mut [io::IoSlice<'_>], pos: u64) -> io::Result<()> {
        let mut parts = parts;
        let mut pos = pos;
        // The kernel takes at most IOV_MAX (1024) slices per call.
        while !parts.is_empty() {
            let n = parts.len().min(1024);
            match rustix::io::pwritev(self, &parts[..n], pos) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    pos += written as u64;
                    io::IoSlice::advance_slices(&mut parts, written);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn start_writeback(&self) -> io::Result<()> {
        start_writeback(self)
    }
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        preallocate(self, offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn as_file(&self) -> Option<&File> {
        Some(self)
    }
}

/// sync_file_range(SYNC_FILE_RANGE_WRITE) over the whole file: queues its dirty pages for
/// writeback and returns. Not a durability point (no metadata, no device cache flush).
#[allow(unsafe_code)]
fn start_writeback(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor `file` keeps open for the call; no memory is
    // passed.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    fallocate(file, FallocateFlags::KEEP_SIZE, offset, len).map_err(io::Error::from)
}

#[derive(Debug, Default)]
pub struct OsStorage;

impl Storage for OsStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)?;
        Ok(Arc::new(f))
    }
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        os_write_file_synced(path, data)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        os_remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        os_sync_dir(dir)
    }
}

/// Switches for injected faults, shared by every file a [`FaultyStorage`] opened.
#[derive(Debug, Default)]
pub struct Faults {
    /// Writes fail with ENOSPC (after writing nothing).
    pub enospc: AtomicBool,
    /// fsync fails with EIO.
    pub fail_sync: AtomicBool,
    /// Reads fail with EIO.
    pub fail_reads: AtomicBool,
    /// Directory fsyncs fail with EIO.
    pub fail_dir_sync: AtomicBool,
    /// Directory fsyncs asked for so far.
    pub dir_syncs: AtomicUsize,
}

/// Real files with injectable faults (tests).
#[derive(Debug, Default, Clone)]
pub struct FaultyStorage {
    pub faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: File,
    faults: Arc<Faults>,
}

impl SegmentFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if self.faults.fail_reads.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        FileExt::read_exact_at(&self.inner, buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if self.faults.enospc.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        FileExt::write_all_at(&self.inner, buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.faults.fail_sync.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync_data()
    }
    fn start_writeback(&self) -> io::Result<()> {
        start_writeback(&self.inner)
    }
    fn preallocate(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.faults.enospc.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        preallocate(&self.inner, offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.inner.metadata()?.len())
    }
}

impl Storage for FaultyStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)?;
        Ok(Arc::new(FaultyFile {
            inner: f,
            faults: self.faults.clone(),
        }))
    }
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.faults.enospc.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        if self.faults.fail_sync.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        os_write_file_synced(path, data)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        os_remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.dir_syncs.fetch_add(1, Ordering::AcqRel);
        if self.faults.fail_sync.load(Ordering::Acquire)
            || self.faults.fail_dir_sync.load(Ordering::Acquire)
        {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        os_sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_file_write_replaces_content_and_removal_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint");
        let storage = OsStorage;
        storage.write_file_synced(&path, b"one").expect("write");
        storage.write_file_synced(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!path.with_extension("tmp").exists());
        storage.remove_file(&path).expect("remove");
        storage.remove_file(&path).expect("remove again");
        assert!(!path.exists());
    }

    #[test]
    fn faulty_storage_fails_whole_file_writes_and_dir_syncs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = FaultyStorage::default();
        storage.faults.fail_sync.store(true, Ordering::Release);
        assert!(storage
            .write_file_synced(&dir.path().join("c"), b"x")
            .is_err());
        assert!(storage.sync_dir(dir.path()).is_err());
    }
}
