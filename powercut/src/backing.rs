//! The operations on the backing directory behind each FUSE call, each noting
//! in the [`Journal`] what a cut would undo before it changes anything.
//!
//! Inodes are the backing files' own inode numbers (the root is 1).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileHandle, FileType, INodeNo};

use crate::journal::Journal;

/// What the mount and its handle share.
#[derive(Default)]
pub(crate) struct State {
    /// Inode → a path of it under the backing directory.
    pub(crate) paths: HashMap<u64, PathBuf>,
    /// Open file handles.
    files: HashMap<u64, File>,
    next_handle: u64,
    pub(crate) journal: Journal,
}

pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn attr(ino: u64, meta: &Metadata) -> FileAttr {
    let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
    let time = |secs: i64, nanos: i64| {
        UNIX_EPOCH + Duration::new(u64::try_from(secs).unwrap_or(0), u32::try_from(nanos).unwrap_or(0))
    };
    FileAttr {
        ino: INodeNo(ino),
        size: meta.len(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: 4096,
        flags: 0,
    }
}

/// The backing file's options for the kernel's open flags. O_TRUNC and
/// O_APPEND are the kernel's business: it truncates with setattr (noted in the
/// journal) and gives every write its offset.
fn options_for(flags: i32) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => options.read(true),
        libc::O_WRONLY => options.write(true),
        _ => options.read(true).write(true),
    };
    options.custom_flags(flags & !(libc::O_ACCMODE | libc::O_TRUNC | libc::O_APPEND | libc::O_CREAT | libc::O_EXCL));
    options
}

impl State {
    pub(crate) fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    /// Stats `path` and remembers its inode; the backing root is inode 1.
    pub(crate) fn remember(&mut self, path: PathBuf) -> Result<FileAttr, Errno> {
        let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
        let root = self.paths.get(&INodeNo::ROOT.0).is_some_and(|r| *r == path);
        let ino = if root { INodeNo::ROOT.0 } else { meta.ino() };
        self.paths.insert(ino, path);
        Ok(attr(ino, &meta))
    }

    pub(crate) fn stat(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let meta = std::fs::symlink_metadata(self.path(ino)?).map_err(errno)?;
        Ok(attr(ino.0, &meta))
    }

    fn open_handle(&mut self, file: File) -> FileHandle {
        self.next_handle += 1;
        self.files.insert(self.next_handle, file);
        FileHandle(self.next_handle)
    }

    fn file(&self, fh: FileHandle) -> Result<&File, Errno> {
        self.files.get(&fh.0).ok_or(Errno::EBADF)
    }

    pub(crate) fn close(&mut self, fh: FileHandle) {
        self.files.remove(&fh.0);
    }

    /// A truncate (noted first) and a mode change.
    pub(crate) fn set(&mut self, ino: INodeNo, size: Option<u64>, mode: Option<u32>) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        if let Some(size) = size {
            self.journal.before_truncate(ino.0, &path, size).map_err(errno)?;
            File::options().write(true).open(&path).and_then(|f| f.set_len(size)).map_err(errno)?;
        }
        if let Some(mode) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
        }
        self.stat(ino)
    }

    pub(crate) fn mkdir(&mut self, parent: INodeNo, name: &OsStr, mode: u32) -> Result<FileAttr, Errno> {
        let path = self.path(parent)?.join(name);
        std::fs::DirBuilder::new().mode(mode).create(&path).map_err(errno)?;
        self.journal.entry_created(parent.0, path.clone());
        self.remember(path)
    }

    /// Unlink or rmdir: the name is gone, and so is any undo for a file with no name left.
    pub(crate) fn remove(&mut self, parent: INodeNo, name: &OsStr, remove: impl Fn(&Path) -> io::Result<()>) -> Result<(), Errno> {
        let path = self.path(parent)?.join(name);
        let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
        remove(&path).map_err(errno)?;
        self.journal.entry_removed(parent.0, &path);
        if meta.nlink() <= 1 || meta.is_dir() {
            self.journal.forget_file(meta.ino());
            self.paths.remove(&meta.ino());
        } else if self.paths.get(&meta.ino()) == Some(&path) {
            self.paths.remove(&meta.ino());
        }
        Ok(())
    }

    pub(crate) fn rename(&mut self, parent: INodeNo, name: &OsStr, newparent: INodeNo, newname: &OsStr) -> Result<(), Errno> {
        let (from, to) = (self.path(parent)?.join(name), self.path(newparent)?.join(newname));
        std::fs::rename(&from, &to).map_err(errno)?;
        self.journal.entry_removed(parent.0, &from);
        self.journal.entry_created(newparent.0, to.clone());
        self.remember(to).map(drop)
    }

    pub(crate) fn link(&mut self, ino: INodeNo, newparent: INodeNo, newname: &OsStr) -> Result<FileAttr, Errno> {
        let (from, to) = (self.path(ino)?, self.path(newparent)?.join(newname));
        std::fs::hard_link(&from, &to).map_err(errno)?;
        self.journal.entry_created(newparent.0, to.clone());
        self.remember(to)
    }

    pub(crate) fn open(&mut self, ino: INodeNo, flags: i32) -> Result<FileHandle, Errno> {
        let file = options_for(flags).open(self.path(ino)?).map_err(errno)?;
        Ok(self.open_handle(file))
    }

    pub(crate) fn create(&mut self, parent: INodeNo, name: &OsStr, mode: u32, flags: i32) -> Result<(FileAttr, FileHandle), Errno> {
        let path = self.path(parent)?.join(name);
        let mut options = options_for(flags);
        options.mode(mode);
        if flags & libc::O_EXCL != 0 { options.create_new(true) } else { options.create(true) };
        let existed = path.exists();
        let file = options.open(&path).map_err(errno)?;
        if !existed {
            self.journal.entry_created(parent.0, path.clone());
        }
        let attr = self.remember(path)?;
        Ok((attr, self.open_handle(file)))
    }

    pub(crate) fn read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let file = self.file(fh)?;
        let mut buf = vec![0; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64).map_err(errno)? {
                0 => break,
                n => filled += n,
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(crate) fn write(&mut self, ino: INodeNo, fh: FileHandle, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let path = self.path(ino)?;
        self.journal.before_write(ino.0, &path, offset, data.len() as u64).map_err(errno)?;
        self.file(fh)?.write_all_at(data, offset).map_err(errno)
    }

    /// `.`, `..` and the directory's entries, with their inodes and kinds.
    pub(crate) fn entries(&self, ino: INodeNo) -> Result<Vec<(u64, FileType, std::ffi::OsString)>, Errno> {
        let mut entries = vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
        for entry in std::fs::read_dir(self.path(ino)?).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let meta = entry.metadata().map_err(errno)?;
            let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
            entries.push((meta.ino(), kind, entry.file_name()));
        }
        Ok(entries)
    }
}
