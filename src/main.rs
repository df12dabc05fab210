//! The `tensorcast` command: argument parsing and printing; the work is done
//! by the `tensorcast` library crate. One module per concern: arguments
//! (args), the commands (convert, commands, refs, report), advice for
//! library errors, progress display.

use clap::Parser;
use std::process::ExitCode;

mod advice;
mod args;
mod commands;
mod convert;
mod merge;
mod progress;
mod refs;
mod report;
use args::{Cli, Command, ReportAction};
use progress::Verbosity;

/// What every command shares: how chatty to be and the reader limits.
pub(crate) struct Session {
    pub(crate) verbosity: Verbosity,
    pub(crate) limits: tensorcast::Limits,
}

impl Session {
    pub(crate) fn warn(&self, warnings: &[String]) {
        if self.verbosity != Verbosity::Quiet {
            warn_all(warnings)
        }
    }
}

pub(crate) fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let cx = Session {
        verbosity,
        limits: cli.limits.limits(),
    };
    match cli.command {
        Command::Convert(args) => convert::convert(*args, &cx),
        Command::Append {
            file,
            inputs,
            compress,
            pytorch,
        } => commands::append(&file, &inputs, compress, pytorch, &cx),
        Command::Diff { a, b, atol, rtol } => commands::diff(&a, &b, atol, rtol, &cx),
        Command::Verify { file, digest } => commands::verify(&file, digest, &cx),
        Command::Digest {
            inputs,
            json,
            pytorch,
        } => commands::digest(&inputs, json, pytorch, &cx),
        Command::Edit {
            file,
            output,
            force,
            set,
            delete,
        } => commands::edit(&file, output.as_deref(), force, set, delete, &cx),
        Command::Merge(args) => merge::run(*args, &cx),
        Command::Inspect { file, json, pytorch } => commands::inspect(&file, json, pytorch, &cx),
        Command::Refs(args) => refs::run(*args, &cx),
        Command::Report {
            action: ReportAction::Merge { reports, output },
        } => report::merge(&reports, output.as_deref(), &cx),
    }
}

/// An error and its causes, each said once (an I/O error's text is part of
/// the message that wraps it already).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Keeps freed chunk buffers (a few MiB each) in the heap instead of handing
/// them back to the kernel: glibc would otherwise unmap every one and the next
/// chunk would page-fault its memory in again (measured: 300k faults and 3x
/// the system time decoding a 1 GiB tpack). Memory stays bounded by the
/// chunks in flight.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator thresholds; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// SIGINT and SIGTERM end the process after removing the temporary files
/// of whatever it was writing (outputs keep their old contents): a thread
/// waits for them, so nothing runs in signal context. Exit status 128 + the
/// signal's number, as shells report it.
#[cfg(unix)]
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tensorcast::remove_temporaries();
            std::process::exit(128 + signal);
        }
    });
}

#[cfg(not(unix))]
fn clean_up_on_signals() {}

fn main() -> ExitCode {
    tune_allocator();
    clean_up_on_signals();
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let cli = Cli::parse();
    if let Some(n) = cli.jobs {
        // Fails only if a pool already exists, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(n))
            .build_global();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            if let Some(hint) = e.downcast_ref::<tensorcast::Error>().and_then(advice::advice) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}
