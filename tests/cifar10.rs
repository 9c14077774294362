//! The CIFAR-10 zoo on real images, as a user runs it: a stratified
//! 2,000-image subset of CIFAR-10's test split (200 per class, the first in
//! file order) added as an image folder, two of the zoo's models evaluated
//! through the command line, and their uniformity and tolerance checked
//! against values this test computes itself, by brute force in f64, from the
//! embeddings `embed` returns.
//!
//! The images come from `../shared/data/cifar10-jpeg.tar.gz` (or the file
//! `EMBEDEVAL_CIFAR10_TAR` names); where it is absent the test says so and
//! passes without checking anything.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use embedeval::data::npy::NpyArray;

/// The models checked: the smallest and the largest τ of the ordinary loss
/// that the zoo holds.
const MODELS: [&str; 2] = ["cifar10-infonce-t0.07", "cifar10-infonce-t0.1"];

/// Images per class in the subset.
const PER_CLASS: usize = 200;

fn archive() -> Option<PathBuf> {
    let path = std::env::var_os("EMBEDEVAL_CIFAR10_TAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar10-jpeg.tar.gz")
        });
    path.is_file().then_some(path)
}

fn cli(server: &common::TestServer, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(args)
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `uniformity` (−log mean over i≠j of exp(−2‖z_i − z_j‖²)) and `tolerance`
/// (mean z_iᵀz_j over distinct same-label pairs) of rows `x` [n, d], each
/// L2-normalised first, by brute force in f64.
fn uniformity_and_tolerance(x: &[f32], d: usize, labels: &[i64]) -> (f64, f64) {
    let z: Vec<Vec<f64>> = x
        .chunks(d)
        .map(|r| {
            let norm = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            r.iter().map(|v| *v as f64 / norm).collect()
        })
        .collect();
    let n = z.len();
    let (mut sum_exp, mut same_sum, mut same_pairs) = (0f64, 0f64, 0u64);
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let dot: f64 = z[i].iter().zip(&z[j]).map(|(a, b)| a * b).sum();
            sum_exp += (-2.0 * (2.0 - 2.0 * dot)).exp();
            if labels[i] == labels[j] {
                same_sum += dot;
                same_pairs += 1;
            }
        }
    }
    let pairs = (n * (n - 1)) as f64;
    (-(sum_exp / pairs).ln(), same_sum / same_pairs as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cifar10_models_on_real_test_images_agree_with_brute_force() {
    let Some(tar) = archive() else {
        eprintln!(
            "SKIPPED: CIFAR-10 is not at hand (../shared/data/cifar10-jpeg.tar.gz or \
             EMBEDEVAL_CIFAR10_TAR): the CIFAR-10 evaluation test checked nothing"
        );
        return;
    };
    let zoo = common::zoo();
    let models: Vec<&str> = MODELS
        .iter()
        .copied()
        .filter(|m| zoo.join(m).is_dir())
        .collect();
    assert!(!models.is_empty(), "no CIFAR-10 model in {}", zoo.display());

    // The subset: the first 200 images of each class of the test split.
    let work = tempfile::tempdir().unwrap();
    let ok = Command::new("tar")
        .args(["xzf", tar.to_str().unwrap(), "-C"])
        .arg(work.path())
        .arg("cifar10/test")
        .status()
        .unwrap();
    assert!(ok.success(), "tar xzf {}", tar.display());
    let subset = work.path().join("subset");
    let mut classes: Vec<PathBuf> = std::fs::read_dir(work.path().join("cifar10/test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    classes.sort();
    assert_eq!(classes.len(), 10);
    for class in &classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(class)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let dest = subset.join("test").join(class.file_name().unwrap());
        std::fs::create_dir_all(&dest).unwrap();
        for f in files.iter().take(PER_CLASS) {
            std::fs::rename(f, dest.join(f.file_name().unwrap())).unwrap();
        }
    }

    let server = common::zoo_server().await;
    cli(
        &server,
        &["datasets", "add", "cifar10-sub", subset.to_str().unwrap()],
    );
    for model in models {
        let out = cli(
            &server,
            &[
                "eval",
                model,
                "--dataset",
                "cifar10-sub",
                "--skip-knn",
                "--skip-linear",
                "--skip-alignment",
                "--skip-penalty",
                "--json",
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["status"], "COMPLETED", "{report}");
        assert_eq!(report["num_test"], "2000");
        assert_eq!(report["preprocessing"]["preset"], "cifar10");
        assert_eq!(report["uniformity_estimator"], "exact");
        let npy = work.path().join(format!("{model}.npy"));
        cli(
            &server,
            &[
                "embed",
                model,
                "--dataset",
                "cifar10-sub",
                "-o",
                npy.to_str().unwrap(),
            ],
        );
        let emb = NpyArray::read(&npy).unwrap();
        let labels = NpyArray::read(&npy.with_extension("labels.npy"))
            .unwrap()
            .to_i64()
            .unwrap();
        assert_eq!(emb.shape[0], 2000);
        let (u, t) = uniformity_and_tolerance(&emb.to_f32().unwrap(), emb.shape[1], &labels);
        let got_u = report["uniformity"].as_f64().unwrap();
        let got_t = report["tolerance"].as_f64().unwrap();
        assert!(
            (got_u - u).abs() < 1e-4,
            "{model}: uniformity {got_u} against {u}"
        );
        assert!(
            (got_t - t).abs() < 1e-4,
            "{model}: tolerance {got_t} against {t}"
        );
        // Trained, not collapsed: spread out, and same-class pairs closer
        // than the average pair.
        assert!(u > 1.0, "{model}: uniformity {u}");
        eprintln!("{model}: uniformity {u:.4} (service {got_u:.4}), tolerance {t:.4} (service {got_t:.4})");
    }
}

/// Every CIFAR-10 JPEG (50,000 train, 10,000 test), loaded as an image
/// folder in RGB and in greyscale, against Pillow's pixels of the same
/// files (`Image.open(p).convert("RGB")` and `convert("L")`): the sha256 of
/// each split and class, recorded by `tests/data/jpeg/make.py` in
/// `tests/data/jpeg/digests.txt`. Skipped, saying so, where the archive is
/// absent.
#[test]
fn every_cifar10_jpeg_decodes_to_pillows_pixels_bit_for_bit() {
    use embedeval::data::Dataset;
    use sha2::{Digest, Sha256};

    let Some(tar) = archive() else {
        eprintln!(
            "SKIPPED: CIFAR-10 is not at hand (../shared/data/cifar10-jpeg.tar.gz or \
             EMBEDEVAL_CIFAR10_TAR): the JPEG decoder was not checked on CIFAR-10"
        );
        return;
    };
    let digests = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg/digests.txt"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let ok = Command::new("tar")
        .args(["xzf", tar.to_str().unwrap(), "-C"])
        .arg(work.path())
        .status()
        .unwrap();
    assert!(ok.success(), "tar xzf {}", tar.display());
    let dir = work.path().join("cifar10");
    let mut classes: Vec<String> = std::fs::read_dir(dir.join("test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    classes.sort();
    assert_eq!(classes.len(), 10);
    for (channels, column) in [(3usize, 3usize), (1, 4)] {
        std::fs::write(
            dir.join("dataset.toml"),
            format!("format = \"image-folder\"\nchannels = {channels}\n"),
        )
        .unwrap();
        let dataset = Dataset::open(&dir).unwrap();
        assert_eq!(dataset.summary.image_shape, [32, 32, channels]);
        for split in ["train", "test"] {
            let loaded = dataset.load_split(split).unwrap();
            let row = 32 * 32 * channels;
            let mut start = 0;
            for (label, class) in classes.iter().enumerate() {
                let n = loaded.labels[start..]
                    .iter()
                    .take_while(|l| **l == label as i64)
                    .count();
                let line = digests
                    .lines()
                    .find(|l| l.starts_with(&format!("cifar10 {split}/{class} ")))
                    .unwrap_or_else(|| panic!("no Pillow digest for {split}/{class}"));
                let fields: Vec<&str> = line.split(' ').collect();
                assert_eq!(n.to_string(), fields[2], "{split}/{class}: images");
                let got = hex::encode(Sha256::digest(
                    &loaded.pixels[start * row..(start + n) * row],
                ));
                assert_eq!(
                    got, fields[column],
                    "{split}/{class} in {channels} channel(s): the pixels differ from Pillow's"
                );
                start += n;
            }
            assert_eq!(start, loaded.n, "{split}: labels out of class order");
        }
    }
}
