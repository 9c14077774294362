//! kNN and the linear probe against the reference values (faiss-cpu and
//! scikit-learn, tests/data/reference) and brute force.

use super::*;
use crate::cancel::Stop;
use crate::testutil::{expected, load, matrix};

struct Case {
    train: Matrix,
    train_y: Vec<i64>,
    test: Matrix,
    test_y: Vec<i64>,
}

fn case(name: &str) -> Case {
    Case {
        train: matrix(name, "train_x"),
        train_y: load(name, "train_y").to_i64().unwrap(),
        test: matrix(name, "test_x"),
        test_y: load(name, "test_y").to_i64().unwrap(),
    }
}

#[test]
fn knn_reproduces_the_reference_exactly() {
    let all = expected();
    for name in ["clustered10", "sparse_labels", "tiny"] {
        let c = case(name);
        let want = &all[name]["knn"];
        let opts = KnnOptions {
            ks: vec![want["k"].as_u64().unwrap() as usize],
            temperature: want["temperature"].as_f64().unwrap(),
            ..Default::default()
        };
        let got = knn_classify(
            &c.train.normalized().unwrap(),
            &c.train_y,
            &c.test.normalized().unwrap(),
            &c.test_y,
            &opts,
            &Stop::never(),
        )
        .unwrap();
        // The bank as given (rows of any norm): scaled as it is searched,
        // the same votes.
        let raw = knn_classify(
            &c.train,
            &c.train_y,
            &c.test.normalized().unwrap(),
            &c.test_y,
            &opts,
            &Stop::never(),
        )
        .unwrap();
        assert_eq!(raw[0].correct, got[0].correct, "{name}: raw bank");
        assert_eq!(raw[0].top5, got[0].top5, "{name}: raw bank");
        let n = c.test.rows() as f64;
        assert_eq!(
            (got[0].top1 * n).round(),
            (want["top1"].as_f64().unwrap() * n).round(),
            "{name} top1"
        );
        assert_eq!(
            (got[0].top5 * n).round(),
            (want["top5"].as_f64().unwrap() * n).round(),
            "{name} top5"
        );
        assert_eq!(
            got[0].k,
            opts.ks[0].min(c.train.rows()),
            "{name} k clamped to the bank"
        );
    }
}

#[test]
fn linear_probe_agrees_with_scikit_learn_within_one_sample() {
    let all = expected();
    for name in ["clustered10", "sparse_labels", "tiny"] {
        let c = case(name);
        let got = linear_probe(
            &c.train,
            &c.train_y,
            &c.test,
            &c.test_y,
            &LinearOptions::default(),
            &Stop::never(),
        )
        .unwrap();
        let want = all[name]["linear"]["top1"].as_f64().unwrap();
        let n = c.test.rows() as f64;
        assert!(
            ((got.top1 - want) * n).abs() <= 1.0 + 1e-9,
            "{name}: top1 {} vs scikit-learn {want} ({} iterations, converged {})",
            got.top1,
            got.iterations,
            got.converged
        );
        assert!(
            got.converged,
            "{name} did not converge in {} iterations",
            got.iterations
        );
        assert!(got.top5 >= got.top1 && got.train_top1 > 0.0);
    }
}

/// The vote by its definition, for any k.
fn brute_knn(c: &Case, k: usize, t: f64) -> (f64, f64) {
    let train = c.train.normalized().unwrap();
    let test = c.test.normalized().unwrap();
    let classes = classes(&c.train_y, &c.test_y);
    let (mut h1, mut h5) = (0, 0);
    for i in 0..test.rows() {
        let mut sims: Vec<(f64, usize)> = (0..train.rows())
            .map(|j| {
                let s: f64 = test
                    .row(i)
                    .iter()
                    .zip(train.row(j))
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
                (s, j)
            })
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut scores = vec![0.0; classes.len()];
        for &(s, j) in sims.iter().take(k) {
            scores[classes.binary_search(&c.train_y[j]).unwrap()] += (s / t).exp();
        }
        let mut ranked: Vec<usize> = (0..classes.len()).collect();
        ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let truth = classes.binary_search(&c.test_y[i]).unwrap();
        h1 += (ranked[0] == truth) as usize;
        h5 += ranked.iter().take(5).any(|&r| r == truth) as usize;
    }
    let n = test.rows() as f64;
    (h1 as f64 / n, h5 as f64 / n)
}

