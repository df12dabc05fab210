//! `tensorcast merge` against mergekit 0.1.5's own outputs
//! (fixtures/merge: two fine-tunes of the tiny llama, and mergekit-yaml's
//! merged weights for each configuration in float32 and bfloat16).

use crate::common::{fixture, reference_read, tensorcast, RefTensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn cases() -> PathBuf {
    fixture("merge/cases")
}

/// Runs `tensorcast merge ARGS` in the cases folder (the configurations'
/// model paths are relative to it, as mergekit resolves them from its cwd).
fn merge(args: &[&str]) {
    merge_in(&cases(), args);
}

/// Runs `tensorcast merge ARGS` in `dir`.
fn merge_in(dir: &Path, args: &[&str]) {
    tensorcast()
        .current_dir(dir)
        .args(["-q", "merge"])
        .args(args)
        .assert()
        .success();
}

fn tensors(path: &Path) -> BTreeMap<String, RefTensor> {
    reference_read(path)
        .0
        .into_iter()
        .map(|t| (t.0.clone(), t))
        .collect()
}

fn values(t: &RefTensor) -> Vec<f32> {
    match t.1.as_str() {
        "F32" => {
            t.3.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        }
        "BF16" => {
            t.3.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()
        }
        other => panic!("{other}"),
    }
}

fn model(name: &str) -> BTreeMap<String, RefTensor> {
    let path = match name {
        "base" => fixture("model/llama/hf/model.safetensors"),
        ft => fixture(&format!("merge/{ft}/model.safetensors")),
    };
    tensors(&path)
}

/// A fine-tune and the keep-cut boundaries of its task vectors, given
/// their length (positions in ascending magnitude order).
type Cuts<'a> = (&'a str, &'a dyn Fn(usize) -> Vec<usize>);

/// Elements whose magnitude in some task vector ties exactly with a value
/// at a keep cut of that vector (the sorted positions either side of each
/// boundary): there torch's unstable sort decides which survive, so a
/// different choice is allowed. `cuts(n)` gives a vector's boundaries.
fn at_ties(name: &str, bf16: bool, models: &[Cuts]) -> Vec<bool> {
    let base = values(&model("base")[name]);
    let round = |x: f32| if bf16 { half::bf16::from_f32(x).to_f32() } else { x };
    let mut ambiguous = vec![false; base.len()];
    for (ft, cuts) in models {
        let tuned = values(&model(ft)[name]);
        let mags: Vec<f32> = tuned
            .iter()
            .zip(&base)
            .map(|(&x, &b)| round(round(x) - round(b)).abs())
            .collect();
        let mut sorted = mags.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let edge: Vec<f32> = cuts(mags.len())
            .into_iter()
            .flat_map(|c| [c.checked_sub(1), Some(c)])
            .flatten()
            .filter_map(|i| sorted.get(i).copied())
            .collect();
        for (a, m) in ambiguous.iter_mut().zip(&mags) {
            *a |= edge.contains(m);
        }
    }
    ambiguous
}

/// Ascending-order boundaries of `magnitude` (the `k` largest kept).
fn top(density: f64) -> impl Fn(usize) -> Vec<usize> {
    move |n| vec![n - ((density * n as f64) as usize).max(1)]
}

/// Ascending-order boundaries of `magnitude_outliers`.
fn middle(density: f64, gamma: f64) -> impl Fn(usize) -> Vec<usize> {
    move |n| {
        let target = (density * n as f64) as usize;
        let bottom = n.saturating_sub(target + (gamma * n as f64) as usize);
        vec![bottom, bottom + target]
    }
}

fn check_case(case: &str, ties: &[Cuts]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.safetensors");
    merge(&[&format!("{case}.yml"), "-o", out.to_str().unwrap()]);
    let ours = tensors(&out);
    let theirs = tensors(&cases().join(format!("{case}.safetensors")));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{case}"
    );
    let bf16 = case.ends_with("bfloat16");
    let mut at_a_tie = 0;
    for (name, want) in &theirs {
        let got = &ours[name];
        assert_eq!(
            (&got.1, &got.2),
            (&want.1, &want.2),
            "{case} {name}: dtype and shape"
        );
        if got.3 == want.3 {
            continue;
        }
        assert!(!ties.is_empty(), "{case} {name}: bytes differ from mergekit's");
        let ambiguous = at_ties(name, bf16, ties);
        for (i, (a, b)) in values(got).iter().zip(values(want)).enumerate() {
            if a.to_bits() != b.to_bits() {
                assert!(
                    ambiguous[i],
                    "{case} {name}[{i}]: {a} vs mergekit's {b}, not at a magnitude tie"
                );
                at_a_tie += 1;
            }
        }
    }
    eprintln!("{case}: bit-identical to mergekit except {at_a_tie} elements at exact magnitude ties");
}

#[test]
fn deterministic_methods_are_bit_identical_to_mergekit() {
    let (t1, t2) = (top(0.5), top(0.7));
    let (u1, u2) = (top(0.3), top(0.9));
    let (b1, b2) = (middle(0.8, 0.02), middle(0.6, 0.01));
    let (c1, c2) = (middle(0.8, 0.05), middle(0.7, 0.01));
    for dtype in ["float32", "bfloat16"] {
        for case in [
            "linear",
            "linear_unnormalized",
            "task_arithmetic",
            "nearswap",
            "passthrough",
            "frankenmerge",
            // Each slice merged against its own base_model.
            "slice_bases",
        ] {
            check_case(&format!("{case}.{dtype}"), &[]);
        }
        check_case(&format!("ties.{dtype}"), &[("ft1", &t1), ("ft2", &t2)]);
        check_case(
            &format!("ties_unnormalized.{dtype}"),
            &[("ft1", &u1), ("ft2", &u2)],
        );
        check_case(&format!("breadcrumbs.{dtype}"), &[("ft1", &b1), ("ft2", &b2)]);
        check_case(
            &format!("breadcrumbs_ties.{dtype}"),
            &[("ft1", &c1), ("ft2", &c2)],
        );
        // mergekit's `modules: {default: …}` form, whose module parameters
        // (density 0.5) come before the global ones (density 0.9).
        check_case(&format!("modules_ties.{dtype}"), &[("ft1", &t1), ("ft2", &t1)]);
    }
    // model_stock's scalar chain rounds to bfloat16 at every step, which
    // hides the order its sums were taken in: bit-identical there.
    for case in ["model_stock.bfloat16", "model_stock_filter_wise.bfloat16"] {
        check_case(case, &[]);
    }
    // sce weighs each task vector by its mean square, a whole-tensor sum
    // taken in torch's cascade order (AVX2), and selects by variance
    // (Welford, in double): bit-identical in both dtypes.
    for case in ["sce_all.float32", "sce_all.bfloat16", "sce.float32"] {
        check_case(case, &[]);
    }
}

