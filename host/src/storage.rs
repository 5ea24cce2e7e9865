//! A worker's storage folder.
//!
//! ```text
//! {root}/conversations/parts/{seq:010}.json   one file per conversation part
//! {root}/result.json                          the final WorkerResult
//! {root}/events.jsonl                         every event the worker published
//! ```
//!
//! Every file but the append-only event log is written atomically (a temporary file in
//! the same folder, then a rename), so a crash leaves either the old or the new content,
//! never a torn file. The folder is always given explicitly: Colony never falls back to
//! the process's working directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::conversation::{MessagePart, RawPart};
use crate::error::StorageError;

/// One worker's folder.
#[derive(Debug)]
pub struct WorkerStorage {
    root: PathBuf,
    events: Mutex<Option<BufWriter<File>>>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary sibling file, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_data().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl WorkerStorage {
    /// The folder at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            events: Mutex::new(None),
        }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `{root}/conversations/parts`.
    pub fn parts_dir(&self) -> PathBuf {
        self.root.join("conversations").join("parts")
    }

    /// `{root}/result.json`.
    pub fn result_path(&self) -> PathBuf {
        self.root.join("result.json")
    }

    /// `{root}/events.jsonl`.
    pub fn events_path(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }

    /// Writes one part as `{seq:010}.json`. The part must have its `seq`.
    pub fn write_part(&self, part: &MessagePart) -> Result<PathBuf, StorageError> {
        let path = self.part_path(part.seq.unwrap_or(0));
        let bytes = serde_json::to_vec(part).map_err(|source| StorageError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)?;
        Ok(path)
    }

    /// The `seq` of every stored part (from the file names alone), ascending.
    pub(crate) fn part_seqs(&self) -> Result<Vec<u64>, StorageError> {
        let dir = self.parts_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StorageError::Io { path: dir, source }),
        };
        let mut seqs = Vec::new();
        for entry in entries {
            let name = entry.map_err(io_err(&dir))?.file_name();
            if let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|stem| !stem.starts_with('.'))
                .and_then(|stem| stem.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    fn part_path(&self, seq: u64) -> PathBuf {
        self.parts_dir().join(format!("{seq:010}.json"))
    }

    /// The size on disk of part `seq`.
    pub(crate) fn part_size(&self, seq: u64) -> Result<u64, StorageError> {
        let path = self.part_path(seq);
        fs::metadata(&path).map(|m| m.len()).map_err(io_err(&path))
    }

    /// Reads part `seq`, refusing a file that has grown past `max_bytes` since it was
    /// measured (nothing larger is ever read into memory).
    pub(crate) fn read_raw_part(&self, seq: u64, max_bytes: u64) -> Result<RawPart, StorageError> {
        use std::io::Read;
        let path = self.part_path(seq);
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > max_bytes {
            return Err(StorageError::Io {
                path,
                source: std::io::Error::other(format!("grew past {max_bytes} bytes while read")),
            });
        }
        let mut part: RawPart =
            serde_json::from_slice(&bytes).map_err(|source| StorageError::Json { path, source })?;
        part.seq.get_or_insert(seq);
        Ok(part)
    }

    /// Writes part `seq` as the JSON `bytes` (already serialized and counted).
    pub(crate) fn write_part_bytes(&self, seq: u64, bytes: &[u8]) -> Result<(), StorageError> {
        write_atomic(&self.part_path(seq), bytes)
    }

    /// Every stored part, in ascending `seq`. A missing folder is an empty conversation.
    pub fn read_parts(&self) -> Result<Vec<MessagePart>, StorageError> {
        self.part_seqs()?
            .into_iter()
            .map(|seq| {
                let path = self.part_path(seq);
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                let mut part: MessagePart = serde_json::from_slice(&bytes)
                    .map_err(|source| StorageError::Json { path, source })?;
                part.seq.get_or_insert(seq);
                Ok(part)
            })
            .collect()
    }

    /// Writes `value` as pretty JSON to `result.json`, atomically.
    pub fn write_result<T: Serialize>(&self, value: &T) -> Result<(), StorageError> {
        let path = self.result_path();
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| StorageError::Json {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    }

    /// Appends one JSON line to `events.jsonl` and flushes it.
    pub fn append_event<T: Serialize>(&self, event: &T) -> Result<(), StorageError> {
        let mut line = serde_json::to_vec(event).map_err(|source| StorageError::Json {
            path: self.events_path(),
            source,
        })?;
        line.push(b'\n');
        self.append_event_line(&line)
    }

    /// Appends `line` (one JSON document and its newline) to `events.jsonl`.
    pub(crate) fn append_event_line(&self, line: &[u8]) -> Result<(), StorageError> {
        let path = self.events_path();
        let mut guard = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            *guard = Some(BufWriter::new(file));
        }
        let writer = guard.as_mut().expect("opened above");
        writer
            .write_all(line)
            .and_then(|()| writer.flush())
            .map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_in_seq_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = WorkerStorage::new(dir.path());
        for seq in [2u64, 0, 1] {
            let mut part = MessagePart::new("user", format!("m{seq}"));
            part.seq = Some(seq);
            storage.write_part(&part).unwrap();
        }
        let parts = storage.read_parts().unwrap();
        let contents: Vec<_> = parts.iter().map(|p| p.content.as_str()).collect();
        assert_eq!(contents, ["m0", "m1", "m2"]);
        assert!(
            dir.path()
                .join("conversations/parts/0000000002.json")
                .is_file()
        );
    }

    #[test]
    fn atomic_write_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let storage = WorkerStorage::new(dir.path());
        storage.write_result(&serde_json::json!({"a": 1})).unwrap();
        storage.write_result(&serde_json::json!({"a": 2})).unwrap();
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["result.json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(storage.result_path()).unwrap()).unwrap();
        assert_eq!(v["a"], 2);
    }
}
