//! What the CLI shows while it works: a progress bar on a terminal, plain log
//! lines with `-v` elsewhere, nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use tensorcast::{Progress, TensorInfo};

/// How chatty to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Warnings, summaries, and a bar on a terminal.
    Normal,
    /// Also a log line per tensor (per file in batches).
    Verbose,
}

/// Per-tensor progress of one conversion.
pub struct ConvertProgress {
    bar: Option<ProgressBar>,
    verbose: bool,
    state: Mutex<(usize, usize)>,
}

impl ConvertProgress {
    /// `None` when nothing would be shown.
    pub fn new(v: Verbosity) -> Option<ConvertProgress> {
        let bar = (v != Verbosity::Quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        let verbose = v == Verbosity::Verbose;
        (bar.is_some() || verbose).then_some(ConvertProgress {
            bar,
            verbose,
            state: Mutex::new((0, 0)),
        })
    }
}

impl Progress for ConvertProgress {
    fn bytes_done(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn begin(&self, tensors: usize, bytes: u64) {
        if let Ok(mut s) = self.state.lock() {
            *s = (0, tensors);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_message(format!("0/{tensors} tensors"));
        }
        if self.verbose {
            eprintln!("converting {tensors} tensors, {bytes} bytes");
        }
    }

    fn tensor_done(&self, info: &TensorInfo) {
        let (done, total) = match self.state.lock() {
            Ok(mut s) => {
                s.0 += 1;
                *s
            }
            Err(_) => return,
        };
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{done}/{total} tensors"));
            if done == total {
                bar.finish_and_clear();
            }
        }
        if self.verbose {
            eprintln!(
                "wrote {done}/{total} {} {} {:?} ({} bytes)",
                info.name, info.dtype, info.shape, info.nbytes
            );
        }
    }
}

impl ConvertProgress {
    /// Names what the bar is for (the output's file name).
    pub fn label(self, label: &str) -> Self {
        if let Some(bar) = &self.bar {
            bar.set_prefix(label.to_string());
        }
        self
    }
}

/// A bar over the files of a batch.
pub fn batch_bar(v: Verbosity, files: usize) -> Option<ProgressBar> {
    (v != Verbosity::Quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(Some(files as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}
