//! The data directory: which partition logs exist, opening them at start, deleting them.
//!
//! Layout: `<log.dirs>/<topic>-<partition>/` per partition (like Kafka). Deleting a topic
//! renames its directories to `<topic>-<partition>.<n>-delete` first (atomic on one filesystem),
//! then removes them, so a crash mid-delete never leaves a half-deleted log that looks live.
//! Every filesystem operation goes through the [`Storage`] seam the broker was given.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tracing::{info, warn};

use crate::log::flusher::Flusher;

/// The file in a partition's directory naming its topic's id (`version: 0`, `topic_id: <id>`),
/// as Kafka writes it.
pub const PARTITION_METADATA: &str = "partition.metadata";
use crate::log::io::{OsStorage, Storage};
use crate::log::{now_ms, LogConfig, LogError, PartitionLog};

pub type PartitionKey = (Arc<str>, i32);

pub struct LogManager {
    root: PathBuf,
    storage: Arc<dyn Storage>,
    logs: DashMap<PartitionKey, Arc<PartitionLog>>,
    delete_seq: AtomicU64,
    flusher: Flusher,
}

impl LogManager {
    pub fn new(root: &Path) -> Result<Self, LogError> {
        Self::with_storage(root, Arc::new(OsStorage))
    }

    /// The data directory `root` on `storage` (tests pass a fault-injecting or power-off one).
    pub fn with_storage(root: &Path, storage: Arc<dyn Storage>) -> Result<Self, LogError> {
        storage.create_dir_all(root)?;
        // Finish deletions interrupted by a crash.
        let mut finished = false;
        for entry in storage.list_dir(root)? {
            if entry.is_dir && entry.name.ends_with("-delete") {
                storage.remove_dir_all(&root.join(&entry.name))?;
                finished = true;
            }
        }
        if finished {
            storage.sync_dir(root)?;
        }
        Ok(LogManager {
            root: root.to_path_buf(),
            storage,
            logs: DashMap::new(),
            delete_seq: AtomicU64::new(0),
            flusher: Flusher::start()?,
        })
    }

    /// Group commit across partitions for produce (see [`Flusher`]).
    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn dir_name(topic: &str, partition: i32) -> String {
        format!("{topic}-{partition}")
    }

    /// Opens (recovering) or creates a partition log.
    pub fn open(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        let key: PartitionKey = (Arc::from(topic), partition);
        if let Some(log) = self.logs.get(&key) {
            return Ok(log.clone());
        }
        let name = Self::dir_name(topic, partition);
        let log = Arc::new(PartitionLog::open_with(
            self.storage.clone(),
            &self.root.join(&name),
            &name,
            config,
            now_ms(),
        )?);
        self.logs.insert(key, log.clone());
        Ok(log)
    }

    /// [`LogManager::open`] for a partition of the topic whose id prints as `topic_id`
    /// (Kafka's text form). Its directory records that id in [`PARTITION_METADATA`] (Kafka's
    /// file and format); a directory that records another id belongs to an older topic of the
    /// same name (deleted and re-created while this broker was away): it is renamed aside as
    /// a stray (not served, not deleted) and the partition starts empty.
    pub fn open_for_topic(
        &self,
        topic: &str,
        partition: i32,
        topic_id: &str,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        let name = Self::dir_name(topic, partition);
        let want = format!("version: 0\ntopic_id: {topic_id}\n");
        if self.get(topic, partition).is_none() {
            let file = self.root.join(&name).join(PARTITION_METADATA);
            if self.storage.exists(&file) {
                let text = self.storage.read_file(&file)?;
                if text != want.as_bytes() {
                    let stray = format!("{name}.{}-stray", uuid::Uuid::new_v4().simple());
                    self.storage
                        .rename(&self.root.join(&name), &self.root.join(&stray))?;
                    self.storage.sync_dir(&self.root)?;
                    warn!(dir = %name, renamed = %stray, recorded = %String::from_utf8_lossy(&text).trim(), topic_id, "partition directory of another topic with this name (deleted and re-created) renamed aside");
                }
            }
        }
        let log = self.open(topic, partition, config)?;
        if log.read_checkpoint(PARTITION_METADATA)?.as_deref() != Some(want.as_bytes()) {
            log.write_checkpoint(PARTITION_METADATA, want.as_bytes())?;
        }
        Ok(log)
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.logs
            .get(&(Arc::from(topic), partition))
            .map(|l| l.clone())
    }

    pub fn all(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.iter().map(|e| e.value().clone()).collect()
    }

