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
/// That thread is started once, at the first tensor worth overlapping, and
/// serves every later one: a thread per tensor made a 236-tensor model start
/// 56 threads and spend its time in thread starts and futex waits.
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
    std::thread::scope(|scope| {
        let mut producer: Option<std::sync::mpsc::Sender<Job<'_>>> = None;
        for index in 0..plan.tensors.len() {
            match source.tensor_data(index)? {
                // A tensor smaller than a chunk has nothing to overlap:
                // computed here (per-thread malloc arenas made the peak
                // memory of 200k small tensors depend on scheduling).
                TensorData::Chunks(chunks) if plan.tensors[index].nbytes < crate::CHUNK_BYTES as u64 => {
                    sink.write_tensor(index, TensorData::Chunks(chunks))?
                }
                TensorData::Chunks(chunks) => {
                    let jobs = producer.get_or_insert_with(|| {
                        let (jobs, queue) = std::sync::mpsc::channel::<Job<'_>>();
                        scope.spawn(move || produce(queue));
                        jobs
                    });
                    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
                    if jobs.send((chunks, tx)).is_err() {
                        return Err(Error::usage(
                            code::INTERNAL,
                            "the chunk producer thread ended early",
                        ));
                    }
                    sink.write_tensor(index, TensorData::Chunks(Box::new(rx.into_iter())))?
                }
                direct => sink.write_tensor(index, direct)?,
            }
        }
        // Dropping the job sender ends the producer; the scope joins it.
        drop(producer);
        sink.finish()
    })
}

/// One tensor's chunks and where to send them.
type Job<'a> = (
    Box<dyn Iterator<Item = Result<Vec<u8>>> + Send + 'a>,
    std::sync::mpsc::SyncSender<Result<Vec<u8>>>,
);

/// The producer thread: computes each job's chunks, at most
/// [`CHUNKS_IN_FLIGHT`] ahead of the sink, until the job sender is dropped.
fn produce(queue: std::sync::mpsc::Receiver<Job<'_>>) {
    for (chunks, tx) in queue {
        for chunk in chunks {
            let failed = chunk.is_err();
            // A closed channel means the sink gave up on this tensor: stop
            // producing it (a later job may still come, or none).
            if tx.send(chunk).is_err() || failed {
                break;
            }
        }
    }
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
