//! The `embedeval` client subcommands against an in-process server.

mod common;

use std::process::Command;

use common::{zoo, TestServer};
use embedeval::data::npy::NpyArray;

fn cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_embedeval"))
        .args(args)
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .output()
        .unwrap()
}

/// The standard output of a command that must succeed.
fn succeeded(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_datasets_and_embed_from_the_command_line() {
    let server = common::zoo_server().await;

    let out = cli(&server, &["models", "ls"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("name"), "{text}");
    assert_eq!(
        text.lines().count(),
        20 + common::cifar_models(),
        "header, 14 digits models, the bundled run's 5 checkpoints and the CIFAR-10 zoo:\n{text}"
    );

    let out = cli(&server, &["datasets", "ls", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["datasets"][0]["name"], "digits");
    assert_eq!(json["datasets"][0]["num_classes"], 10);

    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("e.npy");
    let out = cli(
        &server,
        &[
            "embed",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--split",
            "test",
            "-o",
            npy.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = NpyArray::read(&npy).unwrap();
    assert_eq!(got.shape, vec![540, 128]);
    let want =
        NpyArray::read(&zoo().join("../tests/data/ort_python/infonce-t0.5.test.embedding.npy"))
            .unwrap();
    let diff = got
        .to_f32()
        .unwrap()
        .iter()
        .zip(want.to_f32().unwrap())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff <= 1e-5, "{diff}");
    let labels = NpyArray::read(&dir.path().join("e.labels.npy"))
        .unwrap()
        .to_i64()
        .unwrap();
    assert_eq!(labels.len(), 540);

    // compare: a table with a row per model, sorted by loss then tau, and
    // the figures (the format from the file name).
    let plot = dir.path().join("ut.svg");
    let penalty = dir.path().join("penalty.png");
    let out = cli(
        &server,
        &[
            "compare",
            "infonce-t1",
            "infonce-t0.2",
            "--dataset",
            "digits",
            "--skip-linear",
            "--plot",
            plot.to_str().unwrap(),
            "--figure",
            &format!("penalty={}", penalty.to_str().unwrap()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let models: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(models, ["infonce-t0.2", "infonce-t1"], "{text}");
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    let png = image::open(&penalty).expect("a PNG").to_rgb8();
    assert_eq!(png.dimensions(), (1280, 860));
    // The comparison's id, on stderr, draws it again without recomputing.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let id = stderr
        .split_whitespace()
        .skip_while(|w| *w != "comparison")
        .nth(1)
        .unwrap_or_else(|| panic!("no comparison id in {stderr}"))
        .to_string();
    let column = dir.path().join("accuracy");
    let out = cli(
        &server,
        &[
            "plot",
            &id,
            "--kind",
            "accuracy",
            "-o",
            column.to_str().unwrap(),
            "--plot-format",
            "png",
            "--plot-size",
            "column",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = image::load_from_memory_with_format(
        &std::fs::read(&column).unwrap(),
        image::ImageFormat::Png,
    )
    .expect("--plot-format png wins over the file name");
    assert_eq!((png.width(), png.height()), (1050, 840));

    // eval --json, then the report is listed.
    let out = cli(
        &server,
        &[
            "eval",
            "simple",
            "--dataset",
            "digits",
            "--skip-linear",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "COMPLETED");
    assert_eq!(report["spec"]["knn_k"], 200);
    // Derived from the proto: every field, the time in RFC 3339.
    assert!(report["histograms"]
        .as_array()
        .is_some_and(|h| !h.is_empty()));
    let created = report["created_at"].as_str().unwrap();
    assert!(
        created.len() >= 20 && created.as_bytes()[10] == b'T' && created.ends_with('Z'),
        "{created}"
    );
    let out = cli(&server, &["evaluations", "ls", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["evaluations"][0]["id"], report["id"]);

    let out = cli(&server, &["models", "show", "nope"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("NotFound") && err.contains("model not found: nope"),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_class_tables_and_the_recommendation_from_the_command_line() {
    let server = common::zoo_server().await;

    // eval --per-class: the report's CSV, then one row per class.
    let text = succeeded(cli(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--skip-linear",
            "--per-class",
            "--format",
            "csv",
        ],
    ));
    let header = embedeval::report::classes::PER_CLASS_COLUMNS.join(",");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 10, "{text}");
    for (digit, row) in rows.iter().enumerate() {
        assert_eq!(row[0], digit.to_string());
        let tolerance: f64 = row[2].parse().unwrap();
        let knn: f64 = row[3].parse().unwrap();
        assert!((-1.0..=1.0).contains(&tolerance) && (0.0..=1.0).contains(&knn));
        assert_eq!(row[4], "-", "the probe was skipped");
    }

    // compare --recommend: the loss's table with its marks and the reason.
    let models = ["infonce-t1", "infonce-t0.2", "infonce-t0.05"];
    let mut args = vec!["compare"];
    args.extend(models);
    args.extend(["--dataset", "digits", "--recommend"]);
    let text = succeeded(cli(&server, &args));
    assert!(text.contains("loss infonce:"), "{text}");
    assert!(text.contains(" knee"), "{text}");
    let reason = text
        .lines()
        .find_map(|l| l.strip_prefix("recommended: "))
        .unwrap_or_else(|| panic!("no recommendation in {text}"));
    assert!(reason.starts_with("τ = "), "{reason}");

    // The JSON carries the same recommendation, named by model.
    args.extend(["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&succeeded(cli(&server, &args))).unwrap();
    let rec = &json["recommendations"][0];
    assert_eq!(rec["loss"], "infonce");
    assert_eq!(rec["reason"], reason);
    let front = rec["front"].as_array().unwrap();
    assert!(!front.is_empty() && front.iter().all(|m| models.contains(&m.as_str().unwrap())));
    assert!(models.contains(&rec["recommended"].as_str().unwrap()));
}