/// sce's `select_topk` keeps the largest variances through torch.topk,
/// whose choice among values equal at the cut is its selection
/// algorithm's (in bfloat16 many variances tie). With that one call made
/// stable (ties kept lowest index first, as tensorcast keeps them),
/// mergekit's own code gives tensorcast's bits exactly; its unstable run
/// differs from its stable run (and from ours) only in the elements whose
/// variance ties at the cut (and, through the changed mean squares, a
/// few of their neighbours).
#[test]
fn sce_selection_is_mergekit_s_with_a_stable_topk() {
    for dtype in ["float32", "bfloat16"] {
        check_case(&format!("sce_stable_topk.{dtype}"), &[]);
    }
    let stable = tensors(&cases().join("sce_stable_topk.bfloat16.safetensors"));
    let unstable = tensors(&cases().join("sce.bfloat16.safetensors"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.safetensors");
    merge(&["sce.bfloat16.yml", "-o", out.to_str().unwrap()]);
    let ours = tensors(&out);
    let (mut differ, mut total) = (0usize, 0usize);
    for (name, want) in &unstable {
        let (a, b, s) = (values(&ours[name]), values(want), values(&stable[name]));
        for i in 0..a.len() {
            total += 1;
            if a[i].to_bits() != b[i].to_bits() {
                assert_ne!(
                    s[i].to_bits(),
                    b[i].to_bits(),
                    "sce.bfloat16 {name}[{i}]: differs where torch's stable topk agrees"
                );
                differ += 1;
            }
        }
    }
    // 131 of 125,248 with mergekit 0.1.5 and torch 2.15.
    assert!(differ * 100 < total, "{differ} of {total} differ");
    eprintln!(
        "sce.bfloat16: {differ} of {total} elements differ from mergekit's, all where its topk broke ties"
    );
}

/// slerp's and model_stock's norms, angles and sines are transcendental and
/// summed over the whole tensor (or row): float32 within 1e-6 of the
/// tensor's largest magnitude, bfloat16 within one unit in the last place
/// (or that). (model_stock in bfloat16 is bit-identical: see the deterministic test.)
#[test]
fn slerp_is_mergekit_s_within_rounding() {
    for case in [
        "slerp.float32",
        "slerp.bfloat16",
        "slerp_filtered.float32",
        "slerp_filtered.bfloat16",
        "sliced_slerp.float32",
        "sliced_slerp.bfloat16",
        "model_stock.float32",
        "model_stock_filter_wise.float32",
        "multislerp.float32",
        "multislerp_no_base.float32",
        "nuslerp.float32",
        "nuslerp_rows.float32",
        "nuslerp_row_wise.float32",
        "karcher.float32",
        "karcher_base.float32",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("merged.safetensors");
        merge(&[&format!("{case}.yml"), "-o", out.to_str().unwrap()]);
        let theirs = tensors(&cases().join(format!("{case}.safetensors")));
        let worst = within_rounding(case, &tensors(&out), &theirs);
        eprintln!("{case}: worst difference {worst:e} of the tensor's scale");
    }
}

/// Asserts `ours` is `theirs` within rounding: bfloat16 within one unit in
/// the last place (or 1e-6 of the tensor's largest magnitude, where the
/// result is a near-cancellation far below it), float32 within 1e-6 of
/// that scale. Returns the worst float32 difference over the scale.
fn within_rounding(
    case: &str,
    ours: &BTreeMap<String, RefTensor>,
    theirs: &BTreeMap<String, RefTensor>,
) -> f64 {
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{case}"
    );
    let mut worst = 0.0f64;
    for (name, want) in theirs {
        let (a, b) = (values(&ours[name]), values(want));
        let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())) as f64;
        for (x, y) in a.iter().zip(&b) {
            let err = (f64::from(*x) - f64::from(*y)).abs();
            if case.ends_with("bfloat16") {
                let ulp = f64::from(y.abs().max(f32::MIN_POSITIVE)) / 128.0;
                assert!(err <= ulp.max(1e-6 * scale), "{case} {name}: {x} vs {y}");
            } else {
                worst = worst.max(err / scale);
            }
        }
    }
    assert!(worst <= 1e-6, "{case}: {worst:e} of the tensor's scale");
    worst
}

