//! `tensorcast merge`: a mergekit configuration file, or one written from
//! the flags (so what is recorded in the output is mergekit's YAML either way).

use crate::args::MergeArgs;
use crate::Session;
use anyhow::Context;
use tensorcast::merge::MergeConfig;

pub(crate) fn run(args: MergeArgs, cx: &Session) -> anyhow::Result<()> {
    let text = match &args.method {
        None => {
            let [config] = args.inputs.as_slice() else {
                anyhow::bail!("give one configuration file (CONFIG.yml), or the models and --method");
            };
            // A regular file of bounded size: a FIFO would block the read
            // forever, /dev/zero never end it.
            let meta = std::fs::metadata(config).with_context(|| format!("reading {config}"))?;
            if !meta.is_file() || meta.len() > tensorcast::merge::MAX_CONFIG_BYTES as u64 {
                anyhow::bail!(
                    "{config}: a merge configuration is a regular file of at most {} bytes",
                    tensorcast::merge::MAX_CONFIG_BYTES
                );
            }
            std::fs::read_to_string(config).with_context(|| format!("reading {config}"))?
        }
        Some(method) => yaml_from_flags(method, &args)?,
    };
    let config = MergeConfig::from_yaml(&text)?;
    let mut opts = tensorcast::ConvertOptions {
        force: args.force,
        to: args.to.clone(),
        quantize: args.quantize,
        imatrix: args.imatrix.clone(),
        ..Default::default()
    };
    opts.options.limits = cx.limits.clone();
    let report = tensorcast::merge::merge(&config, args.output.as_path(), &opts, args.seed)?;
    cx.warn(&report.warnings);
    if cx.verbosity != crate::progress::Verbosity::Quiet {
        eprintln!(
            "merged {} tensors ({}) into {}",
            report.tensors,
            config.method.name(),
            args.output.display()
        );
    }
    Ok(())
}

/// JSON strings are YAML strings: every value quoted that way.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn yaml_from_flags(method: &str, args: &MergeArgs) -> anyhow::Result<String> {
    if !args.weight.is_empty() && args.weight.len() != args.inputs.len() {
        anyhow::bail!(
            "--weight gives {} weights for {} models",
            args.weight.len(),
            args.inputs.len()
        );
    }
    let mut y = format!("merge_method: {}\n", quoted(method));
    if let Some(base) = &args.base {
        y += &format!("base_model: {}\n", quoted(base));
    }
    y += "models:\n";
    for (i, model) in args.inputs.iter().enumerate() {
        y += &format!("  - model: {}\n", quoted(model));
        let mut params = Vec::new();
        if let Some(w) = args.weight.get(i) {
            params.push(format!("weight: {w:?}"));
        }
        if let Some(d) = args.density {
            params.push(format!("density: {d:?}"));
        }
        if !params.is_empty() {
            y += &format!("    parameters: {{{}}}\n", params.join(", "));
        }
    }
    if let Some(t) = args.t {
        y += &format!("parameters:\n  t: {t:?}\n");
    }
    if let Some(d) = &args.dtype {
        y += &format!("dtype: {}\n", quoted(d));
    }
    Ok(y)
}
