//! Helpers shared by the benchmarks.

use std::time::{Duration, Instant};

/// The fastest of `runs` runs of `f`, with the last result.
pub fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        out = Some(v);
    }
    (best, out.unwrap())
}

/// Runs the Python baseline `script` (a path under the repository) on the
/// data in `dir` with EMBEDEVAL_BENCH_PYTHON and returns the JSON object it
/// prints; None when EMBEDEVAL_BENCH_PYTHON is not set.
#[allow(dead_code)]
pub fn python_baseline(script: &str, dir: &std::path::Path) -> Option<serde_json::Value> {
    let python = std::env::var("EMBEDEVAL_BENCH_PYTHON").ok()?;
    let out = std::process::Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The processor's model name and the flags that decide the kNN engine
/// (avx2, avx512f, avx512_bf16, avx_vnni, avx512_vnni), from /proc/cpuinfo.
#[allow(dead_code)]
pub fn processor() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown".into(), |l| {
            l.trim_start_matches([' ', '\t', ':']).to_string()
        });
    let flags: Vec<&str> = ["avx2", "avx512f", "avx512_bf16", "avx_vnni", "avx512_vnni"]
        .into_iter()
        .filter(|f| info.split_whitespace().any(|w| w == *f))
        .collect();
    format!("{model} ({})", flags.join(" "))
}
