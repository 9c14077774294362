//! The metrics against the independent reference values in
//! tests/data/reference (numpy float64, faiss-cpu; a copy of
//! shared/reference) and against brute force on random inputs.

use proptest::prelude::*;

use super::*;
use crate::cancel::Stop;
use crate::testutil::{expected, load, matrix};

fn assert_rel(got: f64, want: f64, tol: f64, what: &str) {
    let err = (got - want).abs() / want.abs().max(1e-12);
    assert!(
        err <= tol,
        "{what}: got {got}, want {want}, relative error {err:e}"
    );
}

const CASES: [&str; 3] = ["clustered10", "sparse_labels", "tiny"];

#[test]
fn reproduces_the_reference_values() {
    let all = expected();
    for case in CASES {
        let want = &all[case];
        let settings = &want["settings"];
        let z = matrix(case, "test_x").normalized().unwrap();
        let zp = matrix(case, "test_x_aug").normalized().unwrap();
        let labels = load(case, "test_y").to_i64().unwrap();
        let f = |key: &str| want[key].as_f64().unwrap();
        let t = settings["uniformity_t"].as_f64().unwrap();

        let u = uniformity_exact(&z, t).unwrap();
        assert_rel(
            u.loss,
            f("uniformity_loss"),
            1e-5,
            &format!("{case} uniformity_loss"),
        );
        assert_eq!(u.estimator, Estimator::Exact);
        assert_rel(
            alignment(&z, &zp, 2.0).unwrap(),
            f("alignment"),
            1e-5,
            &format!("{case} alignment"),
        );
        assert_rel(
            positive_similarity(&z, &zp).unwrap(),
            f("positive_similarity"),
            1e-5,
            &format!("{case} positive_similarity"),
        );
        assert_rel(
            tolerance(&z, &labels).unwrap(),
            f("tolerance"),
            1e-5,
            &format!("{case} tolerance"),
        );
        let k = settings["neighbors_k"].as_u64().unwrap() as usize;
        let profile = nearest_negatives(&z, k, &Stop::never()).unwrap();
        for (r, want) in want["nearest_negative_similarity"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_rel(
                profile.mean_similarity[r],
                want.as_f64().unwrap(),
                1e-5,
                &format!("{case} nearest_negative_similarity[{r}]"),
            );
        }
        let tau = settings["penalty_temperature"].as_f64().unwrap();
        let penalty = penalty_profile(&z, tau, &profile, &Stop::never()).unwrap();
        for (r, want) in want["relative_penalty"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_rel(
                penalty.relative_penalty[r],
                want.as_f64().unwrap(),
                1e-5,
                &format!("{case} relative_penalty[{r}]"),
            );
        }
        assert_rel(
            penalty.entropy,
            f("penalty_entropy"),
            1e-5,
            &format!("{case} penalty_entropy"),
        );
        let eps = settings["rank_eps"].as_f64().unwrap();
        assert_rel(
            effective_rank(&z, eps).unwrap(),
            f("effective_rank"),
            1e-5,
            &format!("{case} effective_rank"),
        );
    }
}

#[test]
fn sampled_uniformity_is_close_and_reproducible() {
    let z = matrix("clustered10", "test_x").normalized().unwrap();
    let exact = uniformity_exact(&z, 2.0).unwrap();
    let a = uniformity_sampled(&z, 2.0, 200_000, 7).unwrap();
    let b = uniformity_sampled(&z, 2.0, 200_000, 7).unwrap();
    assert_eq!(a, b, "same seed, same estimate");
    assert!(a.stderr > 0.0 && a.stderr < 0.01, "{a:?}");
    assert!(
        (a.loss - exact.loss).abs() < 5.0 * a.stderr + 1e-3,
        "sampled {a:?} vs exact {exact:?}"
    );
    let auto = uniformity(
        &z,
        &UniformityOptions {
            exact_max_rows: 10,
            samples: 1000,
            ..Default::default()
        },
        &Stop::never(),
    )
    .unwrap();
    assert_eq!(auto.estimator.as_str(), "sampled");
}

#[test]
fn tolerance_needs_a_class_with_two_samples() {
    let z = Matrix::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
    let err = tolerance(&z, &[1, 2]).unwrap_err().to_string();
    assert!(err.contains("at least two samples"), "{err}");
    assert!(tolerance(&z, &[1]).is_err());
}

#[test]
fn bad_rows_are_named() {
    let err = Matrix::new(vec![1.0, f32::NAN, 0.0, 1.0], 2)
        .unwrap()
        .normalized()
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 0") && err.contains("NaN"), "{err}");
    let err = Matrix::new(vec![1.0, 0.0, 0.0, 0.0], 2)
        .unwrap()
        .normalized()
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1") && err.contains("zeros"), "{err}");
    assert!(Matrix::new(vec![1.0; 5], 2).is_err());
}

#[test]
fn histogram_bins_and_clamps() {
    let h = histogram([-1.0, -0.99, 0.0, 0.49, 0.5, 1.0, 3.0], 4, -1.0, 1.0);
    assert_eq!(h, vec![2, 0, 2, 3]);
}

// ---- brute force -------------------------------------------------------