/// Other architecture families (fixtures/merge/families/ARCH: two
/// fine-tunes of the family's tiny model, mergekit's merges of them run
/// with torch's sorts and topk made stable, so ties at a cut are kept
/// lowest index first as tensorcast keeps them): Qwen3's and Gemma 3's
/// ties, breadcrumbs and sce are bit-identical in float32 and bfloat16,
/// slerp within rounding. The MoE families (Mixtral, Qwen3-MoE) are merged
/// as mergekit 0.1.5 merges them, each layer's experts as the one fused
/// tensor transformers 5 stacks them into (the TIES and breadcrumbs cuts,
/// sce's weights and selection, slerp's angle and model_stock's cosine over
/// all experts at once): ties, breadcrumbs, sce, linear, task_arithmetic,
/// model_stock (bfloat16) and the frankenmerge are bit-identical once our
/// per-expert tensors are laid out as mergekit writes them (`mlp.experts.
/// gate_up_proj` and `down_proj`), slerp and model_stock (float32) within
/// rounding. And a ties merge whose first fine-tune is a GGUF (converted by
/// tensorcast, so Q/K permuted, experts stacked) gives the all-HF merge's
/// bits (Gemma's norms, which the GGUF stores as 1 + w in float32, within
/// that rounding).
#[test]
fn other_families_merge_as_mergekit_does() {
    for arch in ["qwen3", "gemma3", "mixtral", "qwen3moe"] {
        let moe = arch == "mixtral" || arch == "qwen3moe";
        let home = fixture(&format!("merge/families/{arch}"));
        let cases = home.join("cases");
        let mut names: Vec<String> = std::fs::read_dir(&cases)
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .file_name()
                    .to_str()?
                    .strip_suffix(".yml")
                    .map(String::from)
            })
            .collect();
        names.sort();
        assert!(names.len() >= 6, "{arch}: {names:?}");
        let dir = tempfile::tempdir().unwrap();
        for case in &names {
            let out = dir.path().join(format!("{case}.safetensors"));
            merge_in(&cases, &[&format!("{case}.yml"), "-o", out.to_str().unwrap()]);
            let (mut ours, theirs) = (tensors(&out), tensors(&cases.join(format!("{case}.safetensors"))));
            if moe {
                ours = fused_experts(ours);
            }
            if case.starts_with("slerp") || case == "model_stock.float32" {
                within_rounding(&format!("{arch} {case}"), &ours, &theirs);
            } else {
                assert_eq!(
                    ours.keys().collect::<Vec<_>>(),
                    theirs.keys().collect::<Vec<_>>(),
                    "{arch} {case}"
                );
                for (name, want) in &theirs {
                    assert!(
                        ours[name] == *want,
                        "{arch} {case} {name}: differs from mergekit's"
                    );
                }
            }
        }
        let gguf = dir.path().join("ft1.gguf");
        // The fixture's toy tokenizer is Qwen 2's pre-tokenizer by another hash.
        let pre: &[&str] = if arch == "qwen3moe" {
            &["--tokenizer-pre", "qwen2"]
        } else {
            &[]
        };
        tensorcast()
            .args(["-q", "convert"])
            .arg(home.join("ft1"))
            .arg("-o")
            .arg(&gguf)
            .args(pre)
            .assert()
            .success();
        let case = "ties";
        let yaml = std::fs::read_to_string(cases.join(format!("{case}.float32.yml")))
            .unwrap()
            .replace("../ft1", gguf.to_str().unwrap());
        let config = dir.path().join("gguf-input.yml");
        std::fs::write(&config, yaml).unwrap();
        let out = dir.path().join("gguf-input.safetensors");
        merge_in(&cases, &[config.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let (mut ours, theirs) = (
            tensors(&out),
            tensors(&cases.join(format!("{case}.float32.safetensors"))),
        );
        if moe {
            ours = fused_experts(ours);
        }
        for (name, want) in &theirs {
            if arch == "gemma3" && name.ends_with("norm.weight") {
                // llama.cpp stores Gemma's norm weights as 1 + w, rounded
                // in float32: the GGUF itself no longer holds w's last
                // bits (|w| < 1), only w within ulp(1) / 2.
                for (x, y) in values(&ours[name]).iter().zip(values(want)) {
                    assert!((x - y).abs() <= f32::EPSILON, "{arch} {name}: {x} vs {y}");
                }
                continue;
            }
            assert!(
                ours[name] == *want,
                "{arch}: {case} with ft1 as GGUF, {name} differs"
            );
        }
        eprintln!(
            "{arch}: {} cases as mergekit's; ft1 as GGUF merges bit for bit",
            names.len()
        );
    }
}

/// In bfloat16, the hypersphere methods (karcher, multislerp, nuslerp) are
/// their double-precision merge of the bfloat16-rounded inputs, rounded
/// once: the float32 merge of the same inputs (the path checked against
/// mergekit's float32 results above) rounded to bfloat16, within one unit
/// in the last place where rounding through float32 rounds twice. (mergekit
/// computes norms, means and angles in bfloat16 itself, and drifts from
/// both by up to 1% of the tensor's scale.)
#[test]
fn hypersphere_methods_in_bfloat16_are_the_double_precision_merge_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, from) in [
        ("ft1", fixture("merge/ft1")),
        ("ft2", fixture("merge/ft2")),
        ("base", fixture("model/llama/hf")),
    ] {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).unwrap();
        std::fs::copy(from.join("config.json"), to.join("config.json")).unwrap();
        tensorcast()
            .args(["-q", "convert", "--names", "keep", "--dtype", "bf16"])
            .arg(from.join("model.safetensors"))
            .arg("-o")
            .arg(to.join("model.safetensors"))
            .assert()
            .success();
        paths.push((name, to));
    }
    for case in [
        "karcher",
        "karcher_base",
        "multislerp",
        "multislerp_no_base",
        "nuslerp",
        "nuslerp_rows",
    ] {
        let mut yaml = std::fs::read_to_string(cases().join(format!("{case}.bfloat16.yml"))).unwrap();
        for (name, path) in &paths {
            let rel = if *name == "base" {
                "../../model/llama/hf".to_string()
            } else {
                format!("../{name}")
            };
            yaml = yaml.replace(&rel, path.to_str().unwrap());
        }
        let mut out = Vec::new();
        for dtype in ["bfloat16", "float32"] {
            let config = dir.path().join(format!("{case}.{dtype}.yml"));
            std::fs::write(
                &config,
                yaml.replace("dtype: bfloat16", &format!("dtype: {dtype}")),
            )
            .unwrap();
            let merged = dir.path().join(format!("{case}.{dtype}.safetensors"));
            merge(&[config.to_str().unwrap(), "-o", merged.to_str().unwrap()]);
            out.push(tensors(&merged));
        }
        let (mut exact, mut total) = (0usize, 0usize);
        for (name, half) in &out[0] {
            assert_eq!(half.1, "BF16", "{case} {name}");
            for (x, y) in values(half).iter().zip(values(&out[1][name])) {
                let rounded = half::bf16::from_f32(y).to_f32();
                let ulp = f64::from(rounded.abs().max(f32::MIN_POSITIVE)) / 128.0;
                assert!(f64::from((x - rounded).abs()) <= ulp, "{case} {name}: {x} vs {y}");
                exact += usize::from(*x == rounded);
                total += 1;
            }
        }
        assert!(exact * 1000 >= total * 999, "{case}: {exact} of {total} exact");
        eprintln!("{case}: {exact} of {total} bfloat16 values are the float32 merge rounded");
    }
}

