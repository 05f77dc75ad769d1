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

mod power_off;
pub use power_off::{PowerOffStats, PowerOffStorage};

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

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// Every durable write of the broker goes through a `Storage`: segment files it opens,
/// whole-file writes, directory creation, renames, removals and directory fsyncs; and so do
/// the reads of what those wrote, so a simulated storage ([`PowerOffStorage`]) is coherent.
/// What is durable: a file's data once its handle's `sync_data` returned (or
/// `write_file_synced` returned), a directory entry (created, renamed, removed) once
/// `sync_dir` of its directory returned.
pub trait Storage: Send + Sync + Debug {
    /// Opens `path` for reading and writing; with `create`, creates or truncates it.
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile>;
    /// Opens `path` for reading and writing, creating it empty if it does not exist (its
    /// directory entry is durable only after [`Storage::sync_dir`]).
    fn open_or_create(&self, path: &Path) -> io::Result<SharedFile>;
    /// Replaces `path` with `data` durably: a temporary file, fsynced, renamed over `path`,
    /// then the directory fsynced. A reader sees the old or the new content, never a mix.
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// The whole content of a file (checkpoints, indexes, the metadata log).
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` exists (file or directory).
    fn exists(&self, path: &Path) -> bool;
    /// The entries of a directory, in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Creates `dir` and its missing parents, durably: the parent of each directory created is
    /// fsynced. An existing directory is not an error.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Renames a file or directory (durable only after [`Storage::sync_dir`] of the
    /// directories involved).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file; a file already gone is not an error. Durable only after
    /// [`Storage::sync_dir`] of its directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it; one already gone is not an error. Durable only
    /// after [`Storage::sync_dir`] of its parent.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
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
    os_sync_dir(parent_dir(path))
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

fn os_open(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
}

fn os_open_or_create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn os_list_dir(dir: &Path) -> io::Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        out.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            is_dir: entry.file_type()?.is_dir(),
        });
    }
    Ok(out)
}

/// The directory holding `path` ("." for a bare relative name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn os_create_dir_all(dir: &Path, sync_dir: &dyn Fn(&Path) -> io::Result<()>) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        os_create_dir_all(parent, sync_dir)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(parent_dir(dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

fn os_remove_dir_all(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
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
        Ok(Arc::new(os_open(path, create)?))
    }
    fn open_or_create(&self, path: &Path) -> io::Result<SharedFile> {
        Ok(Arc::new(os_open_or_create(path)?))
    }
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        os_write_file_synced(path, data)
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        os_list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        os_create_dir_all(dir, &os_sync_dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        os_remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        os_remove_dir_all(dir)
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
    /// While held, every fsync (file or directory) waits: a disk that is slow to sync.
    held: parking_lot::Mutex<bool>,
    released: parking_lot::Condvar,
}

impl Faults {
    /// Makes every fsync wait until [`Faults::release_syncs`].
    pub fn hold_syncs(&self) {
        *self.held.lock() = true;
    }

    pub fn release_syncs(&self) {
        *self.held.lock() = false;
        self.released.notify_all();
    }

    fn wait_while_held(&self) {
        let mut held = self.held.lock();
        while *held {
            self.released.wait(&mut held);
        }
    }
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
        self.faults.wait_while_held();
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

impl FaultyStorage {
    fn sync_fault(&self) -> io::Result<()> {
        self.faults.wait_while_held();
        if self.faults.fail_sync.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
    fn read_fault(&self) -> io::Result<()> {
        if self.faults.fail_reads.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
    fn wrap(&self, inner: File) -> SharedFile {
        Arc::new(FaultyFile {
            inner,
            faults: self.faults.clone(),
        })
    }
}

impl Storage for FaultyStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile> {
        Ok(self.wrap(os_open(path, create)?))
    }
    fn open_or_create(&self, path: &Path) -> io::Result<SharedFile> {
        Ok(self.wrap(os_open_or_create(path)?))
    }
    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.faults.enospc.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.sync_fault()?;
        os_write_file_synced(path, data)
    }
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.read_fault()?;
        std::fs::read(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        self.read_fault()?;
        os_list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        os_create_dir_all(dir, &|d| self.sync_dir(d))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        os_remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        os_remove_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.dir_syncs.fetch_add(1, Ordering::AcqRel);
        self.sync_fault()?;
        if self.faults.fail_dir_sync.load(Ordering::Acquire) {
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
