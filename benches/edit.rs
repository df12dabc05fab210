//! Metadata edits and content ids (issue 34), side by side in one run,
//! alternating which contender goes first:
//!
//! - replacing the chat template of a generated ≥ 1 GiB GGUF (the
//!   262 144-token llama of support::real_gguf as f32, a 6 MB header) with
//!   `tensorcast edit -o` against llama.cpp's `gguf_new_metadata.py`
//!   (gguf-py's, from the oracle Python: `TENSORCAST_ORACLE_PYTHON`, else
//!   `~/.cache/oracle/bin/python`) and against `cp` + `sync`, each output
//!   fsynced, on the scratch folder's file system (ext4 here: no extent
//!   sharing, so the data is copied kernel-side);
//! - the same on an XFS file system with reflink that the bench makes on a
//!   loop device (needs root and mkfs.xfs; skipped otherwise, and with
//!   `TENSORCAST_BENCH_NO_XFS=1`): the goal is ≤ 0.2 s at any model size;
//! - on that XFS, `convert` GGUF -> GGUF of the file (blocks kept): its
//!   tensors and the padding between them are one run cloned by the kernel;
//!   and safetensors -> safetensors of it renaming every tensor (the data
//!   keeps its offset mod 4096), against the same on the scratch file
//!   system, whose bytes must be equal; the same on a Hugging Face-style
//!   checkpoint (metadata `{"format": "pt"}`), whose header is a few KB
//!   where the GGUF-derived file's is 15 MB of vocabulary;
//! - `tensorcast digest` of the same file against `sha256sum`, warm cache.
//!
//! `TENSORCAST_BENCH_GIB` sets the size (default 1), `TENSORCAST_BENCH_RUNS`
//! the rounds (default 3).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const TEMPLATE: &str = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}";

/// A loop-mounted XFS (reflink=1) for the bench's lifetime.
struct Xfs {
    image: PathBuf,
    mount: PathBuf,
}

