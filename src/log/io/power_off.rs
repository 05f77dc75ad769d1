//! [`PowerOffStorage`]: an in-memory filesystem that knows, for every file and directory, what
//! is durable and what is not, so a test can cut the power.
//!
//! Model (POSIX's guarantees, no more):
//! - a file's data becomes durable when a handle's `sync_data` returns (or `write_file_synced`
//!   does); until then writes and truncations live only in the "page cache";
//! - a directory entry (a file or directory created, renamed or removed) becomes durable when
//!   `sync_dir` of the directory holding it returns; until then, after a power cut, a new file
//!   is gone, a renamed file is back under its old name, a removed file is back;
//! - [`PowerOffStorage::power_off`] drops everything not durable. With tearing on, a file whose
//!   only unsynced change was an append keeps a random prefix of the appended bytes (a disk may
//!   have written some of them), chosen by a seeded generator, so recovery meets torn tails.
//!
//! A power cut also kills the storage handle the old broker holds and every file it opened:
//! each of their operations then fails with EIO, so threads of the old broker that are still
//! winding down cannot touch what the next broker recovers. `power_off` returns the handle
//! for the next start.
//!
//! Paths must be absolute; `/` always exists (durable). Inodes are shared by handles, as on a
//! real filesystem: a file removed while open stays readable through its handle.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{DirEntry, SegmentFile, SharedFile, Storage};

type Ino = u64;
const ROOT: Ino = 0;

#[derive(Debug)]
struct FileNode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Lowest byte changed (written or truncated) since the last sync: `data[..dirty_from]`
    /// equals `durable[..dirty_from]`, so a sync copies only the rest.
    dirty_from: usize,
}

#[derive(Debug, Default)]
struct DirNode {
    entries: BTreeMap<String, Ino>,
    durable: BTreeMap<String, Ino>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// What a power cut dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PowerOffStats {
    /// Files whose unsynced bytes were dropped (wholly or after a torn prefix).
    pub files_rolled_back: usize,
    /// Unsynced bytes dropped in all.
    pub bytes_dropped: u64,
    /// Files that kept a torn prefix of their unsynced appends.
    pub files_torn: usize,
    /// Directories whose unsynced entry changes were undone.
    pub dirs_reverted: usize,
}

struct Fs {
    generation: u64,
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    /// xorshift64* state for tearing.
    rng: u64,
    tear: bool,
}

impl Fs {
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn dir(&self, ino: Ino) -> io::Result<&DirNode> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> io::Result<&mut DirNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            Some(Node::File(_)) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            Some(Node::Dir(_)) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(self.nodes.get(&ino), Some(Node::Dir(_)))
    }

    fn add(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    /// The inode at `path` (following current, not durable, entries).
    fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for name in components(path)? {
            ino = *self
                .dir(ino)?
                .entries
                .get(name)
                .ok_or(io::ErrorKind::NotFound)?;
        }
        Ok(ino)
    }

    /// The directory holding `path` and the last component's name.
    fn parent_of<'a>(&self, path: &'a Path) -> io::Result<(Ino, &'a str)> {
        let mut names = components(path)?;
        let name = names.pop().ok_or(io::ErrorKind::InvalidInput)?;
        let mut ino = ROOT;
        for n in names {
            ino = *self
                .dir(ino)?
                .entries
                .get(n)
                .ok_or(io::ErrorKind::NotFound)?;
        }
        self.dir(ino)?;
        Ok((ino, name))
    }

    fn new_file(&mut self, path: &Path) -> io::Result<Ino> {
        let (parent, name) = self.parent_of(path)?;
        let ino = self.add(Node::File(FileNode {
            data: Vec::new(),
            durable: Vec::new(),
            dirty_from: 0,
        }));
        self.dir_mut(parent)?.entries.insert(name.to_string(), ino);
        Ok(ino)
    }

    fn sync_dir(&mut self, ino: Ino) -> io::Result<()> {
        let d = self.dir_mut(ino)?;
        d.durable = d.entries.clone();
        Ok(())
    }
}

fn components(path: &Path) -> io::Result<Vec<&str>> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "PowerOffStorage needs absolute paths",
        ));
    }
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_str().ok_or(io::ErrorKind::InvalidInput)?),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::ErrorKind::InvalidInput.into())
            }
        }
    }
    Ok(out)
}

fn powered_off() -> io::Error {
    io::Error::other(
        "storage powered off (EIO): this handle belongs to a broker before the power cut",
    )
}