    /// Removes a partition's log and its files.
    pub fn delete(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let key: PartitionKey = (Arc::from(topic), partition);
        let dir = self.root.join(Self::dir_name(topic, partition));
        self.logs.remove(&key);
        if self.storage.exists(&dir) {
            let seq = self.delete_seq.fetch_add(1, Ordering::Relaxed);
            let doomed = self.root.join(format!(
                "{}.{}-{}-delete",
                Self::dir_name(topic, partition),
                now_ms(),
                seq
            ));
            // The rename is made durable before anything is removed: a crash then finds either
            // the live directory (the metadata no longer names it: renamed aside as a stray)
            // or the `-delete` one (removal finished at start).
            self.storage.rename(&dir, &doomed)?;
            self.storage.sync_dir(&self.root)?;
            self.storage.remove_dir_all(&doomed)?;
            self.storage.sync_dir(&self.root)?;
            info!(topic, partition, "deleted partition log");
        }
        Ok(())
    }

    /// Names of the directories under the data directory that look like partition logs
    /// (`<topic>-<partition>`), whether or not the metadata knows them.
    pub fn partition_dirs(&self) -> Vec<String> {
        let Ok(entries) = self.storage.list_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter(|e| e.is_dir)
            .map(|e| e.name)
            .filter(|name| {
                name.rsplit_once('-')
                    .is_some_and(|(_, p)| p.parse::<i32>().is_ok())
            })
            .collect()
    }

    /// Renames partition directories that the cluster metadata does not know (a topic deleted
    /// while the broker was down mid-way, a metadata record lost, or left by hand) aside to
    /// `<topic>-<partition>.<id>-stray`, as Kafka does: never deleted, never served, left for
    /// an operator to inspect or remove. Returns the new names.
    pub fn quarantine_strays(&self, known: &HashSet<String>) -> Result<Vec<String>, LogError> {
        let mut moved = Vec::new();
        for name in self.partition_dirs() {
            if known.contains(&name) {
                continue;
            }
            let stray = format!("{name}.{}-stray", uuid::Uuid::new_v4().simple());
            self.storage
                .rename(&self.root.join(&name), &self.root.join(&stray))?;
            warn!(dir = %name, renamed = %stray, "partition directory unknown to the cluster metadata renamed aside (not served, not deleted)");
            moved.push(stray);
        }
        if !moved.is_empty() {
            self.storage.sync_dir(&self.root)?;
        }
        Ok(moved)
    }

    /// Flushes every log and writes the active segments' indexes (graceful shutdown).
    pub fn close_all(&self) {
        for log in self.all() {
            if let Err(e) = log.close() {
                warn!(log = log.name(), error = %e, "error closing log");
            }
        }
    }
}

/// (total, usable) bytes of the filesystem holding `path` (DescribeLogDirs).
#[allow(unsafe_code)]
pub fn disk_space(path: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    Some((
        (st.f_blocks as i64).saturating_mul(frsize),
        (st.f_bavail as i64).saturating_mul(frsize),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::build_batch;

    #[test]
    fn a_directory_of_another_topic_with_the_same_name_is_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogManager::new(dir.path()).expect("logs");
        let log = logs
            .open_for_topic("t", 0, "old-id", LogConfig::default())
            .expect("open");
        log.append(&build_batch(0, 3, b"v"), 0, 0).expect("append");
        assert_eq!(log.log_end_offset(), 3);
        let file = dir.path().join("t-0").join(PARTITION_METADATA);
        assert_eq!(
            std::fs::read_to_string(&file).expect("partition.metadata"),
            "version: 0\ntopic_id: old-id\n"
        );
        logs.close_all();
        drop(log);
        drop(logs);
        // The same topic again: its data is kept.
        let logs = LogManager::new(dir.path()).expect("logs");
        let log = logs
            .open_for_topic("t", 0, "old-id", LogConfig::default())
            .expect("reopen");
        assert_eq!(log.log_end_offset(), 3);
        logs.close_all();
        drop(log);
        drop(logs);
        // A topic of that name with another id: the old directory goes aside, the log is new.
        let logs = LogManager::new(dir.path()).expect("logs");
        let log = logs
            .open_for_topic("t", 0, "new-id", LogConfig::default())
            .expect("open the new topic's partition");
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(
            std::fs::read_to_string(&file).expect("partition.metadata"),
            "version: 0\ntopic_id: new-id\n"
        );
        let strays: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("t-0.") && n.ends_with("-stray"))
            .collect();
        assert_eq!(strays.len(), 1, "the old directory kept aside: {strays:?}");
        assert_eq!(logs.partition_dirs(), vec!["t-0".to_string()]);
    }
}
