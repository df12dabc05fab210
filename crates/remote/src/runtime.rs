//! The one async runtime object_store's futures run on. Callers are
//! blocking code (readers, writers, the CLI), never async tasks.

use std::future::Future;
use std::sync::OnceLock;
use tensorcast_core::code;
use tensorcast_core::{Error, Result};
use tokio::runtime::Runtime;

/// The shared runtime (two workers: network waits, not computation).
pub(crate) fn runtime() -> Result<&'static Runtime> {
    static RT: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tensorcast-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        Error::unsupported(
            code::BAD_LOCATION,
            format!("the I/O runtime for object stores could not start: {e}"),
        )
    })
}

/// Runs `f` to completion from blocking code.
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}