impl Xfs {
    fn make(dir: &Path, bytes: u64) -> Option<Xfs> {
        if std::env::var_os("TENSORCAST_BENCH_NO_XFS").is_some() {
            return None;
        }
        let image = dir.join("xfs.img");
        let mount = dir.join("xfs");
        let _ = Command::new("umount").arg(&mount).output();
        let _ = std::fs::remove_file(&image);
        std::fs::create_dir_all(&mount).ok()?;
        std::fs::File::create(&image).ok()?.set_len(bytes).ok()?;
        let ok = |c: &mut Command| c.output().map(|o| o.status.success()).unwrap_or(false);
        if !ok(Command::new("mkfs.xfs")
            .args(["-q", "-f", "-m", "reflink=1"])
            .arg(&image))
        {
            eprintln!("xfs: mkfs.xfs unavailable or failed; skipped");
            return None;
        }
        if !ok(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&mount)) {
            eprintln!("xfs: mounting a loop device needs root; skipped");
            let _ = std::fs::remove_file(&image);
            return None;
        }
        Some(Xfs { image, mount })
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Times the three contenders on the file system holding `dir`.
fn edit_side_by_side(label: &str, input: &Path, dir: &Path, python: Option<&Path>, runs: usize) {
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let tpl = dir.join("template.jinja");
    std::fs::write(&tpl, TEMPLATE).unwrap();
    let ours_out = dir.join("ours.gguf");
    let ref_out = dir.join("ref.gguf");
    let cp_out = dir.join("cp.gguf");
    let (mut ours, mut refs, mut cps) = (Vec::new(), Vec::new(), Vec::new());
    let mut peak = (0, 0);
    for round in 0..runs {
        warm(input);
        let mut contenders: Vec<&str> = vec!["ours", "cp"];
        if python.is_some() {
            contenders.push("ref");
        }
        if round % 2 == 1 {
            contenders.reverse();
        }
        for c in contenders {
            match c {
                "ours" => {
                    let r = run(Command::new(bin)
                        .args(["-q", "edit"])
                        .arg(input)
                        .arg("-o")
                        .arg(&ours_out)
                        .arg("--force")
                        .arg("--set")
                        .arg(format!("tokenizer.chat_template=@{}", tpl.display())));
                    peak.0 = peak.0.max(r.peak_anon_kib);
                    ours.push(r.time);
                    settle(&[&ours_out]);
                }
                "ref" => {
                    // Python itself (so its memory is what is sampled),
                    // then its output fsynced as ours is.
                    let r = run(Command::new(python.unwrap())
                        .args(["-m", "gguf.scripts.gguf_new_metadata"])
                        .arg(input)
                        .arg(&ref_out)
                        .arg("--chat-template-file")
                        .arg(&tpl)
                        .arg("--force")
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null()));
                    let synced = run(Command::new("sync").arg(&ref_out));
                    peak.1 = peak.1.max(r.peak_anon_kib);
                    refs.push(r.time + synced.time);
                    settle(&[&ref_out]);
                }
                _ => {
                    cps.push(cp_fsync(input, &cp_out).time);
                    settle(&[&cp_out]);
                }
            }
        }
    }
    let s = |d: Duration| d.as_secs_f64();
    let (o, c) = (median(ours), median(cps));
    print!(
        "edit chat template [{label}]: tensorcast {:.3} s, cp+sync {:.3} s (ratio {:.3})",
        s(o),
        s(c),
        s(o) / s(c)
    );
    if !refs.is_empty() {
        let r = median(refs);
        print!(
            ", gguf_new_metadata.py {:.2} s (tensorcast/reference {:.4}, {:.0}x faster)",
            s(r),
            s(o) / s(r),
            s(r) / s(o)
        );
    }
    println!(
        "; peak RssAnon tensorcast {} MiB{}",
        peak.0 / 1024,
        if python.is_some() {
            format!(", gguf_new_metadata.py {} MiB", peak.1 / 1024)
        } else {
            String::new()
        }
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let gib = env_num("TENSORCAST_BENCH_GIB", 1);
    let runs = env_num("TENSORCAST_BENCH_RUNS", 3);
    let dir = scratch("edit");
    // The Q4_K_M llama of support::real_gguf as f32: gib GiB of tensors.
    let q4 = dir.join(format!("llama-q4_k_m-{gib}gib.gguf"));
    let input = dir.join(format!("llama-f32-{gib}gib.gguf"));
    if !input.exists() {
        real_gguf::write(&q4, gib);
        run(Command::new(env!("CARGO_BIN_EXE_tensorcast"))
            .args(["-q", "convert"])
            .arg(&q4)
            .arg("-o")
            .arg(&input)
            .args(["--dtype", "f32", "--force"]));
        let _ = std::fs::remove_file(&q4);
    }
    let size = std::fs::metadata(&input).unwrap().len();
    println!("input: {} ({} bytes)", input.display(), size);
    let python = oracle_python().filter(|p| {
        Command::new(p)
            .args(["-c", "import gguf.scripts.gguf_new_metadata"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if python.is_none() {
        println!("gguf_new_metadata.py: no Python with gguf found; its column is skipped");
    }

    edit_side_by_side("scratch fs (ext4 here)", &input, &dir, python.as_deref(), runs);

    // XFS: the input, our output and the reference's full copy fit.
    if let Some(xfs) = Xfs::make(&dir, size * 5 + (512 << 20)) {
        let on_xfs = xfs.mount.join("input.gguf");
        std::fs::copy(&input, &on_xfs).unwrap();
        let _ = Command::new("sync").status();
        edit_side_by_side("xfs, reflink", &on_xfs, &xfs.mount, python.as_deref(), runs);
        // Shared, not copied: the file system's free space barely moves.
        let free = |p: &Path| {
            let out = Command::new("df")
                .args(["-B1", "--output=avail"])
                .arg(p)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let before = free(&xfs.mount);
        let bin = env!("CARGO_BIN_EXE_tensorcast");
        run(Command::new(bin)
            .args(["-q", "edit"])
            .arg(&on_xfs)
            .arg("-o")
            .arg(xfs.mount.join("kept.gguf"))
            .args(["--set", "general.name=edited"]));
        let _ = Command::new("sync").status();
        let used = before.saturating_sub(free(&xfs.mount));
        println!(
            "xfs: an edited copy of the {size}-byte file took {used} bytes of new space ({:.3}% of a copy)",
            used as f64 * 100.0 / size as f64
        );
        // A conversion that keeps the layout (GGUF -> GGUF, blocks kept):
        // tensor runs and the padding between them are one clonable copy.
        let copy = xfs.mount.join("converted.gguf");
        let before = free(&xfs.mount);
        let mut times = Vec::new();
        for _ in 0..runs {
            times.push(
                run(Command::new(bin)
                    .args(["-q", "convert"])
                    .arg(&on_xfs)
                    .arg("-o")
                    .arg(&copy)
                    .arg("--force"))
                .time,
            );
        }
        let _ = Command::new("sync").status();
        let used = before.saturating_sub(free(&xfs.mount));
        let same = std::fs::read(&copy).ok() == std::fs::read(&on_xfs).ok();
        println!(
            "xfs: GGUF -> GGUF of the {size}-byte file {:.3} s (median of {runs}), {used} bytes of new space, output identical to the input: {same}",
            median(times).as_secs_f64()
        );
        // safetensors -> safetensors renaming every tensor: the header grows,
        // the data keeps its offset mod 4096 (blank padding), so it is one
        // run cloned by the kernel; the same conversion on the scratch file
        // system (a kernel copy there) must give the same bytes.
        let convert = |from: &Path, to: &Path, rename: bool| {
            let mut cmd = Command::new(bin);
            cmd.args(["-q", "convert"]).arg(from).arg("-o").arg(to);
            cmd.args(["--names", "keep", "--force"]);
            if rename {
                cmd.args(["--rename", "blk.=model.layers."]);
            }
            run(&mut cmd).time
        };
        let st = xfs.mount.join("input.safetensors");
        convert(&on_xfs, &st, false);
        let renamed = xfs.mount.join("renamed.safetensors");
        let _ = Command::new("sync").status();
        let before = free(&xfs.mount);
        let times: Vec<Duration> = (0..runs).map(|_| convert(&st, &renamed, true)).collect();
        let _ = Command::new("sync").status();
        let used = before.saturating_sub(free(&xfs.mount));
        let (st_ext, renamed_ext) = (dir.join("input.safetensors"), dir.join("renamed.safetensors"));
        convert(&input, &st_ext, false);
        let ext = convert(&st_ext, &renamed_ext, true);
        let same = std::fs::read(&renamed).ok() == std::fs::read(&renamed_ext).ok();
        println!(
            "xfs: safetensors -> safetensors renaming every tensor of the {}-byte file {:.3} s (median of {runs}), {used} bytes of new space; scratch fs {:.3} s; outputs identical: {same}",
            std::fs::metadata(&st).map(|m| m.len()).unwrap_or(0),
            median(times).as_secs_f64(),
            ext.as_secs_f64()
        );
        for p in [&st_ext, &renamed_ext] {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_file(&renamed);
        // The same on a checkpoint as Hugging Face writes them (metadata
        // `{"format": "pt"}`, a header of a few KB): the file above carries
        // the GGUF's 262,144-token vocabulary as 15 MB of JSON text in its
        // header, which every rename parses and writes again.
        let hf_ext = dir.join("hf-style.safetensors");
        write_safetensors(&hf_ext, "BF16", 2, 64 * gib, 8 << 20);
        let hf = xfs.mount.join("hf-style.safetensors");
        std::fs::copy(&hf_ext, &hf).unwrap();
        let _ = Command::new("sync").status();
        let rename_hf = |from: &Path, to: &Path| {
            run(Command::new(bin)
                .args(["-q", "convert"])
                .arg(from)
                .arg("-o")
                .arg(to)
                .args(["--force", "--rename", "model.layers.=layers."]))
            .time
        };
        let (out_xfs, out_ext) = (
            xfs.mount.join("hf-renamed.safetensors"),
            dir.join("hf-renamed.safetensors"),
        );
        let times: Vec<Duration> = (0..runs.max(3)).map(|_| rename_hf(&hf, &out_xfs)).collect();
        let ext = rename_hf(&hf_ext, &out_ext);
        let same = std::fs::read(&out_xfs).ok() == std::fs::read(&out_ext).ok();
        println!(
            "xfs: safetensors -> safetensors renaming every tensor of a {}-byte Hugging Face-style checkpoint {:.3} s (median of {}); scratch fs {:.3} s; outputs identical: {same}",
            std::fs::metadata(&hf).map(|m| m.len()).unwrap_or(0),
            median(times).as_secs_f64(),
            runs.max(3),
            ext.as_secs_f64()
        );
        let _ = std::fs::remove_file(&out_ext);
    }

    // Content id against sha256sum, both from a warm cache.
    let bin = env!("CARGO_BIN_EXE_tensorcast");
    let (mut ours, mut sha) = (Vec::new(), Vec::new());
    let mut peak = 0;
    for round in 0..runs {
        warm(&input);
        let order: &[bool] = if round % 2 == 0 {
            &[true, false]
        } else {
            &[false, true]
        };
        for &mine in order {
            if mine {
                let r = run(Command::new(bin)
                    .args(["-q", "digest"])
                    .arg(&input)
                    .stdout(std::process::Stdio::null()));
                peak = peak.max(r.peak_anon_kib);
                ours.push(r.time);
            } else {
                sha.push(
                    run(Command::new("sha256sum")
                        .arg(&input)
                        .stdout(std::process::Stdio::null()))
                    .time,
                );
            }
        }
    }
    let (o, s) = (median(ours), median(sha));
    println!(
        "digest: tensorcast {:.3} s ({:.2} GB/s), sha256sum {:.3} s (ratio {:.3}, {:.1}x faster); peak RssAnon {} MiB",
        o.as_secs_f64(),
        size as f64 / o.as_secs_f64() / 1e9,
        s.as_secs_f64(),
        o.as_secs_f64() / s.as_secs_f64(),
        s.as_secs_f64() / o.as_secs_f64(),
        peak / 1024
    );
}
