//! Chosen crash points, so crash-safety tests kill a process at an exact
//! step instead of after a guessed delay (which depends on machine load).
//!
//! With `TENSORCAST_CRASH_AT=NAME` (or `NAME#K`, the K-th time that point is
//! reached), the process aborts there: no destructor runs and no temporary
//! file is cleaned up, as with SIGKILL. With `NAME[#K]@TERM` or `@INT` it
//! sends itself that signal instead and the thread stops there for good, so
//! the front end's signal handling is what ends the process, exactly at
//! that step. Unset, a point costs one load.
//! Without the `crash-points` feature (every build but the test suite's)
//! a point is nothing at all and the variable is ignored.

#[cfg(feature = "crash-points")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "crash-points")]
use std::sync::OnceLock;

/// The environment variable that arms a crash point.
pub const CRASH_AT_VAR: &str = "TENSORCAST_CRASH_AT";

/// What happens at the armed point: abort, or a signal to this process.
#[cfg(feature = "crash-points")]
#[derive(Clone, Copy)]
enum Fate {
    Abort,
    #[cfg(target_os = "linux")]
    Signal(rustix::process::Signal),
}

#[cfg(feature = "crash-points")]
fn armed() -> Option<&'static (String, u64, Fate)> {
    static PLAN: OnceLock<Option<(String, u64, Fate)>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var(CRASH_AT_VAR).ok()?;
        let (spec, fate) = match spec.split_once('@') {
            None => (spec, Fate::Abort),
            #[cfg(target_os = "linux")]
            Some((s, "TERM")) => (s.to_string(), Fate::Signal(rustix::process::Signal::TERM)),
            #[cfg(target_os = "linux")]
            Some((s, "INT")) => (s.to_string(), Fate::Signal(rustix::process::Signal::INT)),
            Some(_) => return None,
        };
        let (name, nth) = match spec.split_once('#') {
            Some((name, k)) => (name.to_string(), k.parse().ok()?),
            None => (spec, 1),
        };
        Some((name, nth, fate))
    })
    .as_ref()
}

/// The environment variables that arm a pause: at the first pass through
/// point `TENSORCAST_PAUSE_AT`, the process creates `FILE.reached` and
/// waits until `FILE` (`TENSORCAST_PAUSE_FILE`) exists, so a test can force
/// an interleaving (start a second writer while the first is inside its
/// critical section) instead of hoping for one.
pub const PAUSE_AT_VAR: &str = "TENSORCAST_PAUSE_AT";
/// See [`PAUSE_AT_VAR`].
pub const PAUSE_FILE_VAR: &str = "TENSORCAST_PAUSE_FILE";

#[cfg(feature = "crash-points")]
fn pause_point(name: &str) {
    static PLAN: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let plan = PLAN.get_or_init(|| {
        Some((
            std::env::var(PAUSE_AT_VAR).ok()?,
            std::env::var_os(PAUSE_FILE_VAR)?.into(),
        ))
    });
    let Some((want, file)) = plan else { return };
    if want != name || DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    let mut reached = file.clone().into_os_string();
    reached.push(".reached");
    let _ = std::fs::write(&reached, b"");
    // Waiting for an event (the file), not for a time.
    while !file.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Aborts the process if `name` is the armed crash point and this is the
/// armed occurrence of it (or pauses there, see [`PAUSE_AT_VAR`]).
#[cfg(feature = "crash-points")]
pub fn crash_point(name: &str) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    pause_point(name);
    if let Some((want, nth, fate)) = armed() {
        if want == name && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            match *fate {
                Fate::Abort => std::process::abort(),
                #[cfg(target_os = "linux")]
                Fate::Signal(signal) => {
                    let _ = rustix::process::kill_process(rustix::process::getpid(), signal);
                    // The handler's thread ends the process; this one never
                    // takes another step.
                    loop {
                        std::thread::park();
                    }
                }
            }
        }
    }
}

/// Aborts the process if `name` is the armed crash point and this is the
/// armed occurrence of it (built without `crash-points`: never).
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn crash_point(name: &str) {
    let _ = name;
}

/// The environment variable that arms a failure point: `NAME` or `NAME#K`
/// makes the K-th pass through that point fail as a full disk does
/// (ENOSPC), so tests can check what a failed write leaves behind.
pub const FAIL_AT_VAR: &str = "TENSORCAST_FAIL_AT";

/// Fails with ENOSPC if `name` is the armed failure point and this is its
/// armed occurrence.
#[cfg(feature = "crash-points")]
pub fn fail_point(name: &str) -> std::io::Result<()> {
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let spec = std::env::var(FAIL_AT_VAR).ok()?;
        match spec.split_once('#') {
            Some((n, k)) => Some((n.to_string(), k.parse().ok()?)),
            None => Some((spec, 1)),
        }
    });
    if let Some((want, nth)) = plan {
        if want == name && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (failure point)",
            ));
        }
    }
    Ok(())
}

/// Never fails (built without `crash-points`).
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn fail_point(name: &str) -> std::io::Result<()> {
    let _ = name;
    Ok(())
}