#[test]
fn several_k_in_one_pass_equal_brute_force_including_k_below_5() {
    let c = case("clustered10");
    let ks = vec![200, 3, 10, 20, 1, 100];
    let got = knn_classify(
        &c.train.normalized().unwrap(),
        &c.train_y,
        &c.test.normalized().unwrap(),
        &c.test_y,
        &KnnOptions {
            ks: ks.clone(),
            temperature: 0.1,
            ..Default::default()
        },
        &Stop::never(),
    )
    .unwrap();
    for (r, &k) in got.iter().zip(&ks) {
        let (b1, b5) = brute_knn(&c, k, 0.1);
        assert_eq!((r.k, r.top1, r.top5), (k, b1, b5), "k = {k}");
    }
}

#[test]
fn edge_cases_fail_clearly() {
    let c = case("tiny");
    let norm = |m: &Matrix| m.normalized().unwrap();
    // A single class.
    let one = vec![5i64; c.train.rows()];
    let one_test = vec![5i64; c.test.rows()];
    let err = linear_probe(
        &c.train,
        &one,
        &c.test,
        &one_test,
        &LinearOptions::default(),
        &Stop::never(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least two classes"), "{err}");
    let err = knn_classify(
        &norm(&c.train),
        &one,
        &norm(&c.test),
        &one_test,
        &KnnOptions::default(),
        &Stop::never(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("at least two classes"), "{err}");
    // Train and test of different dimension.
    let narrow = Matrix::new(c.test.as_slice()[..c.test.rows() * 4].to_vec(), 4).unwrap();
    let err = linear_probe(
        &c.train,
        &c.train_y,
        &narrow,
        &c.test_y,
        &LinearOptions::default(),
        &Stop::never(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dimension 8") && err.contains("have 4"),
        "{err}"
    );
    assert!(knn_classify(
        &norm(&c.train),
        &c.train_y,
        &narrow,
        &c.test_y,
        &KnnOptions::default(),
        &Stop::never()
    )
    .is_err());
    // NaN in the features.
    let mut bad = c.train.as_slice().to_vec();
    bad[3 * 8 + 2] = f32::NAN;
    let bad = Matrix::new(bad, 8).unwrap();
    let err = linear_probe(
        &bad,
        &c.train_y,
        &c.test,
        &c.test_y,
        &LinearOptions::default(),
        &Stop::never(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("non-finite") && err.contains("row 3"), "{err}");
    assert!(knn_classify(
        &bad,
        &c.train_y,
        &norm(&c.test),
        &c.test_y,
        &KnnOptions::default(),
        &Stop::never()
    )
    .is_err());
    // Labels that do not match the rows; k = 0.
    assert!(linear_probe(
        &c.train,
        &c.train_y[1..],
        &c.test,
        &c.test_y,
        &LinearOptions::default(),
        &Stop::never()
    )
    .is_err());
    assert!(knn_classify(
        &norm(&c.train),
        &c.train_y,
        &norm(&c.test),
        &c.test_y,
        &KnnOptions {
            ks: vec![0],
            ..Default::default()
        },
        &Stop::never()
    )
    .is_err());
}

#[test]
fn the_faiss_flat_index_gives_the_same_vote_and_hnsw_reports_recall() {
    let c = case("clustered10");
    let (train, test) = (c.train.normalized().unwrap(), c.test.normalized().unwrap());
    let run = |index| {
        knn_classify(
            &train,
            &c.train_y,
            &test,
            &c.test_y,
            &KnnOptions {
                ks: vec![20],
                index,
                ..Default::default()
            },
            &Stop::never(),
        )
        .unwrap()
        .remove(0)
    };
    let exact = run(crate::index::IndexKind::Exact);
    let flat = run(crate::index::IndexKind::FaissFlat);
    assert_eq!((exact.top1, exact.top5), (flat.top1, flat.top5));
    assert_eq!((exact.index.as_str(), exact.recall), ("exact", None));
    let hnsw = run(crate::index::IndexKind::Hnsw {
        m: 16,
        ef_search: 64,
    });
    let recall = hnsw.recall.unwrap();
    assert!(recall > 0.8 && recall <= 1.0, "{recall}");
    assert!((hnsw.top1 - exact.top1).abs() < 0.05);
}
