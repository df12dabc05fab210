//! ZipNN in a long-lived Python process that compresses and decompresses on
//! request, so its rounds can alternate with ours in one run: this VM's
//! memory and page-cache costs drift by 2-5x over seconds (free guest memory
//! is handed back to the host and faulted in again), and alternating puts
//! both tools under the same conditions.

use super::oracle_python;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Wall time and CPU time of one operation, in seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub wall: f64,
    pub user: f64,
    pub sys: f64,
}

/// CPU time this process has used so far (user, system), in seconds.
pub fn cpu_now() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (secs(r.ru_utime), secs(r.ru_stime))
}

/// Times `f` (wall and this process's CPU).
pub fn sample<T>(f: impl FnOnce() -> T) -> (Sample, T) {
    let (u0, s0) = cpu_now();
    let t = std::time::Instant::now();
    let out = f();
    let wall = t.elapsed().as_secs_f64();
    let (u1, s1) = cpu_now();
    (
        Sample {
            wall,
            user: u1 - u0,
            sys: s1 - s0,
        },
        out,
    )
}

const SERVER: &str = r#"
import sys, time, json, resource
from zipnn import ZipNN
original = open(sys.argv[1], "rb").read()
z = ZipNN(input_format="byte", bytearray_dtype=sys.argv[2])
packed = None
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime
for line in sys.stdin:
    op = line.strip()
    u0, s0 = cpu()
    if op == "c":
        # ZipNN 0.5.4 rewrites its input buffer in place: a fresh copy each time.
        fresh = bytearray(original)
        u0, s0 = cpu(); t = time.perf_counter()
        packed = z.compress(fresh)
        wall = time.perf_counter() - t; u1, s1 = cpu()
        del fresh
    elif op in ("d", "check"):
        t = time.perf_counter()
        out = z.decompress(packed)
        wall = time.perf_counter() - t; u1, s1 = cpu()
        if op == "check" and bytes(out) != original:
            sys.exit("ZipNN did not round-trip")
        del out
    else:
        sys.exit("unknown op " + op)
    print(json.dumps({"wall": wall, "user": u1 - u0, "sys": s1 - s0, "size": len(packed)}), flush=True)
"#;

/// A running ZipNN server for one input file.
pub struct Zipnn {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Compressed size of the last compress.
    pub size: u64,
}

impl Zipnn {
    /// Starts ZipNN on `input` read as `dtype` (`bfloat16`, `float32`);
    /// `None` without the oracle Python or ZipNN.
    pub fn start(input: &Path, dtype: &str) -> Option<Zipnn> {
        let py = oracle_python()?;
        let mut child = Command::new(py)
            .arg("-c")
            .arg(SERVER)
            .arg(input)
            .arg(dtype)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        let mut z = Zipnn {
            child,
            stdin,
            stdout,
            size: 0,
        };
        // Fails here when zipnn is not installed.
        z.op("c")?;
        z.op("check")?;
        Some(z)
    }

    /// Runs `op` (`c` compress, `d` decompress, `check` decompress and compare).
    pub fn op(&mut self, op: &str) -> Option<Sample> {
        writeln!(self.stdin, "{op}").ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let j: serde_json::Value = serde_json::from_str(&line).ok()?;
        self.size = j["size"].as_u64()?;
        Some(Sample {
            wall: j["wall"].as_f64()?,
            user: j["user"].as_f64()?,
            sys: j["sys"].as_f64()?,
        })
    }
}

impl Drop for Zipnn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
