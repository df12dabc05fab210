//! The commands that read: `append`, `diff`, `verify`, `digest`, `inspect`.

use crate::args::PytorchArgs;
use crate::Session;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use tensorcast::Options;

pub(crate) fn append(
    file: &std::path::Path,
    inputs: &[PathBuf],
    compress: Option<i32>,
    pytorch: PytorchArgs,
    cx: &Session,
) -> anyhow::Result<()> {
    let options = pytorch.options(&cx.limits);
    let level = tensorcast::tpack::TpackWriteOptions { compress }.level();
    for input in inputs {
        let source = tensorcast::open(input, &options)?;
        cx.warn(source.warnings());
        tensorcast::tpack::append(file, &*source, level, &options.limits)?;
    }
    Ok(())
}

pub(crate) fn diff(
    a: &std::path::Path,
    b: &std::path::Path,
    atol: Option<f64>,
    rtol: Option<f64>,
    cx: &Session,
) -> anyhow::Result<()> {
    let tol = (atol.is_some() || rtol.is_some()).then(|| tensorcast::Tolerance {
        atol: atol.unwrap_or(0.0),
        rtol: rtol.unwrap_or(0.0),
    });
    let plain = Options::with_limits(cx.limits.clone());
    let sa = tensorcast::open(a, &plain)?;
    if let Some(want) = b.to_str().and_then(|t| t.parse::<tensorcast::ContentId>().ok()) {
        // B is a content id (from `digest` or a batch report): compare ids.
        if tol.is_some() {
            anyhow::bail!("a content id compares exact tensors; --atol/--rtol need a second file");
        }
        let got = tensorcast::digest(&*sa)?.id;
        if got != want {
            anyhow::bail!(
                "{}: content id {got}, not {want}: the tensors differ",
                a.display()
            );
        }
        println!(
            "{}: {} tensors, content id {got}",
            a.display(),
            sa.tensors().len()
        );
        return Ok(());
    }
    let sb = tensorcast::open(b, &plain)?;
    let found = tensorcast::diff(&*sa, &*sb, tol)?;
    if !found.is_empty() {
        for d in &found {
            println!("{d}");
        }
        anyhow::bail!(
            "{} and {} differ in {} place(s)",
            a.display(),
            b.display(),
            found.len()
        );
    }
    println!(
        "{} and {}: {} tensors equal",
        a.display(),
        b.display(),
        sa.tensors().len()
    );
    Ok(())
}

pub(crate) fn verify(
    file: &std::path::Path,
    want: Option<tensorcast::ContentId>,
    cx: &Session,
) -> anyhow::Result<()> {
    let options = Options::with_limits(cx.limits.clone());
    let damage = tensorcast::verify(file, &options)?;
    if !damage.is_empty() {
        for d in &damage {
            eprintln!("damaged: {d}");
        }
        anyhow::bail!("{}: {} problem(s) found", file.display(), damage.len());
    }
    if let Some(want) = want {
        let got = tensorcast::digest(&*tensorcast::open(file, &options)?)?.id;
        if got != want {
            anyhow::bail!(
                "{}: content id {got} is not the expected {want}: the tensors differ",
                file.display()
            );
        }
        println!("{}: ok, content id {got}", file.display());
        return Ok(());
    }
    println!("{}: ok", file.display());
    Ok(())
}

pub(crate) fn digest(
    inputs: &[tensorcast::Location],
    json: bool,
    pytorch: PytorchArgs,
    cx: &Session,
) -> anyhow::Result<()> {
    let options = pytorch.options(&cx.limits);
    let mut found = Vec::with_capacity(inputs.len());
    for input in inputs {
        let source = tensorcast::open(input.clone(), &options)?;
        cx.warn(source.warnings());
        let digest = tensorcast::digest(&*source)?;
        if json {
            found.push(digest_json(input, &digest));
        } else {
            println!("{}  {input}", digest.id);
        }
    }
    if json {
        let value = match found.len() {
            1 => found.pop().unwrap_or_default(),
            _ => serde_json::Value::Array(found),
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

fn digest_json(input: &tensorcast::Location, d: &tensorcast::Digest) -> serde_json::Value {
    let tensors: Vec<_> = d
        .tensors
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "kind": t.kind,
                "shape": t.shape,
                "nbytes": t.nbytes,
                "digest": t.hex(),
            })
        })
        .collect();
    serde_json::json!({ "input": input.to_string(), "id": d.id.to_string(), "tensors": tensors })
}

pub(crate) fn edit(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    force: bool,
    set: Vec<tensorcast::MetaEdit>,
    delete: Vec<String>,
    cx: &Session,
) -> anyhow::Result<()> {
    if set.is_empty() && delete.is_empty() {
        anyhow::bail!("nothing to edit: give --set KEY=VALUE or --delete KEY");
    }
    let edits: Vec<_> = delete
        .into_iter()
        .map(tensorcast::MetaEdit::Delete)
        .chain(set)
        .collect();
    let report = tensorcast::edit(file, &edits, output, force, &cx.limits)?;
    if cx.verbosity != crate::progress::Verbosity::Quiet {
        let target = output.unwrap_or(file);
        let how = if report.in_place {
            "committed in place".to_string()
        } else {
            format!(
                "{} bytes of tensor data carried over unchanged",
                report.data_bytes
            )
        };
        eprintln!(
            "edited {}: {} change(s), {}-byte header, {how}",
            target.display(),
            edits.len(),
            report.header_bytes
        );
    }
    Ok(())
}

pub(crate) fn inspect(
    file: &std::path::Path,
    json: bool,
    pytorch: PytorchArgs,
    cx: &Session,
) -> anyhow::Result<()> {
    let source = tensorcast::open(file, &pytorch.options(&cx.limits))?;
    cx.warn(source.warnings());
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    // Written as it is produced: a huge metadata array is never one string.
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, &tensorcast::inspect_json(&*source))
            .map_err(std::io::Error::from)
            .and_then(|()| stdout.write_all(b"\n"))
    } else {
        tensorcast::write_inspect_table(&*source, &mut stdout)
    };
    // A closed pipe (`| head`) is not an error worth reporting.
    match written.and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}
