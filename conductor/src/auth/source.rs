//! [`Reloading`]: a file re-read when it changes, for the auth file and TLS material.
//!
//! Callers ask for the current value on use; at most once a second the file's
//! modification time, size and inode are compared with those last loaded, and a
//! changed file is parsed again. A file that no longer parses keeps the last good
//! value (with an error in the log), so a half-written edit never locks everyone out
//! nor opens the door; write the new file beside it and rename it into place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// How often the file's metadata is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of a set of files: (mtime, size, inode) of each.
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

/// Loads the value from the files (in the order given).
type Loader<T> = Box<dyn Fn(&[PathBuf]) -> Result<T, String> + Send + Sync>;

/// A value loaded from files, re-loaded when any of them changes.
pub struct Reloading<T> {
    paths: Vec<PathBuf>,
    what: &'static str,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamp: Stamp,
    checked: Instant,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading").field("what", &self.what).field("paths", &self.paths).finish()
    }
}

impl<T> Reloading<T> {
    /// Loads the value once (an error here is a start-up error) and keeps the files' stamp.
    pub fn open(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: impl Fn(&[PathBuf]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let stamp = stamp(&paths);
        let value = Arc::new(load(&paths)?);
        let state = Mutex::new(State { value, stamp, checked: Instant::now() });
        Ok(Reloading { paths, what, load: Box::new(load), state })
    }

    /// The current value, re-loaded first if a file changed since the last look.
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= CHECK_EVERY {
            state.checked = Instant::now();
            let now = stamp(&self.paths);
            if now != state.stamp {
                match (self.load)(&self.paths) {
                    Ok(value) => {
                        tracing::info!(what = self.what, files = ?self.paths, "reloaded after a change");
                        state.value = Arc::new(value);
                        state.stamp = now;
                    }
                    Err(error) => {
                        // Keep the stamp: the next look tries again until the file is fixed.
                        tracing::error!(what = self.what, %error, "cannot reload; keeping the previous version");
                    }
                }
            }
        }
        state.value.clone()
    }

    /// The first path (the auth file), for messages.
    pub fn path(&self) -> &Path {
        &self.paths[0]
    }
}

fn stamp(paths: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len(), meta.ino()))
        })
        .collect()
}