/// An in-memory filesystem that drops what was not fsynced when the power is cut (tests; see
/// the module docs).
#[derive(Clone)]
pub struct PowerOffStorage {
    fs: Arc<Mutex<Fs>>,
    generation: u64,
}

impl fmt::Debug for PowerOffStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerOffStorage")
            .field("generation", &self.generation)
            .finish()
    }
}

impl PowerOffStorage {
    /// An empty filesystem; `seed` drives torn writes, which happen only with `tear`.
    pub fn new(seed: u64, tear: bool) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        PowerOffStorage {
            fs: Arc::new(Mutex::new(Fs {
                generation: 0,
                nodes,
                next_ino: ROOT + 1,
                rng: seed | 1,
                tear,
            })),
            generation: 0,
        }
    }

    fn live(&self) -> io::Result<parking_lot::MutexGuard<'_, Fs>> {
        let fs = self.fs.lock();
        if fs.generation != self.generation {
            return Err(powered_off());
        }
        Ok(fs)
    }

    fn handle(&self, ino: Ino) -> SharedFile {
        Arc::new(MemFile {
            fs: self.fs.clone(),
            generation: self.generation,
            ino,
        })
    }

    /// Cuts the power: every change not durable is dropped (see the module docs), this handle
    /// and every file opened through it fail from now on. Returns the handle to start the next
    /// broker with, and what was dropped.
    pub fn power_off(&self) -> (PowerOffStorage, PowerOffStats) {
        let mut fs = self.fs.lock();
        let mut stats = PowerOffStats::default();
        let inos: Vec<Ino> = fs.nodes.keys().copied().collect();
        for ino in inos {
            let r = if fs.tear { fs.random() } else { 0 };
            let Some(node) = fs.nodes.get_mut(&ino) else {
                continue;
            };
            match node {
                Node::File(f) => {
                    if f.data.len() == f.durable.len() && f.dirty_from >= f.data.len() {
                        continue;
                    }
                    let appended_only = f.dirty_from >= f.durable.len();
                    let extra = f.data.len().saturating_sub(f.durable.len());
                    // Half of the files with unsynced appends keep a random prefix of them.
                    let keep = if appended_only && extra > 0 && r & 1 == 1 {
                        ((r >> 1) % (extra as u64 + 1)) as usize
                    } else {
                        0
                    };
                    if keep > 0 {
                        stats.files_torn += 1;
                    }
                    stats.files_rolled_back += 1;
                    stats.bytes_dropped += (extra - keep) as u64
                        + (f.durable
                            .len()
                            .min(f.data.len())
                            .saturating_sub(f.dirty_from)) as u64;
                    let len = f.durable.len() + keep;
                    let torn: Vec<u8> = f.data.get(f.durable.len()..len).unwrap_or(&[]).to_vec();
                    f.durable.extend_from_slice(&torn);
                    f.data = f.durable.clone();
                    f.dirty_from = f.data.len();
                }
                Node::Dir(d) => {
                    if d.entries != d.durable {
                        stats.dirs_reverted += 1;
                        d.entries = d.durable.clone();
                    }
                }
            }
        }
        // Forget what no durable entry reaches.
        let mut reachable = std::collections::HashSet::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if reachable.insert(ino) {
                if let Some(Node::Dir(d)) = fs.nodes.get(&ino) {
                    todo.extend(d.entries.values().copied());
                }
            }
        }
        fs.nodes.retain(|ino, _| reachable.contains(ino));
        fs.generation += 1;
        let next = PowerOffStorage {
            fs: self.fs.clone(),
            generation: fs.generation,
        };
        (next, stats)
    }

    /// Total bytes of file data reachable now (for reports).
    pub fn total_file_bytes(&self) -> u64 {
        let fs = self.fs.lock();
        fs.nodes
            .values()
            .map(|n| match n {
                Node::File(f) => f.data.len() as u64,
                Node::Dir(_) => 0,
            })
            .sum()
    }
}