/// The flag form writes the configuration a user would have written.
#[test]
fn the_flag_form_is_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.safetensors");
    merge(&[
        "../ft1",
        "../ft2",
        "../../model/llama/hf",
        "--method",
        "linear",
        "--weight",
        "0.7,0.45,0.2",
        "--dtype",
        "float32",
        "-o",
        out.to_str().unwrap(),
    ]);
    let ours = tensors(&out);
    let theirs = tensors(&cases().join("linear.float32.safetensors"));
    assert_eq!(ours, theirs);
    let meta = reference_read(&out).1.unwrap();
    assert_eq!(meta["merge_method"], "linear");
    assert!(meta["mergekit_config"].contains("weight: 0.45"), "{meta:?}");
}

/// A GGUF fine-tune merges with its Hugging Face base: matched by Hugging
/// Face names through the architecture table, Q/K permutations undone, the
/// result the all-HF merge's bit for bit.
#[test]
fn a_gguf_input_merges_as_its_hugging_face_folder_does() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("ft1.gguf");
    tensorcast()
        .args(["-q", "convert"])
        .arg(fixture("merge/ft1"))
        .arg("-o")
        .arg(&gguf)
        .assert()
        .success();
    let yaml = std::fs::read_to_string(cases().join("ties.float32.yml"))
        .unwrap()
        .replace("../ft1", gguf.to_str().unwrap());
    let config = dir.path().join("ties.yml");
    std::fs::write(&config, yaml).unwrap();
    let out = dir.path().join("merged.safetensors");
    merge(&[config.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(tensors(&out), tensors(&cases().join("ties.float32.safetensors")));
}

/// A GGUF output is the merged model as llama.cpp loads it, quantized in
/// the same pass with `--quantize`: byte for byte what converting the
/// merged folder gives (`convert FOLDER -o X.gguf --quantize`, itself
/// checked against convert_hf_to_gguf.py and llama_model_quantize), for a
/// plain and a frankenmerge (its layer count from the slices).
#[test]
fn a_gguf_output_is_the_merged_folder_converted() {
    let dir = tempfile::tempdir().unwrap();
    for (case, quantize) in [
        ("ties.bfloat16", None),
        ("slerp.float32", Some("Q8_0")),
        ("frankenmerge.float32", Some("Q4_K_M")),
    ] {
        // Named as the GGUF is: the model's name comes from either.
        let folder = dir.path().join(case);
        merge(&[
            &format!("{case}.yml"),
            "--to",
            "hf",
            "-o",
            folder.to_str().unwrap(),
        ]);
        let via_folder = dir.path().join(format!("{case}-via-folder.gguf"));
        let mut convert = tensorcast();
        convert
            .args(["-q", "convert"])
            .arg(&folder)
            .arg("-o")
            .arg(&via_folder);
        let direct = dir.path().join(format!("{case}.gguf"));
        assert_eq!(direct.file_stem(), folder.file_name());
        let mut args = vec![format!("{case}.yml"), "-o".into(), direct.display().to_string()];
        if let Some(q) = quantize {
            convert.args(["--quantize", q]);
            args.extend(["--quantize".into(), q.into()]);
        }
        convert.assert().success();
        merge(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let (a, b) = (
            std::fs::read(&direct).unwrap(),
            std::fs::read(&via_folder).unwrap(),
        );
        assert!(a == b, "{case}: the merged GGUF differs from the merged folder's");
        let text = String::from_utf8_lossy(&a);
        assert!(text.contains("llama.block_count"), "{case}: not a llama model");
    }
}

/// A folder output is a model: the merged weights, the base's config (its
/// dtype the merged one) and tokenizer files; nothing replaced without --force.
#[test]
fn a_folder_output_is_a_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged");
    merge(&[
        "task_arithmetic.bfloat16.yml",
        "-o",
        out.to_str().unwrap(),
        "--to",
        "hf",
    ]);
    for name in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(out.join(name).is_file(), "{name}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["dtype"], "bfloat16");
    assert_eq!(config["num_hidden_layers"], 2);
    assert_eq!(
        tensors(&out.join("model.safetensors")),
        tensors(&cases().join("task_arithmetic.bfloat16.safetensors"))
    );
    tensorcast()
        .current_dir(cases())
        .args(["-q", "merge", "task_arithmetic.bfloat16.yml", "--to", "hf", "-o"])
        .arg(&out)
        .assert()
        .failure();
}

/// Layer slices renumber the layers: a frankenmerge folder says how many.
#[test]
fn a_frankenmerge_folder_has_the_sliced_layer_count() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("franken");
    merge(&[
        "frankenmerge.float32.yml",
        "-o",
        out.to_str().unwrap(),
        "--to",
        "hf",
    ]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_hidden_layers"], 3);
    let names = tensors(&out.join("model.safetensors"));
    assert!(names.contains_key("model.layers.2.mlp.up_proj.weight"));
    assert!(!names.contains_key("model.layers.3.mlp.up_proj.weight"));
    // A range past the layers the model holds (here 10^9 of 2) is refused
    // at once, before a layer is planned.
    let huge = dir.path().join("huge.yml");
    std::fs::write(
        &huge,
        "merge_method: passthrough\nslices:\n  - sources: [{model: ../ft1, layer_range: [0, 1000000000]}]\n",
    )
    .unwrap();
    let out = tensorcast()
        .current_dir(cases())
        .args(["merge"])
        .arg(&huge)
        .arg("-o")
        .arg(dir.path().join("x.safetensors"))
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("the model holds 2 layers"), "{err}");
}

/// DARE and DELLA draw their masks from a seeded counter-based generator: the same
/// seed gives the same bytes, another seed others; the kept fraction is
/// within 4 sigma of the density, dropped elements are the base's, kept
/// ones the task vector rescaled to its L1 norm (mergekit 0.1.5's rescale).
#[test]
fn dare_and_della_are_seeded_and_rescale_what_they_keep() {
    for method in ["dare_linear", "della_linear"] {
        seeded_and_rescaled(method);
    }
}

/// DELLA keeps by magnitude rank within each row, with probabilities
/// `0.3 ± 0.15` averaging the density: the same checks hold.
fn seeded_and_rescaled(method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        merge(&[
            "../ft2",
            "--base",
            "../../model/llama/hf",
            "--method",
            method,
            "--weight",
            "1.0",
            "--density",
            "0.3",
            "--dtype",
            "float32",
            "--seed",
            seed,
            "-o",
            out.to_str().unwrap(),
        ]);
        tensors(&out)
    };
    let a = run("7", "a.safetensors");
    assert_eq!(a, run("7", "b.safetensors"));
    assert_ne!(a, run("8", "c.safetensors"));
    let (base, ft) = (model("base"), model("ft2"));
    // Kept count against its expectation and variance over the nonzero
    // deltas: DARE keeps each with p = 0.3; DELLA with p = 0.15 + 0.3 (r-1)/(m-1)
    // for ascending magnitude rank r of m in its row (zeros rank lowest).
    let (mut kept, mut expected, mut variance) = (0usize, 0.0f64, 0.0f64);
    for (name, merged) in &a {
        let (b, x, m) = (values(&base[name]), values(&ft[name]), values(merged));
        let delta: Vec<f32> = x.iter().zip(&b).map(|(x, b)| x - b).collect();
        let keep: Vec<bool> = m.iter().zip(&b).map(|(m, b)| m != b).collect();
        let before: f64 = delta.iter().map(|d| f64::from(d.abs())).sum();
        let after: f64 = delta
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(d, _)| f64::from(d.abs()))
            .sum();
        let scale = before as f32 / after as f32;
        for i in 0..m.len() {
            if keep[i] {
                assert_eq!(m[i], b[i] + delta[i] * scale, "{name}[{i}]");
            }
        }
        // A zero delta looks dropped either way: count the others.
        kept += keep.iter().filter(|k| **k).count();
        let shape = &merged.2;
        let row = if shape.len() == 2 { shape[1] } else { delta.len() };
        for r in delta.chunks(row) {
            let zeros = r.iter().filter(|d| **d == 0.0).count();
            for rank in zeros + 1..=r.len() {
                let p = if method == "della_linear" && r.len() > 1 {
                    0.15 + 0.3 * (rank - 1) as f64 / (r.len() - 1) as f64
                } else {
                    0.3
                };
                expected += p;
                variance += p * (1.0 - p);
            }
        }
    }
    assert!(
        (kept as f64 - expected).abs() < 4.0 * variance.sqrt(),
        "{method}: {kept} kept, {expected:.0} expected"
    );
    eprintln!("{method}: {kept} nonzero task-vector entries kept, {expected:.0} expected");
}

