//! The [`Sink`] trait and [`convert`], which drives `Source → Sink`.

use crate::code;
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

/// Chunks produced ahead of the writer: enough to keep both sides busy,
/// few enough that memory stays a small multiple of a chunk.
const CHUNKS_IN_FLIGHT: usize = 2;

/// Streams every tensor of `source` into `sink`, one at a time. Tensors whose
/// bytes are computed (cast, dequantized) are produced on a second thread
/// while the sink writes the previous chunk, so decoding hides behind I/O.
pub fn convert(source: &dyn Source, sink: &mut dyn Sink) -> Result<()> {
    if let Some(e) = source
        .tensors()
        .iter()
        .find_map(|t| t.unreadable_error(source.format()))
    {
        return Err(e);
    }
    let plan = Plan::of(source);
    sink.begin(&plan)?;
    for index in 0..plan.tensors.len() {
        match source.tensor_data(index)? {
            // A tensor smaller than a chunk has nothing to overlap: computed
            // here, without a thread (a thread per tensor cost a thread start
            // for each of 200k empty tensors, and per-thread malloc arenas
            // made the peak memory depend on scheduling).
            TensorData::Chunks(chunks) if plan.tensors[index].nbytes < crate::CHUNK_BYTES as u64 => {
                sink.write_tensor(index, TensorData::Chunks(chunks))?
            }
            TensorData::Chunks(chunks) => std::thread::scope(|scope| {
                let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
                scope.spawn(move || {
                    for chunk in chunks {
                        let failed = chunk.is_err();
                        // A closed channel means the sink gave up: stop producing.
                        if tx.send(chunk).is_err() || failed {
                            break;
                        }
                    }
                });
                sink.write_tensor(index, TensorData::Chunks(Box::new(rx.into_iter())))
            })?,
            direct => sink.write_tensor(index, direct)?,
        }
    }
    sink.finish()
}

/// Checks that a tensor delivered exactly the bytes its descriptor promised.
pub fn check_size(info: &TensorInfo, written: u64) -> Result<()> {
    if written == info.nbytes {
        Ok(())
    } else {
        Err(Error::usage(
            code::INTERNAL,
            format!(
                "tensor '{}': source delivered {written} bytes, descriptor says {}",
                info.name, info.nbytes
            ),
        ))
    }
}