fn sim(z: &Matrix, i: usize, j: usize) -> f64 {
    dot(z.row(i), z.row(j))
}

fn brute_uniformity(z: &Matrix, t: f64) -> f64 {
    let n = z.rows();
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j {
                total += (-t * (2.0 - 2.0 * sim(z, i, j))).exp();
            }
        }
    }
    (total / (n * (n - 1)) as f64).ln()
}

fn brute_tolerance(z: &Matrix, labels: &[i64]) -> f64 {
    let (mut total, mut count) = (0.0, 0.0);
    for i in 0..z.rows() {
        for j in 0..z.rows() {
            if i != j && labels[i] == labels[j] {
                total += sim(z, i, j);
                count += 1.0;
            }
        }
    }
    total / count
}

/// (mean r on ranks 1..k, mean entropy) by the definition.
fn brute_penalty(z: &Matrix, tau: f64, k: usize) -> (Vec<f64>, f64) {
    let n = z.rows();
    let mut pen = vec![0.0; k];
    let mut ent = 0.0;
    for i in 0..n {
        let mut s: Vec<f64> = (0..n).filter(|&j| j != i).map(|j| sim(z, i, j)).collect();
        let denom: f64 = s.iter().map(|v| (v / tau).exp()).sum();
        let r: Vec<f64> = s.iter().map(|v| (v / tau).exp() / denom).collect();
        ent -= r.iter().map(|p| p * p.ln()).sum::<f64>();
        s.sort_by(|a, b| b.total_cmp(a));
        for (p, v) in pen.iter_mut().zip(&s) {
            *p += (v / tau).exp() / denom;
        }
    }
    (pen.iter().map(|p| p / n as f64).collect(), ent / n as f64)
}

fn random_matrix() -> impl Strategy<Value = Matrix> {
    (3usize..40, 2usize..12).prop_flat_map(|(n, d)| {
        prop::collection::vec(-1.0f32..1.0, n * d).prop_filter_map("zero row", move |v| {
            let m = Matrix::new(v, d).ok()?;
            m.normalized().ok()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn uniformity_is_at_most_zero_and_equals_brute_force(z in random_matrix(), t in 0.5f64..5.0) {
        let u = uniformity_exact(&z, t).unwrap();
        prop_assert!(u.loss <= 1e-6);
        let want = brute_uniformity(&z, t);
        prop_assert!((u.loss - want).abs() <= 1e-5 * want.abs().max(1.0), "{} vs {}", u.loss, want);
    }

    #[test]
    fn uniformity_ignores_row_scale(z in random_matrix(), scales in prop::collection::vec(0.01f32..100.0, 40)) {
        let scaled: Vec<f32> = z.as_slice()
            .chunks_exact(z.dim())
            .zip(&scales)
            .flat_map(|(row, s)| row.iter().map(move |v| v * s))
            .collect();
        let rescaled = Matrix::new(scaled, z.dim()).unwrap().normalized().unwrap();
        let a = uniformity_exact(&z, 2.0).unwrap().loss;
        let b = uniformity_exact(&rescaled, 2.0).unwrap().loss;
        prop_assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn tolerance_equals_brute_force(z in random_matrix(), seed in any::<u64>()) {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let labels: Vec<i64> = (0..z.rows()).map(|_| rng.below(3) as i64 * 17 - 5).collect();
        prop_assume!(labels.iter().any(|l| labels.iter().filter(|m| *m == l).count() > 1));
        let got = tolerance(&z, &labels).unwrap();
        let want = brute_tolerance(&z, &labels);
        prop_assert!((got - want).abs() <= 1e-5, "{got} vs {want}");
    }

    #[test]
    fn penalty_profile_equals_brute_force(z in random_matrix(), tau in 0.05f64..2.0) {
        let k = 3.min(z.rows() - 1);
        let profile = nearest_negatives(&z, k, &Stop::never()).unwrap();
        let got = penalty_profile(&z, tau, &profile, &Stop::never()).unwrap();
        let (pen, ent) = brute_penalty(&z, tau, k);
        prop_assert!((got.entropy - ent).abs() <= 1e-4 * ent.abs().max(1.0), "{} vs {ent}", got.entropy);
        prop_assert_eq!(got.relative_penalty.len(), k);
        for (q, (g, p)) in got.relative_penalty.iter().zip(&pen).enumerate() {
            prop_assert!((g - p).abs() <= 1e-4 * p.max(1e-3), "rank {q}: {g} vs {p}");
        }
    }

    #[test]
    fn entropy_grows_with_tau(z in random_matrix(), tau in 0.05f64..1.0) {
        let profile = nearest_negatives(&z, 1, &Stop::never()).unwrap();
        let low = penalty_profile(&z, tau, &profile, &Stop::never()).unwrap().entropy;
        let high = penalty_profile(&z, tau * 2.0, &profile, &Stop::never()).unwrap().entropy;
        prop_assert!(high >= low - 1e-6, "H at tau {tau} = {low}, at {} = {high}", tau * 2.0);
        prop_assert!(high <= ((z.rows() - 1) as f64).ln() + 1e-6);
    }
}