#[test]
fn unknown_methods_and_parameters_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yml");
    for (yaml, named) in [
        ("merge_method: blend\nmodels: [{model: a}]\n", "'blend'"),
        ("merge_method: arcee_fusion\nmodels: [{model: a}]\n", "'arcee_fusion'"),
        ("merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, desnity: 0.5}}]\n", "'desnity'"),
        ("merge_method: linear\nmodels: [{model: a}]\nmerge_mode: x\n", "'merge_mode'"),
        // mergekit's modules: a multi-module architecture's are not built;
        // the one module of a text model is `default`, given once.
        (
            "merge_method: linear\nmodules:\n  text_decoder: {models: [{model: a}]}\n  vision_tower: {models: [{model: a}]}\n",
            "multi-module architectures",
        ),
        ("merge_method: linear\nmodels: [{model: a}]\nmodules: {default: {models: [{model: a}]}}\n", "one of 'models', 'slices' or 'modules'"),
        ("merge_method: linear\nmodules: {default: {models: [{model: a}], weights: 1}}\n", "unknown key 'weights'"),
        // A slice's base must be one of its sources (mergekit fails there too).
        (
            "merge_method: task_arithmetic\nslices: [{sources: [{model: a, layer_range: [0, 1]}, {model: c, layer_range: [0, 1]}], base_model: b}]\n",
            "slice 0 has it not",
        ),
        ("merge_method: ties\nbase_model: b\nmodules: {default: {models: [{model: a}], parameters: {desnity: 0.5}}}\n", "'desnity'"),
        // An iteration count without end (each iteration is quick, but
        // 10^12 of them per tensor never finish).
        (
            &format!(
                "merge_method: karcher\nmodels: [{{model: {}}}, {{model: {}}}]\nparameters: {{max_iter: 1000000000000}}\n",
                fixture("merge/ft1").display(),
                fixture("merge/ft2").display()
            ),
            "max_iter must be a whole number from 0 to 1000000",
        ),
    ] {
        std::fs::write(&config, yaml).unwrap();
        let out = tensorcast()
            .args(["merge"])
            .arg(&config)
            .args(["-o", "x.safetensors"])
            .current_dir(dir.path())
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(named), "{err}");
        assert!(!dir.path().join("x.safetensors").exists());
    }
}

/// A configuration that is not a regular file (a FIFO blocks a read
/// forever, /dev/zero never ends it), nests without end (the YAML parser is
/// quadratic in depth) or expands aliases without end is refused at once.
#[test]
fn hostile_configurations_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let deep = dir.path().join("deep.yml");
    std::fs::write(
        &deep,
        format!(
            "merge_method: linear\nmodels: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    )
    .unwrap();
    let bomb = dir.path().join("bomb.yml");
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        text += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "));
    }
    std::fs::write(&bomb, text + "merge_method: linear\nmodels: [*a9]\n").unwrap();
    for (config, said) in [
        (fifo.as_path(), "regular file"),
        (Path::new("/dev/zero"), "regular file"),
        (deep.as_path(), "nested deeper than 64"),
        (bomb.as_path(), "repetition limit"),
    ] {
        let out = tensorcast()
            .current_dir(dir.path())
            .arg("merge")
            .arg(config)
            .args(["-o", "x.safetensors"])
            .assert()
            .code(1);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(said), "{}: {err}", config.display());
    }
}

