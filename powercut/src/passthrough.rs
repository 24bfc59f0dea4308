//! The FUSE file system: every call goes to the same path under the backing
//! directory, and every change is noted in the [`Journal`] first.
//!
//! Inodes are the backing files' own inode numbers (the root is 1). Attributes
//! and entries are never cached by the kernel (zero TTL), so what a process
//! sees is always the backing directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite,
    Request, TimeOrNow, WriteFlags,
};

use crate::journal::Journal;

/// The kernel caches nothing: a rolled-back file must never show its old size.
const TTL: Duration = Duration::ZERO;

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

/// The file system served over FUSE.
pub(crate) struct Passthrough {
    pub(crate) state: Arc<Mutex<State>>,
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

impl State {
    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    /// Stats `path` and remembers its inode; the backing root is inode 1.
    fn remember(&mut self, path: PathBuf) -> io::Result<FileAttr> {
        let meta = std::fs::symlink_metadata(&path)?;
        let root = self.paths.get(&INodeNo::ROOT.0).is_some_and(|r| *r == path);
        let ino = if root { INodeNo::ROOT.0 } else { meta.ino() };
        self.paths.insert(ino, path);
        Ok(attr(ino, &meta))
    }

    fn open_handle(&mut self, file: File) -> FileHandle {
        self.next_handle += 1;
        self.files.insert(self.next_handle, file);
        FileHandle(self.next_handle)
    }

    fn file(&self, fh: FileHandle) -> Result<&File, Errno> {
        self.files.get(&fh.0).ok_or(Errno::EBADF)
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

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = lock(&self.state);
        let found = state.path(parent).and_then(|dir| state.remember(dir.join(name)).map_err(errno));
        match found {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = lock(&self.state);
        match state.path(ino).and_then(|p| std::fs::symlink_metadata(p).map_err(errno)) {
            Ok(meta) => reply.attr(&TTL, &attr(ino.0, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = lock(&self.state);
        let done = (|| -> Result<Metadata, Errno> {
            let path = state.path(ino)?;
            if let Some(size) = size {
                state.journal.before_truncate(ino.0, &path, size).map_err(errno)?;
                File::options().write(true).open(&path).and_then(|f| f.set_len(size)).map_err(errno)?;
            }
            if let Some(mode) = mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(errno)?;
            }
            std::fs::symlink_metadata(&path).map_err(errno)
        })();
        match done {
            Ok(meta) => reply.attr(&TTL, &attr(ino.0, &meta)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let mut state = lock(&self.state);
        let made = state.path(parent).and_then(|dir| {
            let path = dir.join(name);
            std::fs::DirBuilder::new().mode(mode).create(&path).map_err(errno)?;
            state.journal.entry_created(parent.0, path.clone());
            state.remember(path).map_err(errno)
        });
        match made {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.remove(parent, name, |p| std::fs::remove_file(p)));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.remove(parent, name, |p| std::fs::remove_dir(p)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = lock(&self.state);
        let done = (|| -> Result<(), Errno> {
            let (from, to) = (state.path(parent)?.join(name), state.path(newparent)?.join(newname));
            std::fs::rename(&from, &to).map_err(errno)?;
            state.journal.entry_removed(parent.0, &from);
            state.journal.entry_created(newparent.0, to.clone());
            state.remember(to).map_err(errno).map(drop)
        })();
        reply_empty(reply, done);
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let mut state = lock(&self.state);
        let made = (|| -> Result<FileAttr, Errno> {
            let (from, to) = (state.path(ino)?, state.path(newparent)?.join(newname));
            std::fs::hard_link(&from, &to).map_err(errno)?;
            state.journal.entry_created(newparent.0, to.clone());
            state.remember(to).map_err(errno)
        })();
        match made {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut state = lock(&self.state);
        let opened = state.path(ino).and_then(|p| options_for(flags.0).open(p).map_err(errno));
        match opened {
            Ok(file) => reply.opened(state.open_handle(file), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = lock(&self.state);
        let made = (|| -> Result<(FileAttr, File), Errno> {
            let path = state.path(parent)?.join(name);
            let mut options = options_for(flags);
            options.mode(mode);
            if flags & libc::O_EXCL != 0 { options.create_new(true) } else { options.create(true) };
            let existed = path.exists();
            let file = options.open(&path).map_err(errno)?;
            if !existed {
                state.journal.entry_created(parent.0, path.clone());
            }
            Ok((state.remember(path).map_err(errno)?, file))
        })();
        match made {
            Ok((attr, file)) => {
                let fh = state.open_handle(file);
                reply.created(&TTL, &attr, Generation(0), fh, FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = lock(&self.state);
        let read = state.file(fh).and_then(|file| {
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
        });
        match read {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = lock(&self.state);
        let written = (|| -> Result<(), Errno> {
            let path = state.path(ino)?;
            state.journal.before_write(ino.0, &path, offset, data.len() as u64).map_err(errno)?;
            state.file(fh)?.write_all_at(data, offset).map_err(errno)
        })();
        match written {
            Ok(()) => reply.written(u32::try_from(data.len()).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.state).files.remove(&fh.0);
        reply.ok();
    }

    /// The model's disk: a synced file keeps what it has. No real fsync is
    /// made; the backing directory is scratch space.
    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        lock(&self.state).journal.file_synced(ino.0);
        reply.ok();
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let state = lock(&self.state);
        let entries = state.path(ino).and_then(|dir| {
            let mut entries = vec![(ino.0, FileType::Directory, ".".into()), (ino.0, FileType::Directory, "..".into())];
            for entry in std::fs::read_dir(dir).map_err(errno)? {
                let entry = entry.map_err(errno)?;
                let meta = entry.metadata().map_err(errno)?;
                let kind = FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile);
                entries.push((meta.ino(), kind, entry.file_name()));
            }
            Ok(entries)
        });
        match entries {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(ino), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        lock(&self.state).journal.dir_synced(ino.0);
        reply.ok();
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

impl Passthrough {
    /// Unlink or rmdir: the name is gone, and so is any undo for a file with no name left.
    fn remove(&self, parent: INodeNo, name: &OsStr, remove: impl Fn(&Path) -> io::Result<()>) -> Result<(), Errno> {
        let mut state = lock(&self.state);
        let path = state.path(parent)?.join(name);
        let meta = std::fs::symlink_metadata(&path).map_err(errno)?;
        remove(&path).map_err(errno)?;
        state.journal.entry_removed(parent.0, &path);
        if meta.nlink() <= 1 || meta.is_dir() {
            state.journal.forget_file(meta.ino());
            state.paths.remove(&meta.ino());
        } else if state.paths.get(&meta.ino()) == Some(&path) {
            state.paths.remove(&meta.ino());
        }
        Ok(())
    }
}

fn reply_empty(reply: ReplyEmpty, done: Result<(), Errno>) {
    match done {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}
