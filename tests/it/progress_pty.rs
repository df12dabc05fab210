//! The progress bar on a real terminal (a pty, through Python's `pty`
//! module): it moves within one large tensor, chunk by chunk, and the run
//! ends with one closing line; `-q` shows neither. The tensor is cut into 8
//! output chunks, fewer updates than the terminal's burst allowance (20
//! draws), so every position is drawn however fast or slow the machine is.
#![cfg(unix)]

use std::path::Path;
use std::process::Command;

/// A safetensors file of one F32 tensor of `n` elements.
fn big_tensor(path: &Path, n: usize) {
    let header = format!(
        "{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{n}],\"data_offsets\":[0,{}]}}}}",
        4 * n
    );
    let mut text = header.into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend((0..n).flat_map(|i| (i as f32).to_le_bytes()));
    std::fs::write(path, out).unwrap();
}

/// What the terminal showed while `args` ran, escape sequences removed and
/// carriage returns as line breaks.
fn on_a_terminal(args: &[&str]) -> String {
    let bin = assert_cmd::cargo::cargo_bin("tensorcast");
    let script = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(bin)
        .args(args)
        .output()
        .expect("python3 runs (CI has it for the Python package)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => text.push('\n'),
            c => text.push(c),
        }
    }
    text
}

#[test]
fn the_bar_moves_within_one_tensor_and_the_run_ends_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.safetensors");
    big_tensor(&input, 8 << 20); // 32 MiB of f32, 16 MiB as f16
    let output = dir.path().join("big.f16.safetensors");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let shown = on_a_terminal(&["convert", i, "-o", o, "--dtype", "f16"]);
    let positions: Vec<f64> = shown
        .lines()
        .filter(|l| l.contains("big.f16.safetensors") && l.contains("/16.00 MiB"))
        .filter_map(|l| {
            let before = l.split("/16.00 MiB").next()?;
            let mut words = before.split_whitespace().rev();
            let (unit, value) = (words.next()?, words.next()?);
            let v: f64 = value.parse().ok()?;
            Some(match unit {
                "MiB" => v,
                "KiB" => v / 1024.0,
                _ => 0.0,
            })
        })
        .collect();
    let inside: std::collections::BTreeSet<u64> = positions
        .iter()
        .filter(|&&p| p > 0.0 && p < 16.0)
        .map(|p| (p * 1024.0) as u64)
        .collect();
    assert!(
        inside.len() >= 4,
        "the bar did not move within the tensor: {positions:?}\n{shown}"
    );
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    assert_eq!(positions.last().copied(), Some(16.0), "{shown}");
    let closing: Vec<&str> = shown.lines().filter(|l| l.starts_with("wrote ")).collect();
    assert_eq!(closing.len(), 1, "{shown}");
    assert!(
        closing[0].contains("big.f16.safetensors: 1 tensors"),
        "{}",
        closing[0]
    );
    // Quiet: no bar, no closing line.
    let quiet = on_a_terminal(&["convert", i, "-o", o, "--dtype", "f16", "--force", "-q"]);
    assert!(!quiet.contains("MiB") && !quiet.contains("wrote"), "{quiet}");
}
