//! A test harness for power cuts: a FUSE passthrough file system that
//! remembers, per file, what was written since its last `fsync`/`fdatasync`,
//! and per directory, the entries made since its last `fsync`. [`PowerCutFs::cut`]
//! forgets all of that, as a disk losing its cache would: contents and lengths
//! go back to their last sync, unsynced new names disappear.
//!
//! Use: mount a backing directory, run the program under test on the mount
//! point, SIGKILL it (every process using the mount must be gone), call
//! `cut()`, start it again. The mount is made with mount(2) directly (root
//! only, no libfuse or fusermount needed) and is detached when the handle drops,
//! even when a test fails. Not modelled: unlinks and renames of names that were
//! synced come back only as they are (a cut does not resurrect a removed file).
//!
//! - `journal.rs`: what a cut takes away, and the rollback
//! - `backing.rs`: each operation on the backing directory, noted in the journal first
//! - `passthrough.rs`: the FUSE calls, each running its operation and replying

mod backing;
mod journal;
mod passthrough;

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use journal::CutReport;
use backing::{lock, State};
use passthrough::Passthrough;

/// How long a cut waits for the kernel to let go of the old mount.
const UNMOUNT_DEADLINE: Duration = Duration::from_secs(20);

/// A mounted power-cut file system; unmounted (lazily) on drop.
pub struct PowerCutFs {
    /// The real directory the files live in.
    backing: PathBuf,
    /// Where processes see them.
    mountpoint: PathBuf,
    /// The current mount's inodes and journal.
    state: Arc<Mutex<State>>,
    /// The thread serving the mount; None only inside `cut`.
    session: Option<fuser::BackgroundSession>,
}

impl PowerCutFs {
    /// Mounts `backing` at `mountpoint` (both existing directories).
    pub fn mount(backing: &Path, mountpoint: &Path) -> io::Result<Self> {
        let backing = backing.canonicalize()?;
        let mountpoint = mountpoint.canonicalize()?;
        let (state, session) = serve(&backing, &mountpoint)?;
        Ok(Self { backing, mountpoint, state, session: Some(session) })
    }

    /// Where the program under test must keep its files.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Loses power: forgets every write, truncate and new name not synced,
    /// then mounts again. Every process that had files open on the mount must
    /// have been killed and reaped first.
    pub fn cut(&mut self) -> io::Result<CutReport> {
        detach(&self.mountpoint)?;
        if let Some(session) = self.session.take() {
            let deadline = Instant::now() + UNMOUNT_DEADLINE;
            while !session.guard.is_finished() {
                if Instant::now() > deadline {
                    return Err(io::Error::other("the mount is still in use: kill its processes before a cut"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            match session.join() {
                // The kernel ends the connection as the mount goes: the session's normal end.
                Err(e) if !matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::ENODEV)) => return Err(e),
                _ => {}
            }
        }
        let report = {
            let mut state = lock(&self.state);
            let paths = state.paths.clone();
            state.journal.roll_back(|ino| paths.get(&ino).cloned())?
        };
        let (state, session) = serve(&self.backing, &self.mountpoint)?;
        self.state = state;
        self.session = Some(session);
        Ok(report)
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        // Lazy, so a test that failed with the program still running cannot hang here.
        let _ = detach(&self.mountpoint);
    }
}

fn serve(backing: &Path, mountpoint: &Path) -> io::Result<(Arc<Mutex<State>>, fuser::BackgroundSession)> {
    let state = Arc::new(Mutex::new(State::default()));
    lock(&state).paths.insert(fuser::INodeNo::ROOT.0, backing.to_owned());
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("powercut".into())];
    let session = fuser::spawn_mount(Passthrough { state: state.clone() }, mountpoint, &config)?;
    Ok((state, session))
}

/// Detaches the mount now; the kernel ends it once nothing uses it.
fn detach(mountpoint: &Path) -> io::Result<()> {
    let path = CString::new(mountpoint.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: umount2 reads a NUL-terminated path and has no other memory effects.
    let rc = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    match rc {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EINVAL) => Ok(()), // not mounted (any more)
            e => Err(e),
        },
    }
}