/// Mixtral's per-expert tensors (`block_sparse_moe.experts.E.w1/w2/w3`,
/// the router `block_sparse_moe.gate`) laid out as transformers 5 holds
/// them, and mergekit 0.1.5 writes them: per layer `mlp.experts.gate_up_proj`
/// `[E, 2I, H]` (each expert's w1 rows, then its w3 rows), `down_proj`
/// `[E, H, I]` (w2), and `mlp.gate.weight`.
fn fused_experts(tensors: BTreeMap<String, RefTensor>) -> BTreeMap<String, RefTensor> {
    // (experts' marker, gate, up, down): Mixtral's and Qwen-MoE's names.
    const NAMES: [(&str, &str, &str, &str); 2] = [
        (".block_sparse_moe.experts.", "w1", "w3", "w2"),
        (".mlp.experts.", "gate_proj", "up_proj", "down_proj"),
    ];
    let mut out = BTreeMap::new();
    let mut experts: BTreeMap<(String, usize), BTreeMap<String, RefTensor>> = BTreeMap::new();
    let mut kind = NAMES[0];
    for (name, t) in tensors {
        if let Some((names, (layer, rest))) = NAMES.iter().find_map(|n| Some((n, name.split_once(n.0)?))) {
            kind = *names;
            let (e, w) = rest.split_once('.').unwrap();
            experts
                .entry((layer.to_string(), e.parse().unwrap()))
                .or_default()
                .insert(w.trim_end_matches(".weight").to_string(), t);
        } else {
            let name = name.replace(".block_sparse_moe.gate.", ".mlp.gate.");
            out.insert(name.clone(), (name, t.1, t.2, t.3));
        }
    }
    let layers: std::collections::BTreeSet<String> = experts.keys().map(|k| k.0.clone()).collect();
    for layer in layers {
        let each: Vec<&BTreeMap<String, RefTensor>> = experts
            .iter()
            .filter(|(k, _)| k.0 == layer)
            .map(|(_, v)| v)
            .collect();
        let e = each.len();
        for (fused, parts) in [
            ("gate_up_proj", &[kind.1, kind.2][..]),
            ("down_proj", &[kind.3][..]),
        ] {
            let first = &each[0][parts[0]];
            let mut shape = first.2.clone();
            shape[0] *= parts.len();
            shape.insert(0, e);
            let mut bytes = Vec::new();
            for x in &each {
                for p in parts {
                    bytes.extend_from_slice(&x[*p].3);
                }
            }
            let name = format!("{layer}.mlp.experts.{fused}");
            out.insert(name.clone(), (name, first.1.clone(), shape, bytes));
        }
    }
    out
}

