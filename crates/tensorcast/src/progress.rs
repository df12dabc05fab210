//! Progress reporting hooks: the library calls them, the CLI draws bars or
//! prints log lines (libraries never print).

use std::sync::Arc;
use tensorcast_core::{Plan, Result, Sink, TensorData, TensorInfo};

/// Callbacks a conversion makes as it goes.
pub trait Progress: Send + Sync {
    /// The conversion starts: everything it will write.
    fn begin(&self, tensors: usize, bytes: u64);
    /// A tensor has been written.
    fn tensor_done(&self, info: &TensorInfo);

    /// `n` more output bytes have been handed to the writer: called per
    /// chunk, so a bar moves within a large tensor.
    fn bytes_done(&self, n: u64) {
        let _ = n;
    }
}

/// A shareable progress hook for [`crate::ConvertOptions`].
#[derive(Clone)]
pub struct ProgressHook(pub Arc<dyn Progress>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

/// A sink that reports each finished tensor.
pub struct ProgressSink<'a> {
    inner: &'a mut dyn Sink,
    hook: Arc<dyn Progress>,
    plan: Vec<TensorInfo>,
}

impl<'a> ProgressSink<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut dyn Sink, hook: Arc<dyn Progress>) -> Self {
        ProgressSink {
            inner,
            hook,
            plan: Vec::new(),
        }
    }
}

impl Sink for ProgressSink<'_> {
    fn begin(&mut self, plan: &Plan) -> Result<()> {
        self.plan = plan.tensors.clone();
        self.hook
            .begin(plan.tensors.len(), plan.tensors.iter().map(|t| t.nbytes).sum());
        self.inner.begin(plan)
    }

    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()> {
        let nbytes = self.plan.get(index).map_or(0, |t| t.nbytes);
        match data {
            TensorData::Chunks(chunks) => {
                let hook = self.hook.clone();
                let counted = chunks.inspect(move |c| {
                    if let Ok(bytes) = c {
                        hook.bytes_done(bytes.len() as u64);
                    }
                });
                self.inner
                    .write_tensor(index, TensorData::Chunks(Box::new(counted)))?;
            }
            // Copied whole (kernel-side for mapped inputs): counted at once.
            whole => {
                self.inner.write_tensor(index, whole)?;
                self.hook.bytes_done(nbytes);
            }
        }
        if let Some(t) = self.plan.get(index) {
            self.hook.tensor_done(t);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}
