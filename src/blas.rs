//! The few BLAS and LAPACK routines embedeval uses, from the OpenBLAS that
//! faiss already links: sgemm for Gram blocks (metrics, exact search),
//! dgemm for the linear probe, dsyrk and dsyev for the spectrum of the
//! effective rank. Also the choice of OpenBLAS's kernels where the
//! OpenBLAS installed does not know the processor ([`use_processor_kernels`]).

use std::os::raw::{c_char, c_int};

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;
const UPPER: c_int = 121;

#[link(name = "openblas")]
unsafe extern "C" {
    fn openblas_get_corename() -> *const c_char;
    fn cblas_sgemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn cblas_dgemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f64,
        a: *const f64,
        lda: c_int,
        b: *const f64,
        ldb: c_int,
        beta: f64,
        c: *mut f64,
        ldc: c_int,
    );
    fn cblas_dsyrk(
        order: c_int,
        uplo: c_int,
        trans: c_int,
        n: c_int,
        k: c_int,
        alpha: f64,
        a: *const f64,
        lda: c_int,
        beta: f64,
        c: *mut f64,
        ldc: c_int,
    );
    fn dsyev_(
        jobz: *const c_char,
        uplo: *const c_char,
        n: *const c_int,
        a: *mut f64,
        lda: *const c_int,
        w: *mut f64,
        work: *mut f64,
        lwork: *const c_int,
        info: *mut c_int,
    );
}

/// The name of the kernels OpenBLAS chose for this processor at load time
/// ("Haswell", "SkylakeX", "Zen", …; "Prescott" where it fell back to its
/// oldest x86-64 kernels).
pub fn kernels() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(openblas_get_corename()) }
        .to_string_lossy()
        .into_owned()
}

/// The kernels to ask OpenBLAS for where it fell back to "Prescott" (SSE3)
/// on a processor with AVX2 or AVX-512: an OpenBLAS older than the
/// processor does not know its model number (Debian 12's 0.3.21 runs an
/// Emerald Rapids Xeon, family 6 model 207, on Prescott kernels, whose
/// sgemm is several times slower than the AVX-512 one). None where OpenBLAS
/// chose itself.
pub fn better_kernels(chosen: &str) -> Option<&'static str> {
    if !chosen.eq_ignore_ascii_case("prescott") {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            return Some("SkylakeX");
        }
        if has!("avx2") && has!("fma") {
            return Some("Haswell");
        }
    }
    None
}

/// OpenBLAS reads `OPENBLAS_CORETYPE` once, when it is loaded, before
/// `main`: where it fell back to kernels far older than the processor
/// ([`better_kernels`]) and the variable is not set, the program runs
/// itself again, the same arguments and process id (exec), with the
/// variable naming the kernels the processor can run. Call first thing in
/// `main`, before any thread starts. A failed exec leaves the program on
/// the old kernels, with a line on stderr.
pub fn use_processor_kernels() {
    if std::env::var_os("OPENBLAS_CORETYPE").is_some() {
        return;
    }
    let chosen = kernels();
    let Some(better) = better_kernels(&chosen) else {
        return;
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("embedeval: OpenBLAS runs {chosen} kernels; cannot find this program to run it with {better}'s: {err}");
            return;
        }
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env("OPENBLAS_CORETYPE", better)
        .exec();
    eprintln!(
        "embedeval: OpenBLAS runs {chosen} kernels; running {} again with {better}'s failed: {err}",
        exe.display()
    );
}

fn int(v: usize) -> c_int {
    c_int::try_from(v).expect("matrix dimension fits a BLAS int")
}

/// C = A · Bᵀ for row-major A [m, k] and B [n, k]; C is [m, n], overwritten.
pub fn gemm_abt(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the slices hold at least the sizes BLAS reads and writes
    // (checked above); leading dimensions equal the row lengths.
    unsafe {
        cblas_sgemm(
            ROW_MAJOR,
            NO_TRANS,
            TRANS,
            int(m),
            int(n),
            int(k),
            1.0,
            a.as_ptr(),
            int(k),
            b.as_ptr(),
            int(k),
            0.0,
            c.as_mut_ptr(),
            int(n),
        );
    }
}

/// C = op(A) · op(B) in float64, row-major, where op transposes when asked:
/// op(A) is [m, k], op(B) is [k, n], C is [m, n], overwritten.
#[allow(clippy::too_many_arguments)]
pub fn dgemm(
    a: &[f64],
    trans_a: bool,
    b: &[f64],
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f64],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let lda = if trans_a { m } else { k };
    let ldb = if trans_b { k } else { n };
    let flag = |t: bool| if t { TRANS } else { NO_TRANS };
    // SAFETY: the slices hold at least the sizes BLAS reads and writes
    // (checked above); leading dimensions follow the row-major layouts.
    unsafe {
        cblas_dgemm(
            ROW_MAJOR,
            flag(trans_a),
            flag(trans_b),
            int(m),
            int(n),
            int(k),
            1.0,
            a.as_ptr(),
            int(lda),
            b.as_ptr(),
            int(ldb),
            0.0,
            c.as_mut_ptr(),
            int(n),
        );
    }
}

