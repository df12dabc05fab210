//! `tensorcast refs`: flags -> RefsOptions, the reference set written
//! atomically, the tensors left out listed on stderr.

use crate::args::PytorchArgs;
use crate::progress::Verbosity;
use crate::Session;
use std::path::PathBuf;

/// `refs`'s flags.
#[derive(clap::Args)]
pub struct RefsArgs {
    /// The file to describe (safetensors or its sharded index, GGUF,
    /// PyTorch zip, .npy/.npz, tpack).
    input: PathBuf,
    /// The reference set to write (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// How the refs name INPUT (default: as given), e.g.
    /// s3://bucket/model.safetensors; shards and parts are named beside it.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Dimension names of a tensor (default NAME_dim_0, ...); repeatable.
    #[arg(long, value_name = "NAME=D0,D1,...", value_parser = parse_dims)]
    dims: Vec<(String, Vec<String>)>,
    /// Embed these tensors' bytes in the refs (as VirtualiZarr's
    /// loadable_variables); repeatable.
    #[arg(long, value_name = "NAME")]
    inline: Vec<String>,
    /// Embed every tensor smaller than SIZE.
    #[arg(long, value_name = "SIZE", value_parser = tensorcast::parse_size)]
    inline_below: Option<u64>,
    /// Split tensors larger than SIZE into chunks along their first axis
    /// (whole rows, equal chunks), so a slice reads only its rows.
    #[arg(long, value_name = "SIZE", value_parser = tensorcast::parse_size, default_value = "64MiB")]
    chunk_bytes: u64,
    /// Write the tensors that are not byte ranges of INPUT (compressed,
    /// strided, ggml blocks dequantized to F32) to DIR/<INPUT name>.materialized
    /// and reference them there.
    #[arg(long, value_name = "DIR")]
    materialize: Option<PathBuf>,
    /// Replace OUTPUT (and the sidecar) if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    pytorch: PytorchArgs,
}

fn parse_dims(s: &str) -> Result<(String, Vec<String>), String> {
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("--dims is NAME=D0,D1,..., not '{s}'"))?;
    Ok((name.to_string(), dims.split(',').map(str::to_string).collect()))
}

/// Runs `refs`.
pub fn run(args: RefsArgs, cx: &Session) -> anyhow::Result<()> {
    let options = args.pytorch.clone().options(&cx.limits);
    let mut opts = tensorcast::RefsOptions::new(
        args.url
            .clone()
            .unwrap_or_else(|| args.input.display().to_string()),
    );
    // Two --dims for one tensor would keep the last without a word.
    for (i, (name, _)) in args.dims.iter().enumerate() {
        if args.dims[..i].iter().any(|(n, _)| n == name) {
            use clap::CommandFactory;
            crate::Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--dims names '{name}' twice"),
                )
                .exit();
        }
    }
    opts.dims = args.dims.iter().cloned().collect();
    opts.inline = args.inline.clone();
    opts.inline_below = args.inline_below;
    opts.chunk_bytes = args.chunk_bytes.max(1);
    opts.materialize = sidecar(&args).map(|path| {
        let url = path.display().to_string();
        (path, url)
    });
    let refs =
        tensorcast::references_file(&args.input, &args.output, &options, &opts, args.force).map_err(|e| {
            match e.kind() {
                tensorcast::ErrorKind::Usage => anyhow::anyhow!("{e} (use --force to replace it)"),
                _ => e.into(),
            }
        })?;
    for (name, why) in &refs.not_virtualizable {
        eprintln!("not virtualizable: {name}: {why}");
    }
    if cx.verbosity != Verbosity::Quiet {
        eprintln!(
            "wrote {}: {} variables, {} chunk references, {} inlined, {} materialized; {} not virtualizable",
            args.output.display(),
            refs.variables,
            refs.chunks,
            refs.inlined,
            refs.materialized,
            refs.not_virtualizable.len()
        );
    }
    Ok(())
}

/// The `--materialize` file for this input.
fn sidecar(args: &RefsArgs) -> Option<PathBuf> {
    let name = args.input.file_name()?.to_string_lossy().into_owned();
    Some(args.materialize.as_ref()?.join(format!("{name}.materialized")))
}
