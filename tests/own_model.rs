//! A researcher's own model and data, as a new user meets them on the
//! command line: an ONNX file with no card (a ResNet-shaped encoder with
//! 2048-d features, tests/data/resnet2048), a folder of JPEGs and PNGs of
//! many sizes with `train/` and `val/` splits, and CIFAR-10 batches, none
//! with a format given. The numbers are checked against values made
//! independently with Pillow, numpy and onnxruntime
//! (tests/data/resnet2048/reference/README.md).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use embedeval::data::dataset::cifar_records;
use embedeval::data::dataset::Format as DataFormat;
use embedeval::data::npy::NpyArray;
use embedeval::data::Dataset;
use embedeval::encoder::{preprocess, ImageBatch, InputData, Runtime, RuntimeOptions};
use embedeval::registry::card::CardFile;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/resnet2048")
}

fn reference(name: &str) -> NpyArray {
    NpyArray::read(&fixture().join("reference").join(name)).unwrap()
}

/// Runs the CLI against `server`; fails the test with its stderr when it fails.
fn cli(server: &TestServer, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(args)
        .env("EMBEDEVAL_SERVER", format!("{}", server.addr))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Rows of `got` against `want` ([n, d] each): the smallest cosine
/// similarity and the largest difference relative to the row's norm.
fn agreement(got: &[f32], want: &[f32], d: usize) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let mut worst_cos = 1f64;
    let mut worst_rel = 0f64;
    for (g, w) in got.chunks(d).zip(want.chunks(d)) {
        let dot: f64 = g.iter().zip(w).map(|(a, b)| *a as f64 * *b as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let diff: f64 = g
            .iter()
            .zip(w)
            .map(|(a, b)| ((*a - *b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        worst_cos = worst_cos.min(dot / (norm(g) * norm(w)));
        worst_rel = worst_rel.max(diff / norm(w));
    }
    (worst_cos, worst_rel)
}

/// The folder's images, shorter side resized and centre-cropped to 40 × 40,
/// against Pillow's: the JPEG decoders and the resize arithmetic differ in
/// rounding only.
#[test]
fn mixed_size_images_are_resized_and_cropped_like_pillow() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture().join("pets"), dir.path());
    std::fs::write(
        dir.path().join("dataset.toml"),
        "format = \"image-folder\"\nimage_size = 40\n",
    )
    .unwrap();
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.summary.image_shape, [40, 40, 3]);
    let val = dataset.load_split("val").unwrap();
    assert_eq!(val.labels, reference("val_labels.npy").to_i64().unwrap());
    let want = reference("val_pixels.npy").to_u8().unwrap();
    assert_eq!(val.pixels.len(), want.len());
    let diffs: Vec<i32> = val
        .pixels
        .iter()
        .zip(&want)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .collect();
    let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
    let max = *diffs.iter().max().unwrap();
    assert!(mean < 1.0 && max <= 12, "mean {mean}, max {max}");
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// CIFAR-10 batches of random images: 5 × 100 training records, 600 test.
fn cifar_folder(dir: &Path) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut batch = |records: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(records * 3073);
        for i in 0..records {
            out.push((i % 10) as u8);
            out.extend((0..3072).map(|_| next() as u8));
        }
        out
    };
    for i in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), batch(100)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), batch(600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onnx_file_and_a_folder_of_images_to_a_report_in_three_commands() {
    let server = common::zoo_server().await;
    let onnx = fixture().join("model.onnx");
    let onnx = onnx.to_str().unwrap();
    let pets = fixture().join("pets");
    let work = tempfile::tempdir().unwrap();

    // 1. The folder, format told from its files, images brought to 40 × 40.
    let (out, _) = cli(
        &server,
        &[
            "datasets",
            "add",
            "pets",
            pets.to_str().unwrap(),
            "--image-size",
            "40",
            "--json",
        ],
    );
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["format"], "image-folder");
    assert_eq!(info["image_shape"], serde_json::json!(["40", "40", "3"]));
    assert_eq!(info["image_size"], 40);
    assert_eq!(info["crop_fraction"], 0.875);
    assert_eq!(info["num_classes"], 3);

    // 2. The ONNX file, evaluated with no card: registered by content;
    // val is evaluated as there is no test split, and the model's 32 × 32
    // input is reached by the bilinear resize.
    let (out, err) = cli(
        &server,
        &[
            "eval",
            onnx,
            "--loss",
            "infonce",
            "--tau",
            "0.2",
            "--preset",
            "imagenet",
            "--dataset",
            "pets",
            "--knn-k",
            "5",
            "--format",
            "json",
        ],
    );
    assert!(
        err.contains("registered") && err.contains("read off the graph"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["status"], "COMPLETED", "{report}");
    assert_eq!(report["test_split"], "val");
    assert_eq!(report["train_split"], "train");
    assert_eq!(report["num_test"], "12");
    assert_eq!(report["embedding_dim"], 128);
    assert_eq!(report["preprocessing"]["resize"], "bilinear");
    assert_eq!(
        report["preprocessing"]["mean"],
        serde_json::json!([0.485, 0.456, 0.406])
    );
    let name = report["model"].as_str().unwrap().to_string();
    assert!(name.starts_with("onnx-"), "{name}");
    assert!(report["linear"]["feature_output"] == "features", "{report}");

    // 3. Its embeddings and its 2048-d features, asking by file again: the
    // same model, not a second registration.
    for (output, want, dim) in [
        ("embedding", "val_embedding.npy", 128),
        ("features", "val_features.npy", 2048),
    ] {
        let npy = work.path().join(format!("{output}.npy"));
        let (_, err) = cli(
            &server,
            &[
                "embed",
                onnx,
                "--dataset",
                "pets",
                "--split",
                "val",
                "--output",
                output,
                "-o",
                npy.to_str().unwrap(),
            ],
        );
        assert!(err.contains(&format!("is model {name}")), "{err}");
        let got = NpyArray::read(&npy).unwrap();
        assert_eq!(got.shape, vec![12, dim]);
        let (cos, rel) = agreement(
            &got.to_f32().unwrap(),
            &reference(want).to_f32().unwrap(),
            dim,
        );
        assert!(cos > 0.999 && rel < 0.05, "{output}: cos {cos}, rel {rel}");
    }

    // Without --split, embed takes the dataset's test split: here val.
    let npy = work.path().join("default.npy");
    cli(
        &server,
        &[
            "embed",
            &name,
            "--dataset",
            "pets",
            "-o",
            npy.to_str().unwrap(),
        ],
    );
    assert_eq!(NpyArray::read(&npy).unwrap().shape, vec![12, 128]);

    // compare --all: the zoo's 1×8×8 models do not take 32×32 RGB images;
    // they are listed once with what each side has (and no advice to decode
    // the photos to one channel), and no report is stored for them.
    let (out, err) = cli(
        &server,
        &[
            "compare",
            "--all",
            "--dataset",
            "pets",
            "--knn-k",
            "5",
            "--skip-linear",
            "--format",
            "csv",
        ],
    );
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // The file and the CIFAR-10 zoo (3-channel, resized) are evaluated.
    assert_eq!(rows.len(), 1 + common::cifar_models(), "{out}");
    let row = rows
        .iter()
        .find(|r| r[column("model")] == *name)
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row[column("uniformity")].parse::<f64>().is_ok(), "{out}");
    for row in &rows {
        assert_eq!(&row[column("status")], "COMPLETED", "{out}");
    }
    assert!(
        err.contains("left out, they do not take the dataset's images"),
        "{err}"
    );
    assert!(
        err.contains("the model takes 8×8 images with 1 channel (trained on digits)"),
        "{err}"
    );
    assert!(
        !err.contains("--channels"),
        "no advice to decode photos to greyscale: {err}"
    );
    let (listed, _) = cli(&server, &["evaluations", "ls", "--limit", "200"]);
    assert!(!listed.contains("SKIPPED"), "{listed}");

    // A dataset's own default splits, given when it is added.
    let (out, _) = cli(
        &server,
        &[
            "datasets",
            "add",
            "pets-swapped",
            pets.to_str().unwrap(),
            "--image-size",
            "40",
            "--test-split",
            "train",
            "--train-split",
            "val",
            "--json",
        ],
    );
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["test_split"], "train");
    let (out, _) = cli(
        &server,
        &[
            "eval",
            &name,
            "--dataset",
            "pets-swapped",
            "--knn-k",
            "5",
            "--skip-linear",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["test_split"], "train");
    assert_eq!(report["train_split"], "val");
    assert_eq!(report["num_test"], "24");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cifar_batches_without_a_format_and_a_2048_d_embed_past_the_default_message_limit() {
    let server = common::zoo_server().await;
    let cifar = tempfile::tempdir().unwrap();
    cifar_folder(cifar.path());
    let (out, _) = cli(
        &server,
        &[
            "datasets",
            "add",
            "cifar",
            cifar.path().to_str().unwrap(),
            "--json",
        ],
    );
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["format"], "cifar10");
    let onnx = fixture().join("model.onnx");
    let (out, _) = cli(
        &server,
        &[
            "models",
            "add",
            "wide",
            "--onnx",
            onnx.to_str().unwrap(),
            "--loss",
            "simple",
        ],
    );
    let model: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(model["feature_output"], "features");
    assert_eq!(
        model["input"]["shape"],
        serde_json::json!(["-1", "3", "32", "32"])
    );

    // Inline images of another size are resized to the model's 32 × 32,
    // like the dataset's: the same pixels give the same rows either way.
    let mut client = embedeval::proto::embedding_service_client::EmbeddingServiceClient::new(
        server.channel.clone(),
    );
    let pixels: Vec<u8> = (0..3 * 40 * 40 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let mut stream = client
        .embed(embedeval::proto::EmbedRequest {
            model: "wide".into(),
            inputs: Some(embedeval::proto::Tensor {
                dtype: embedeval::proto::DataType::Uint8 as i32,
                shape: vec![3, 40, 40, 3],
                data: pixels.clone(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got = stream.message().await.unwrap().unwrap().embeddings.unwrap();
    assert_eq!(got.shape, vec![3, 128]);
    let bad = client
        .embed(embedeval::proto::EmbedRequest {
            model: "wide".into(),
            inputs: Some(embedeval::proto::Tensor {
                dtype: embedeval::proto::DataType::Uint8 as i32,
                shape: vec![1, 40, 40, 1],
                data: vec![0; 1600],
            }),
            ..Default::default()
        })
        .await;
    let err = match bad {
        Ok(s) => s.into_inner().message().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(
        err.code(),
        tonic::Code::InvalidArgument,
        "{}",
        err.message()
    );

    // 600 rows of 2048 float32 are 4.9 MB, over gRPC's 4 MiB default.
    let npy = cifar.path().join("features.npy");
    cli(
        &server,
        &[
            "embed",
            "wide",
            "--dataset",
            "cifar",
            "--output",
            "features",
            "-o",
            npy.to_str().unwrap(),
        ],
    );
    let got = NpyArray::read(&npy).unwrap();
    assert_eq!(got.shape, vec![600, 2048]);

    // The same rows computed here, without the server.
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let session = runtime.load(&onnx).unwrap();
    let card = CardFile::parse("[training]\nloss = \"simple\"\n")
        .unwrap()
        .resolve(session.inputs(), session.outputs())
        .unwrap();
    let bytes = std::fs::read(cifar.path().join("test_batch.bin")).unwrap();
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    cifar_records(&bytes, DataFormat::Cifar10, &mut pixels, &mut labels).unwrap();
    let mut want = Vec::new();
    for rows in pixels.chunks(100 * 3072) {
        let batch = ImageBatch {
            pixels: rows,
            n: rows.len() / 3072,
            h: 32,
            w: 32,
            c: 3,
        };
        let (shape, input) = preprocess(batch, &card.input.preprocessing()).unwrap();
        assert!(matches!(input, InputData::F32(_)));
        let out = session.run("images", &shape, input, &["features"]).unwrap();
        want.extend_from_slice(&out[0].data);
    }
    let (cos, rel) = agreement(&got.to_f32().unwrap(), &want, 2048);
    assert!(cos > 0.99999 && rel < 1e-4, "cos {cos}, rel {rel}");
    server.stop().await;
}