/// G = Aᵀ·A (upper triangle filled) for row-major A [n, d], G [d, d].
pub fn syrk_ata(a: &[f64], n: usize, d: usize) -> Vec<f64> {
    assert!(a.len() >= n * d);
    let mut g = vec![0.0; d * d];
    if n == 0 || d == 0 {
        return g;
    }
    // SAFETY: sizes checked above; `g` is d×d.
    unsafe {
        cblas_dsyrk(
            ROW_MAJOR,
            UPPER,
            TRANS,
            int(d),
            int(n),
            1.0,
            a.as_ptr(),
            int(d),
            0.0,
            g.as_mut_ptr(),
            int(d),
        );
    }
    g
}

/// Eigenvalues (ascending) of the symmetric matrix whose upper triangle, in
/// row-major order, is in `a` [d, d]. LAPACK dsyev.
pub fn symmetric_eigenvalues(a: Vec<f64>, d: usize) -> Result<Vec<f64>, String> {
    dsyev(a, d, false).map(|(w, _)| w)
}

/// Eigenvalues (ascending) and eigenvectors of the symmetric matrix `a`
/// [d, d] (row-major, upper triangle read): vector j is `vectors[j*d..(j+1)*d]`,
/// of unit length. LAPACK dsyev.
pub fn symmetric_eigen(a: Vec<f64>, d: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
    dsyev(a, d, true)
}

/// dsyev on `a` [d, d]: the eigenvalues, and `a` overwritten by the
/// eigenvectors (one per column, column-major) when `vectors`.
fn dsyev(mut a: Vec<f64>, d: usize, vectors: bool) -> Result<(Vec<f64>, Vec<f64>), String> {
    assert_eq!(a.len(), d * d);
    if d == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    // Row-major upper is column-major lower.
    let jobz = if vectors { b'V' } else { b'N' } as c_char;
    let uplo = b'L' as c_char;
    let n = int(d);
    let mut w = vec![0.0; d];
    let mut info: c_int = 0;
    let mut query = 0.0f64;
    let minus_one: c_int = -1;
    // SAFETY: a workspace query (lwork = -1) writes one value to `query`.
    unsafe {
        dsyev_(
            &jobz,
            &uplo,
            &n,
            a.as_mut_ptr(),
            &n,
            w.as_mut_ptr(),
            &mut query,
            &minus_one,
            &mut info,
        );
    }
    if info != 0 {
        return Err(format!("dsyev workspace query failed (info {info})"));
    }
    let lwork = (query as usize).max(3 * d);
    let mut work = vec![0.0; lwork];
    let lwork = int(lwork);
    // SAFETY: `a` is d×d, `w` has d entries, `work` has lwork entries.
    unsafe {
        dsyev_(
            &jobz,
            &uplo,
            &n,
            a.as_mut_ptr(),
            &n,
            w.as_mut_ptr(),
            work.as_mut_ptr(),
            &lwork,
            &mut info,
        );
    }
    if info != 0 {
        return Err(format!("dsyev did not converge (info {info})"));
    }
    Ok((w, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_older_than_the_processor_are_replaced_by_ones_it_runs() {
        assert_eq!(
            better_kernels("Haswell"),
            None,
            "OpenBLAS's own choice stays"
        );
        assert_eq!(better_kernels("SkylakeX"), None);
        let better = better_kernels("Prescott");
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let want =
                if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
                    Some("SkylakeX")
                } else if has!("avx2") && has!("fma") {
                    Some("Haswell")
                } else {
                    None
                };
            assert_eq!(better, want);
        }
        eprintln!("OpenBLAS runs {} kernels here", kernels());
    }

    #[test]
    fn gemm_matches_loops() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // [2, 3]
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5 - 2.0).collect(); // [4, 3]
        let mut c = vec![0.0; 8];
        gemm_abt(&a, &b, 2, 4, 3, &mut c);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = (0..3).map(|t| a[i * 3 + t] * b[j * 3 + t]).sum();
                assert!((c[i * 4 + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn eigenvalues_of_a_known_matrix() {
        // A = [[2, 1], [1, 2]] has eigenvalues 1 and 3; as Bᵀ·B with B = [[1, 1], [1, -1]]·/√2·…
        let a = vec![1.0, 1.0, 1.0, -1.0, 0.0, 0.0]; // [3, 2]
        let g = syrk_ata(&a, 3, 2); // [[2, 0], [0, 2]] upper
        assert_eq!((g[0], g[1], g[3]), (2.0, 0.0, 2.0));
        let w = symmetric_eigenvalues(vec![2.0, 1.0, 0.0, 2.0], 2).unwrap();
        assert!(
            (w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12,
            "{w:?}"
        );
    }
}