/// A frankenmerge's folder config follows its layers: the layer count the
/// slices made, and per-layer settings (`layer_types`) taken from the
/// layers each merged layer came from, so transformers accepts it (it
/// refuses a `layer_types` of another length, which is what mergekit
/// 0.1.5 writes for Qwen3 or Gemma 3).
#[test]
fn a_frankenmerge_s_config_follows_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    let gemma2 = fixture("model/gemma2/hf");
    let config = dir.path().join("franken.yml");
    let g = gemma2.to_str().unwrap();
    std::fs::write(
        &config,
        format!(
            "merge_method: passthrough\nslices:\n- sources:\n  - model: {g}\n    layer_range: [0, 2]\n- sources:\n  - model: {g}\n    layer_range: [1, 2]\ndtype: bfloat16\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("merged");
    tensorcast()
        .args(["-q", "merge", "--to", "hf"])
        .arg(&config)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let read = |p: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
    let (before, after) = (read(&gemma2.join("config.json")), read(&out.join("config.json")));
    assert_eq!(
        before["layer_types"],
        serde_json::json!(["sliding_attention", "full_attention"])
    );
    assert_eq!(after["num_hidden_layers"], 3);
    assert_eq!(
        after["layer_types"],
        serde_json::json!(["sliding_attention", "full_attention", "full_attention"])
    );
    assert_eq!(
        after["torch_dtype"].as_str().or(after["dtype"].as_str()),
        Some("bfloat16")
    );
    let layers = tensors(&out.join("model.safetensors"));
    assert!(layers.contains_key("model.layers.2.self_attn.q_proj.weight"));
    assert!(!layers.contains_key("model.layers.3.self_attn.q_proj.weight"));
}

/// With a tokenizer source mergekit lays every model's token rows
/// (`embed_tokens`, `lm_head`) out in that tokenizer's vocabulary by token
/// text before merging: fixtures/merge/vocab holds two Qwen3 fine-tunes
/// that added chat tokens through transformers in different orders (so a
/// token's id differs between them) and mergekit's merges of them with
/// `tokenizer_source` a model and `base`, and a `tokenizer:` section with
/// configured rows (zeros, forced from a model, forced from another
/// token's row), and one padded to a multiple of 16 (each padding row the
/// mean of the rows before it), and configured tokens the source lacks
/// (added to its tokenizer). Every tensor equals mergekit's, bit for bit, in float32
/// and bfloat16, and the folder's config says the new vocabulary size.
#[test]
fn tokenizer_sources_lay_rows_out_as_mergekit_does() {
    let cases = fixture("merge/vocab/cases");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for case in ["source_model", "source_base", "tokens", "padded", "added"] {
        for dtype in ["float32", "bfloat16"] {
            let stem = format!("{case}.{dtype}");
            let out = dir.path().join(format!("{stem}.safetensors"));
            merge_in(&cases, &[&format!("{stem}.yml"), "-o", out.to_str().unwrap()]);
            let (ours, theirs) = (tensors(&out), tensors(&cases.join(format!("{stem}.safetensors"))));
            assert_eq!(
                ours.keys().collect::<Vec<_>>(),
                theirs.keys().collect::<Vec<_>>(),
                "{stem}"
            );
            for (name, t) in &theirs {
                assert_eq!(ours[name].2, t.2, "{stem} {name}: shape");
                assert!(ours[name] == *t, "{stem} {name}: not mergekit's bits");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
    // The embeddings really were laid out: ft_a's vocabulary has 403 rows,
    // ft_b's 404, the base's 400, and ft_b's padded to a multiple of 16 416.
    let rows = |stem: &str| {
        tensors(&dir.path().join(format!("{stem}.safetensors")))["model.embed_tokens.weight"].2[0]
    };
    assert_eq!(
        [
            rows("source_model.float32"),
            rows("source_base.float32"),
            rows("tokens.float32")
        ],
        [403, 400, 404]
    );
    // A fine-tune given as a GGUF: its vocabulary is its token list. The
    // converter (as llama.cpp's) takes added tokens from
    // tokenizer_config.json's added_tokens_decoder, which transformers 5 no
    // longer writes, so its GGUF says [PAD400]...; with the token list set
    // from its tokenizer.json (what a BPE model's GGUF holds), the merge is
    // mergekit's, bit for bit.
    let gguf = dir.path().join("ft_b.gguf");
    tensorcast()
        .args(["-q", "convert"])
        .arg(fixture("merge/vocab/ft_b"))
        .arg("-o")
        .arg(&gguf)
        .assert()
        .success();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("merge/vocab/ft_b/tokenizer.json")).unwrap()).unwrap();
    let mut list = vec![String::new(); 404];
    for (token, id) in json["model"]["vocab"].as_object().unwrap() {
        list[id.as_u64().unwrap() as usize] = token.clone();
    }
    for a in json["added_tokens"].as_array().unwrap() {
        list[a["id"].as_u64().unwrap() as usize] = a["content"].as_str().unwrap().to_string();
    }
    let list_file = dir.path().join("tokens.json");
    std::fs::write(&list_file, serde_json::to_vec(&list).unwrap()).unwrap();
    tensorcast()
        .args(["-q", "edit"])
        .arg(&gguf)
        .arg("--set")
        .arg(format!("tokenizer.ggml.tokens=@{}", list_file.display()))
        .assert()
        .success();
    let yaml = std::fs::read_to_string(cases.join("source_model.float32.yml"))
        .unwrap()
        .replace("../ft_b", gguf.to_str().unwrap());
    std::fs::write(dir.path().join("gguf.yml"), yaml).unwrap();
    let out = dir.path().join("gguf.safetensors");
    merge_in(
        &cases,
        &[
            dir.path().join("gguf.yml").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(tensors(&out) == tensors(&cases.join("source_model.float32.safetensors")));
    // The same fine-tune quantized (Q8_0): its embedding is decoded piece
    // by piece, so its rows are spooled to a temporary file to be gathered;
    // the merge equals the one from that GGUF dequantized to f32 first.
    let q8 = dir.path().join("ft_b_q8.gguf");
    let f32 = dir.path().join("ft_b_f32.gguf");
    tensorcast()
        .args(["-q", "convert"])
        .arg(&gguf)
        .arg("-o")
        .arg(&q8)
        .args(["--quantize", "Q8_0"])
        .assert()
        .success();
    tensorcast()
        .args(["-q", "convert"])
        .arg(&q8)
        .arg("-o")
        .arg(&f32)
        .args(["--dtype", "f32"])
        .assert()
        .success();
    let mut merged = Vec::new();
    for input in [&q8, &f32] {
        let yaml = std::fs::read_to_string(cases.join("source_model.float32.yml"))
            .unwrap()
            .replace("../ft_b", input.to_str().unwrap());
        let config = dir.path().join("quantized.yml");
        std::fs::write(&config, yaml).unwrap();
        let out = dir.path().join("quantized.safetensors");
        merge_in(
            &cases,
            &[config.to_str().unwrap(), "-o", out.to_str().unwrap(), "--force"],
        );
        merged.push(tensors(&out));
    }
    assert!(merged[0] == merged[1]);
    assert!(merged[0] != tensors(&cases.join("source_model.float32.safetensors")));
    // A folder output says the tokenizer source's size and carries its files.
    let folder = dir.path().join("folder");
    merge_in(
        &cases,
        &[
            "source_model.float32.yml",
            "-o",
            folder.to_str().unwrap(),
            "--to",
            "hf",
        ],
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["vocab_size"], 403);
    assert_eq!(
        std::fs::read(folder.join("tokenizer.json")).unwrap(),
        std::fs::read(fixture("merge/vocab/ft_a/tokenizer.json")).unwrap()
    );
    // Tokens added by the configuration: in the folder's tokenizer.json as
    // mergekit's tokenizer has them (ids and flags).
    let added = dir.path().join("added");
    merge_in(
        &cases,
        &["added.bfloat16.yml", "-o", added.to_str().unwrap(), "--to", "hf"],
    );
    let entries = |path: &Path| {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        json["added_tokens"].clone()
    };
    assert_eq!(
        entries(&added.join("tokenizer.json")),
        entries(&cases.join("added.bfloat16.tokenizer.json"))
    );
}

/// `tokenizer_source: union`: the base's tokens, then every model's added
/// tokens with their flags, as mergekit's union tokenizer. mergekit gives
/// the new tokens ids in a Python set's order (with the hash seed 0 its
/// float32 run took ft_b's first, its bfloat16 run ft_a's) and tensorcast
/// in the configuration's, so rows are compared by token: every token's row of the embeddings and the
/// output head is mergekit's, bit for bit, and everything else is too. The
/// folder's tokenizer.json holds the union's tokens with mergekit's flags.
#[test]
fn a_union_of_vocabularies_gives_each_token_mergekit_s_row() {
    let cases = fixture("merge/vocab/cases");
    let dir = tempfile::tempdir().unwrap();
    let ids = |path: &Path| -> BTreeMap<String, usize> {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut ids: BTreeMap<String, usize> = json["model"]["vocab"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
            .collect();
        for a in json["added_tokens"].as_array().unwrap() {
            ids.insert(
                a["content"].as_str().unwrap().into(),
                a["id"].as_u64().unwrap() as usize,
            );
        }
        ids
    };
    for dtype in ["float32", "bfloat16"] {
        let stem = format!("union.{dtype}");
        let out = dir.path().join(&stem);
        merge_in(
            &cases,
            &[&format!("{stem}.yml"), "-o", out.to_str().unwrap(), "--to", "hf"],
        );
        let (ours, theirs) = (
            tensors(&out.join("model.safetensors")),
            tensors(&cases.join(format!("{stem}.safetensors"))),
        );
        let (our_ids, their_ids) = (
            ids(&out.join("tokenizer.json")),
            ids(&cases.join(format!("{stem}.tokenizer.json"))),
        );
        assert_eq!(our_ids.len(), 404);
        assert_eq!(
            our_ids.keys().collect::<Vec<_>>(),
            their_ids.keys().collect::<Vec<_>>()
        );
        for (name, t) in &theirs {
            let o = &ours[name];
            assert_eq!(o.2, t.2, "{stem} {name}: shape");
            if !name.ends_with("embed_tokens.weight") && !name.ends_with("lm_head.weight") {
                assert!(o == t, "{stem} {name}: not mergekit's bits");
                continue;
            }
            let row = t.3.len() / t.2[0];
            for (token, &theirs_at) in &their_ids {
                let ours_at = our_ids[token];
                assert_eq!(
                    o.3[ours_at * row..(ours_at + 1) * row],
                    t.3[theirs_at * row..(theirs_at + 1) * row],
                    "{stem} {name}: row of {token:?}"
                );
            }
        }
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["vocab_size"], 404);
        // The added tokens carry their flags: special ones special, the
        // plain one normalized.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("tokenizer.json")).unwrap()).unwrap();
        let flags: BTreeMap<&str, (bool, bool)> = json["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["content"].as_str().unwrap(),
                    (
                        a["special"].as_bool().unwrap(),
                        a["normalized"].as_bool().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(flags["tensorcast"], (false, true));
        assert_eq!(flags["<tool_call>"], (true, false));
    }
}

/// What the tokenizer source cannot be made from is refused by name before
/// anything is written: a configured token without a source (mergekit
/// fails on it), and a tokenizer that puts a token past its model's rows.
#[test]
fn tokenizer_sources_that_cannot_be_laid_out_are_refused_by_name() {
    let cases = fixture("merge/vocab/cases");
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(cases.join("source_model.float32.yml")).unwrap();
    let refused = |text: String, out: &str| {
        let config = dir.path().join(format!("{out}.yml"));
        std::fs::write(&config, text).unwrap();
        let target = dir.path().join(format!("{out}.safetensors"));
        let run = tensorcast()
            .current_dir(&cases)
            .args(["-q", "merge"])
            .arg(&config)
            .arg("-o")
            .arg(&target)
            .assert()
            .code(1);
        assert!(!target.exists());
        String::from_utf8_lossy(&run.get_output().stderr).to_string()
    };
    let err = refused(
        yaml.replace(
            "tokenizer_source: ../ft_a",
            "tokenizer:\n  source: ../ft_a\n  tokens:\n    <brand_new>:\n      force: true\n",
        ),
        "sourceless",
    );
    assert!(err.contains("\"<brand_new>\" needs a 'source'"), "{err}");
    // ft_a's tokenizer copied beside ft_b's weights cut to 400 rows.
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("merge/vocab/ft_a").join(f), short.join(f)).unwrap();
    }
    let mut weights = tensors(&fixture("merge/vocab/ft_a/model.safetensors"));
    for name in ["model.embed_tokens.weight", "lm_head.weight"] {
        let t = weights.get_mut(name).unwrap();
        t.2[0] = 400;
        t.3.truncate(400 * 64 * 4);
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = weights
        .values()
        .map(|t| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.2.clone(), &t.3).unwrap();
            (t.0.clone(), view)
        })
        .collect();
    safetensors::tensor::serialize_to_file(views, None, &short.join("model.safetensors")).unwrap();
    let err = refused(yaml.replace("../ft_b", short.to_str().unwrap()), "short");
    assert!(err.contains("has 400 rows") && err.contains("row 402"), "{err}");
}

/// mergekit ranks DELLA's magnitudes along dimension 1 of what it merges,
/// which for a layer's fused experts [E, 2I, H] is across each expert's
/// gate and up rows, column by column: not built (a column of one expert
/// is 2I rows apart), so refused naming the fused tensor, writing nothing.
#[test]
fn della_over_fused_experts_is_refused_by_name() {
    let home = fixture("merge/families/mixtral");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("della.yml");
    std::fs::write(
        &config,
        format!(
            "merge_method: della\nbase_model: {base}\nmodels:\n  - model: {ft1}\n    parameters: {{weight: 0.5, density: 0.5, epsilon: 0.1}}\ndtype: float32\n",
            base = fixture("model/mixtral/hf").display(),
            ft1 = home.join("ft1").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out.safetensors");
    let run = tensorcast()
        .arg("merge")
        .arg(&config)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&run.get_output().stderr).into_owned();
    assert!(
        err.contains("model.layers.0.mlp.experts.gate_up_proj") && err.contains("della"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A configured chat template reaches the merged folder where transformers
/// 5 reads it: chat_template.jinja, which it takes over
/// tokenizer_config.json's. `chat_template: auto` takes the template most of
/// the models have, stripped, as mergekit does (mergekit-yaml 0.1.5 wrote
/// the same chat_template.jinja for this configuration, checked by hand:
/// fixtures/merge/README.md). The Qwen3-MoE base has the real Qwen 3
/// template; its fine-tune none.
#[test]
fn chat_templates_reach_the_merged_folder() {
    let home = fixture("merge/families/qwen3moe");
    let base = fixture("model/qwen3moe/hf");
    let own = std::fs::read_to_string(base.join("chat_template.jinja")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let given = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
    for (template, want) in [("auto", own.trim().to_string()), (given, given.to_string())] {
        let config = dir.path().join("c.yml");
        std::fs::write(
            &config,
            format!(
                "merge_method: linear\nmodels:\n  - model: {}\n    parameters: {{weight: 0.5}}\n  - model: {}\n    parameters: {{weight: 0.5}}\ndtype: float32\nchat_template: {}\n",
                base.display(),
                home.join("ft1").display(),
                serde_json::to_string(template).unwrap()
            ),
        )
        .unwrap();
        let out = dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        tensorcast()
            .args(["-q", "merge"])
            .arg(&config)
            .arg("-o")
            .arg(&out)
            .args(["--to", "hf"])
            .assert()
            .success();
        let jinja = std::fs::read_to_string(out.join("chat_template.jinja")).unwrap();
        assert_eq!(jinja, want, "{template}");
        let tc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("tokenizer_config.json")).unwrap()).unwrap();
        assert_eq!(tc["chat_template"].as_str(), Some(want.as_str()), "{template}");
    }
    assert_ne!(own.trim(), given);
}