impl Storage for PowerOffStorage {
    fn open(&self, path: &Path, create: bool) -> io::Result<SharedFile> {
        let mut fs = self.live()?;
        let ino = match fs.lookup(path) {
            Ok(ino) => {
                let f = fs.file_mut(ino)?;
                if create {
                    f.data.clear();
                    f.dirty_from = 0;
                }
                ino
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => fs.new_file(path)?,
            Err(e) => return Err(e),
        };
        Ok(self.handle(ino))
    }

    fn open_or_create(&self, path: &Path) -> io::Result<SharedFile> {
        let mut fs = self.live()?;
        let ino = match fs.lookup(path) {
            Ok(ino) => {
                fs.file_mut(ino)?;
                ino
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs.new_file(path)?,
            Err(e) => return Err(e),
        };
        Ok(self.handle(ino))
    }

    fn write_file_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut fs = self.live()?;
        // Temporary file written and fsynced, renamed over `path`, directory fsynced: as one
        // step here, which is what those four steps guarantee.
        let (parent, name) = fs.parent_of(path)?;
        if fs
            .dir(parent)?
            .entries
            .get(name)
            .is_some_and(|&i| fs.is_dir(i))
        {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        let ino = fs.add(Node::File(FileNode {
            data: data.to_vec(),
            durable: data.to_vec(),
            dirty_from: data.len(),
        }));
        fs.dir_mut(parent)?.entries.insert(name.to_string(), ino);
        fs.sync_dir(parent)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut fs = self.live()?;
        let ino = fs.lookup(path)?;
        Ok(fs.file_mut(ino)?.data.clone())
    }

    fn exists(&self, path: &Path) -> bool {
        self.live().is_ok_and(|fs| fs.lookup(path).is_ok())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let fs = self.live()?;
        let ino = fs.lookup(dir)?;
        Ok(fs
            .dir(ino)?
            .entries
            .iter()
            .map(|(name, &i)| DirEntry {
                name: name.clone(),
                is_dir: fs.is_dir(i),
            })
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.live()?;
        let mut ino = ROOT;
        for name in components(dir)? {
            ino = match fs.dir(ino)?.entries.get(name) {
                Some(&next) => {
                    fs.dir(next)?;
                    next
                }
                None => {
                    let next = fs.add(Node::Dir(DirNode::default()));
                    fs.dir_mut(ino)?.entries.insert(name.to_string(), next);
                    fs.sync_dir(ino)?;
                    next
                }
            };
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.live()?;
        let (from_dir, from_name) = fs.parent_of(from)?;
        let (to_dir, to_name) = fs.parent_of(to)?;
        let ino = *fs
            .dir(from_dir)?
            .entries
            .get(from_name)
            .ok_or(io::ErrorKind::NotFound)?;
        if let Some(&target) = fs.dir(to_dir)?.entries.get(to_name) {
            if target == ino {
                return Ok(());
            }
            if fs.is_dir(target) {
                // Only empty directories may be replaced; ours never are.
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
        }
        fs.dir_mut(from_dir)?.entries.remove(from_name);
        fs.dir_mut(to_dir)?.entries.insert(to_name.to_string(), ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.live()?;
        let (parent, name) = match fs.parent_of(path) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match fs.dir(parent)?.entries.get(name) {
            None => Ok(()),
            Some(&i) if fs.is_dir(i) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            Some(_) => {
                fs.dir_mut(parent)?.entries.remove(name);
                Ok(())
            }
        }
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.live()?;
        let (parent, name) = match fs.parent_of(dir) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // The subtree becomes unreachable; whether that is durable is up to the parent's sync.
        fs.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.live()?;
        let ino = fs.lookup(dir)?;
        fs.sync_dir(ino)
    }
}

/// An open file of a [`PowerOffStorage`].
struct MemFile {
    fs: Arc<Mutex<Fs>>,
    generation: u64,
    ino: Ino,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemFile").field("ino", &self.ino).finish()
    }
}

impl MemFile {
    fn with<T>(&self, op: impl FnOnce(&mut FileNode) -> io::Result<T>) -> io::Result<T> {
        let mut fs = self.fs.lock();
        if fs.generation != self.generation {
            return Err(powered_off());
        }
        op(fs.file_mut(self.ino)?)
    }
}

impl SegmentFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.with(|f| {
            let start = usize::try_from(pos).map_err(|_| io::ErrorKind::UnexpectedEof)?;
            let src = start
                .checked_add(buf.len())
                .and_then(|end| f.data.get(start..end))
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.with(|f| {
            let start = usize::try_from(pos).map_err(|_| io::ErrorKind::InvalidInput)?;
            let end = start
                .checked_add(buf.len())
                .ok_or(io::ErrorKind::InvalidInput)?;
            if f.data.len() < end {
                f.data.resize(end, 0);
            }
            f.data[start..end].copy_from_slice(buf);
            f.dirty_from = f.dirty_from.min(start);
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(|f| {
            let keep = f.dirty_from.min(f.data.len()).min(f.durable.len());
            f.durable.truncate(keep);
            f.durable.extend_from_slice(&f.data[keep..]);
            f.dirty_from = f.data.len();
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f| {
            let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
            if len < f.data.len() {
                f.dirty_from = f.dirty_from.min(len);
            } else if len > f.data.len() {
                f.dirty_from = f.dirty_from.min(f.data.len());
            }
            f.data.resize(len, 0);
            Ok(())
        })
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|f| Ok(f.data.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn unsynced_data_and_entries_are_dropped_at_power_off() {
        let s = PowerOffStorage::new(1, false);
        s.create_dir_all(p("/d/a")).expect("mkdir");
        // Synced file in a synced directory: survives.
        let f = s.open(p("/d/a/kept"), true).expect("create");
        s.sync_dir(p("/d/a")).expect("sync dir");
        f.write_all_at(b"durable", 0).expect("write");
        f.sync_data().expect("sync");
        f.write_all_at(b"-volatile", 7).expect("write");
        // Data synced, entry not: gone.
        let g = s.open(p("/d/a/lost"), true).expect("create");
        g.write_all_at(b"x", 0).expect("write");
        g.sync_data().expect("sync");
        // A rename whose directory was not synced reverts.
        s.create_dir_all(p("/d/b")).expect("mkdir");
        s.write_file_synced(p("/d/b/old"), b"o").expect("write");
        s.rename(p("/d/b/old"), p("/d/b/new")).expect("rename");
        let (s2, stats) = s.power_off();
        assert_eq!(s2.read_file(p("/d/a/kept")).expect("read"), b"durable");
        assert!(!s2.exists(p("/d/a/lost")));
        assert!(!s2.exists(p("/d/b/new")));
        assert_eq!(s2.read_file(p("/d/b/old")).expect("read"), b"o");
        assert_eq!(stats.files_rolled_back, 1, "{stats:?}");
        assert_eq!(stats.bytes_dropped, 9, "{stats:?}");
        assert_eq!(stats.dirs_reverted, 2, "{stats:?}");
        // The old broker's handles are dead.
        assert!(f.write_all_at(b"late", 0).is_err());
        assert!(s.sync_dir(p("/d")).is_err());
        assert!(!s.exists(p("/d")));
    }

    #[test]
    fn overwrites_and_truncations_roll_back_to_the_synced_content() {
        let s = PowerOffStorage::new(7, true);
        s.create_dir_all(p("/d")).expect("mkdir");
        let f = s.open(p("/d/f"), true).expect("create");
        s.sync_dir(p("/d")).expect("sync dir");
        f.write_all_at(b"abcdef", 0).expect("write");
        f.sync_data().expect("sync");
        f.set_len(2).expect("truncate");
        f.write_all_at(b"XY", 2).expect("write");
        let (s2, _) = s.power_off();
        // Not an append-only change: never torn, back to the synced bytes.
        assert_eq!(s2.read_file(p("/d/f")).expect("read"), b"abcdef");
    }

    #[test]
    fn torn_appends_keep_a_prefix_of_the_unsynced_bytes() {
        let mut torn = 0;
        for seed in 0..64 {
            let s = PowerOffStorage::new(seed, true);
            s.create_dir_all(p("/d")).expect("mkdir");
            let f = s.open(p("/d/f"), true).expect("create");
            s.sync_dir(p("/d")).expect("sync dir");
            f.write_all_at(b"1234", 0).expect("write");
            f.sync_data().expect("sync");
            f.write_all_at(b"56789", 4).expect("write");
            let (s2, stats) = s.power_off();
            let got = s2.read_file(p("/d/f")).expect("read");
            assert!(b"123456789".starts_with(&got) && got.len() >= 4, "{got:?}");
            torn += stats.files_torn;
        }
        assert!(torn > 0 && torn < 64, "torn {torn} of 64");
    }

    #[test]
    fn removed_files_and_directories_come_back_unless_the_parent_was_synced() {
        let s = PowerOffStorage::new(3, false);
        s.create_dir_all(p("/d/x")).expect("mkdir");
        s.write_file_synced(p("/d/x/f"), b"1").expect("write");
        s.write_file_synced(p("/d/g"), b"2").expect("write");
        s.remove_dir_all(p("/d/x")).expect("rm");
        s.remove_file(p("/d/g")).expect("rm");
        let (s2, _) = s.power_off();
        assert_eq!(s2.read_file(p("/d/x/f")).expect("read"), b"1");
        s2.remove_dir_all(p("/d/x")).expect("rm");
        s2.sync_dir(p("/d")).expect("sync");
        let (s3, _) = s2.power_off();
        assert!(!s3.exists(p("/d/x")));
        assert_eq!(s3.read_file(p("/d/g")).expect("read"), b"2");
    }
}
