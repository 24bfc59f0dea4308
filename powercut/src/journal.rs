//! What a power cut would take away: each file's changes since its last
//! fsync, and the directory entries made since their directory's last fsync.
//!
//! Before a write or a truncate touches bytes that were on "disk" (inside the
//! file's length at its last sync), those bytes are saved; a cut puts them back
//! in reverse order and cuts the file to its synced length. Bytes past that
//! length need no copy: the final truncate removes them.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A file's state since its last fsync.
struct Unsynced {
    /// Its length at the last fsync (or when first seen): what survives a cut.
    synced_len: u64,
    /// Bytes overwritten since, as (offset, old bytes), oldest first.
    undo: Vec<(u64, Vec<u8>)>,
}

/// What a cut undoes; kept per mount.
#[derive(Default)]
pub(crate) struct Journal {
    /// Per inode, the files changed since their last fsync.
    files: HashMap<u64, Unsynced>,
    /// Per directory inode, the entries made in it since its last fsync.
    created: HashMap<u64, HashSet<PathBuf>>,
}

/// What one cut undid, for the tests to check and print.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose contents or length went back to their last fsync.
    pub files_rolled_back: usize,
    /// Directory entries removed because their directory was not synced since.
    pub entries_removed: usize,
}

impl Journal {
    /// Saves what a write of `len` bytes at `offset` will overwrite.
    pub(crate) fn before_write(&mut self, ino: u64, path: &Path, offset: u64, len: u64) -> io::Result<()> {
        self.save(ino, path, offset, offset.saturating_add(len))
    }

    /// Saves what cutting the file to `new_len` will drop.
    pub(crate) fn before_truncate(&mut self, ino: u64, path: &Path, new_len: u64) -> io::Result<()> {
        self.save(ino, path, new_len, u64::MAX)
    }

    /// Reads through its own handle: the writer's may be write-only.
    fn save(&mut self, ino: u64, path: &Path, start: u64, end: u64) -> io::Result<()> {
        if self.files.get(&ino).is_some_and(|e| start >= e.synced_len) {
            return Ok(()); // an append: nothing on "disk" is overwritten
        }
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let entry = self.files.entry(ino).or_insert(Unsynced { synced_len: len, undo: Vec::new() });
        let end = end.min(len).min(entry.synced_len);
        if start < end {
            let size = usize::try_from(end - start).map_err(|_| io::Error::other("write too large"))?;
            let mut old = vec![0; size];
            file.read_exact_at(&mut old, start)?;
            entry.undo.push((start, old));
        }
        Ok(())
    }

    /// The file's contents and length are on "disk" now.
    pub(crate) fn file_synced(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// A file whose last name is gone: nothing of it can come back.
    pub(crate) fn forget_file(&mut self, ino: u64) {
        self.files.remove(&ino);
    }

    /// A new entry `path` in directory `dir` (create, mkdir, link, rename target).
    pub(crate) fn entry_created(&mut self, dir: u64, path: PathBuf) {
        self.created.entry(dir).or_default().insert(path);
    }

    /// An entry removed again before a cut: nothing to undo for it.
    pub(crate) fn entry_removed(&mut self, dir: u64, path: &Path) {
        if let Some(paths) = self.created.get_mut(&dir) {
            paths.remove(path);
        }
    }

    /// The directory's entries are on "disk" now.
    pub(crate) fn dir_synced(&mut self, dir: u64) {
        self.created.remove(&dir);
    }

    /// Puts the backing files back as they were at their last syncs. `path_of`
    /// names an inode's file (None: it is gone, so there is nothing to undo).
    pub(crate) fn roll_back(&mut self, path_of: impl Fn(u64) -> Option<PathBuf>) -> io::Result<CutReport> {
        let mut report = CutReport::default();
        for (ino, unsynced) in self.files.drain() {
            let Some(path) = path_of(ino) else { continue };
            let file = match File::options().write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for (offset, old) in unsynced.undo.iter().rev() {
                file.write_all_at(old, *offset)?;
            }
            file.set_len(unsynced.synced_len)?;
            report.files_rolled_back += 1;
        }
        for path in self.created.drain().flat_map(|(_, paths)| paths) {
            let removed = match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(e) => Err(e),
            };
            match removed {
                Ok(()) => report.entries_removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}
