//! The [`Sink`] trait and [`convert`], which drives `Source → Sink`.

use crate::{Error, Metadata, Result, Source, TensorData, TensorInfo};

/// Everything a sink learns before the first tensor byte: names, dtypes,
/// shapes, sizes and metadata, so headers that precede data can be written.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Tensors in the order they will arrive.
    pub tensors: Vec<TensorInfo>,
    /// Metadata to write.
    pub metadata: Metadata,
}

impl Plan {
    /// The plan of everything `source` holds, in its order.
    pub fn of(source: &dyn Source) -> Plan {
        Plan {
            tensors: source.tensors().to_vec(),
            metadata: source.metadata().clone(),
        }
    }
}

/// A writer of one output format.
///
/// Call order: [`Sink::begin`] once with the plan, then [`Sink::write_tensor`]
/// for every tensor of the plan in plan order, then [`Sink::finish`], which
/// makes the output appear atomically. A sink dropped before `finish` leaves
/// nothing at the target path.
pub trait Sink {
    /// Receives the full plan; computes and writes headers.
    fn begin(&mut self, plan: &Plan) -> Result<()>;

    /// Writes tensor `index` of the plan. `data` must hold exactly the
    /// tensor's `nbytes`; sinks refuse anything else.
    fn write_tensor(&mut self, index: usize, data: TensorData<'_>) -> Result<()>;

    /// Completes the output: flush, fsync, rename into place.
    fn finish(&mut self) -> Result<()>;
}

/// Streams every tensor of `source` into `sink`, one at a time.
pub fn convert(source: &dyn Source, sink: &mut dyn Sink) -> Result<()> {
    let plan = Plan::of(source);
    sink.begin(&plan)?;
    for index in 0..plan.tensors.len() {
        sink.write_tensor(index, source.tensor_data(index)?)?;
    }
    sink.finish()
}

/// Checks that a tensor delivered exactly the bytes its descriptor promised.
pub fn check_size(info: &TensorInfo, written: u64) -> Result<()> {
    if written == info.nbytes {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "tensor '{}': source delivered {written} bytes, descriptor says {}",
            info.name, info.nbytes
        )))
    }
}
