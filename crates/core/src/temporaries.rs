//! The temporary files this process has made and not yet committed or
//! removed, so a front end that catches SIGINT/SIGTERM can remove them
//! before it exits ([`remove_temporaries`]). A killed process (SIGKILL, a
//! crash) cannot; the next write beside them sweeps those once stale.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static LIVE: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn live() -> std::sync::MutexGuard<'static, Vec<(u64, PathBuf)>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered temporary file; dropping it takes the path off the list
/// (after the file was renamed into place or removed).
#[derive(Debug)]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        live().retain(|(id, _)| *id != self.0);
    }
}

/// Puts `path` on the list of temporaries to remove on a signal.
pub fn register_temporary(path: &Path) -> Registered {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    live().push((id, path.to_path_buf()));
    Registered(id)
}

/// Removes every temporary file on the list (for a signal handler's thread:
/// the process exits right after). Returns how many were removed.
pub fn remove_temporaries() -> usize {
    let paths: Vec<PathBuf> = live().iter().map(|(_, p)| p.clone()).collect();
    paths.iter().filter(|p| std::fs::remove_file(p).is_ok()).count()
}
