//! What a new user meets on the command line, observation by observation:
//! no answer that is wrong and looks right, and every message saying what
//! it is about. Each test reproduces one observation (a corrected command
//! evaluated with the old card, a normalisation assumed in silence, unknown
//! losses, positives the user cannot see or change, `compare --all` on
//! one's own dataset, `watch` without a loss, misleading messages,
//! inconsistent names) and checks what the user sees now, through the
//! `embedeval` binary (the release binary when `EMBEDEVAL_BIN` names it, as
//! `make test` does) against a server of the bundled zoo.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{zoo, TestServer};

/// The `embedeval` binary: `EMBEDEVAL_BIN` (`make test` runs this file again
/// with the release binary), else the one cargo built for the tests.
fn bin() -> PathBuf {
    std::env::var_os("EMBEDEVAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_embedeval")))
}

/// Runs the CLI against `server` (stdout and stderr captured: not a terminal).
fn run(server: &TestServer, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .output()
        .unwrap()
}

/// Runs the CLI and fails the test with its stderr when it fails; (stdout, stderr).
fn ok(server: &TestServer, args: &[&str]) -> (String, String) {
    let out = run(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Runs the CLI expecting it to fail; its stderr.
fn fails(server: &TestServer, args: &[&str]) -> String {
    let out = run(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    stderr
}

/// A copy of a zoo model's ONNX file, as a user's own file.
fn own_onnx(dir: &Path, model: &str) -> PathBuf {
    let path = dir.join("fresh.onnx");
    std::fs::copy(zoo().join(model).join("model.onnx"), &path).unwrap();
    path
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Observations 1 and 2: a corrected command is evaluated with the card it
/// gives, and a forgotten preset is said out loud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_command_is_evaluated_with_its_own_card() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let onnx = own_onnx(work.path(), "infonce-t0.5");
    let onnx = onnx.to_str().unwrap();
    // The zoo's digits model takes float input with no normalisation in a
    // card of flags: the service assumes pixels / 255 and says so.
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            onnx,
            "--dataset",
            "digits",
            "--skip-linear",
            "--json",
        ];
        args.extend_from_slice(extra);
        ok(&server, &args)
    };
    let (out, err) = eval(&["--loss", "infonce", "--tau", "0.2"]);
    let first = json(&out);
    assert!(
        err.contains("warning: input normalisation not given: assumed pixels / 255"),
        "{err}"
    );
    assert!(err.contains("--preset"), "the flag that changes it: {err}");
    assert!(
        err.contains("input.preset filled by defaults") || err.contains("input.preset, "),
        "input.preset is a default, not read off the graph: {err}"
    );
    assert_eq!(first["preprocessing"]["preset"], "none", "{first}");
    assert!(
        first["warnings"][0]
            .as_str()
            .unwrap()
            .contains("normalisation not given"),
        "{first}"
    );
    assert_eq!(first["loss"], "infonce");
    assert_eq!(first["temperature"], 0.2);

    // The same file, the preset given: another model, registered and used.
    let (out, err) = eval(&["--loss", "infonce", "--tau", "0.2", "--preset", "none"]);
    let second = json(&out);
    assert_eq!(
        second["model"], first["model"],
        "--preset none is what was assumed: the same card"
    );
    assert!(err.contains("the same card"), "{err}");
    let (out, err) = eval(&["--loss", "hard_infonce", "--tau", "0.7", "--preset", "none"]);
    let third = json(&out);
    assert_ne!(third["model"], first["model"], "{err}");
    assert!(
        err.contains("another card")
            && err.contains("training.loss: infonce registered, hard_infonce given")
            && err.contains("training.temperature: 0.2 registered, 0.7 given"),
        "{err}"
    );
    assert_eq!(third["loss"], "hard_infonce");
    assert_eq!(third["temperature"], 0.7);
    assert_eq!(third["spec"]["penalty_temperature"], 0.7, "{third}");
    // Asking again with that card finds that model, not the first.
    let (out, _) = eval(&["--loss", "hard_infonce", "--tau", "0.7", "--preset", "none"]);
    assert_eq!(json(&out)["model"], third["model"]);
    // With no card flags, the file is the model registered first with it.
    let (_, err) = ok(
        &server,
        &[
            "embed",
            onnx,
            "--dataset",
            "digits",
            "-o",
            work.path().join("e.npy").to_str().unwrap(),
        ],
    );
    assert!(err.contains("its registered card"), "{err}");

    // --name registers under a chosen name; a name taken by another card is
    // refused with the keys that differ.
    let (out, _) = eval(&["--loss", "simple", "--name", "mine"]);
    assert_eq!(json(&out)["model"], "mine");
    let err = fails(
        &server,
        &[
            "eval",
            onnx,
            "--loss",
            "infonce",
            "--tau",
            "0.3",
            "--name",
            "mine",
            "--dataset",
            "digits",
        ],
    );
    assert!(
        err.contains("model mine exists with another card")
            && err.contains("training.loss: simple registered, infonce given")
            && err.contains("--replace"),
        "{err}"
    );
    // The server says the same to any client registering a taken name.
    let err = fails(
        &server,
        &[
            "models", "add", "mine", "--onnx", onnx, "--loss", "infonce", "--tau", "0.3",
        ],
    );
    assert!(
        err.contains("model already exists: mine with the same ONNX file and another card")
            && err.contains("training.loss: simple registered, infonce given"),
        "{err}"
    );
    // Renaming keeps the file and the card.
    let (out, _) = ok(&server, &["models", "rename", "mine", "mine-simple"]);
    assert!(out.contains("renamed model mine to mine-simple"), "{out}");
    let (out, _) = ok(&server, &["models", "show", "mine-simple"]);
    let info = json(&out);
    assert_eq!(info["training"]["loss"], "simple");
    assert_eq!(info["sha256"], first["model_sha256"]);
    let err = fails(&server, &["models", "show", "mine"]);
    assert!(err.contains("model not found: mine"), "{err}");
    let err = fails(&server, &["models", "rename", "infonce-t0.5", "renamed"]);
    assert!(
        err.contains("bundled") || err.contains("read-only"),
        "{err}"
    );
}

/// Appends ONNX `metadata_props` entries (ModelProto field 14) to a model
/// file: protobuf fields may follow in any order, so the result is the same
/// graph with the metadata.
fn with_metadata(onnx: &[u8], pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = onnx.to_vec();
    for (k, v) in pairs {
        let mut entry = vec![0x0a, k.len() as u8];
        entry.extend_from_slice(k.as_bytes());
        entry.extend([0x12, v.len() as u8]);
        entry.extend_from_slice(v.as_bytes());
        out.extend([0x72, entry.len() as u8]);
        out.extend(entry);
    }
    out
}

/// Observation 2, the other way out: the normalisation written in the ONNX
/// graph's metadata is used and no assumption is warned of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphs_metadata_says_the_normalisation() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(zoo().join("infonce-t0.5/model.onnx")).unwrap();
    let onnx = work.path().join("meta.onnx");
    std::fs::write(
        &onnx,
        with_metadata(
            &bytes,
            &[
                ("embedeval.scale", "0.0625"),
                ("embedeval.mean", "0"),
                ("embedeval.std", "1"),
            ],
        ),
    )
    .unwrap();
    let (out, err) = ok(
        &server,
        &[
            "eval",
            onnx.to_str().unwrap(),
            "--loss",
            "infonce",
            "--tau",
            "0.5",
            "--dataset",
            "digits",
            "--skip-linear",
            "--json",
        ],
    );
    assert!(!err.contains("normalisation not given"), "{err}");
    assert!(
        err.contains("input.normalisation"),
        "listed as read off the graph: {err}"
    );
    let report = json(&out);
    assert_eq!(report["preprocessing"]["scale"], 0.0625, "{report}");
    assert!(
        report
            .get("warnings")
            .is_none_or(|w| w.as_array().is_some_and(Vec::is_empty)),
        "{report}"
    );
    // The zoo's own card says the same: the same numbers.
    let (zoo_out, _) = ok(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--skip-linear",
            "--json",
        ],
    );
    assert_eq!(report["uniformity"], json(&zoo_out)["uniformity"]);
}

/// Observation 3: unknown losses are refused with the nearest known ones; a
/// loss of one's own is `other` with its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_losses_are_refused_with_the_nearest_names() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let onnx = own_onnx(work.path(), "infonce-t0.5");
    let onnx = onnx.to_str().unwrap();
    let add = |name: &str, loss: &[&str]| {
        let mut args = vec!["models", "add", name, "--onnx", onnx];
        args.extend_from_slice(loss);
        run(&server, &args)
    };
    let out = add("typo-loss", &["--loss", "infoNCE", "--tau", "0.2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("training.loss \"infoNCE\" is not a known loss")
            && err.contains("did you mean infonce"),
        "{err}"
    );
    let out = add("typo-loss", &["--loss", "simclr", "--tau", "0.2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("\"simclr\" is called nt_xent"), "{err}");
    assert!(err.contains("--loss other --loss-name simclr"), "{err}");
    let out = add("own-loss", &["--loss", "other"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs training.loss_name"));
    let out = add("own-loss", &["--loss", "other", "--loss-name", "barlow"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, _) = ok(&server, &["models", "ls", "--format", "csv"]);
    assert!(out.contains("own-loss,other (barlow),"), "{out}");
    assert!(!out.contains("typo-loss"), "{out}");
    // A card file is checked the same way.
    let card = work.path().join("card.toml");
    std::fs::write(&card, "[training]\nloss = \"ntxent\"\ntemperature = 0.5\n").unwrap();
    let err = fails(
        &server,
        &[
            "models",
            "add",
            "card-loss",
            "--onnx",
            onnx,
            "--card",
            card.to_str().unwrap(),
        ],
    );
    assert!(err.contains("is called nt_xent"), "{err}");
}

/// Observation 4: positives the user can see and change: the augmentation
/// is part of the request and echoed, and a split of the user's own views
/// can take its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positives_are_the_users_to_see_and_change() {
    let server = common::zoo_server().await;
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--skip-linear",
            "--skip-knn",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&ok(&server, &args).0)
    };
    let default = eval(&[]);
    let aug = &default["spec"]["augmentation"];
    assert_eq!(aug["recipe"], "simclr", "{default}");
    assert_eq!(aug["crop_scale_min"], 0.2);
    assert_eq!(aug["crop_scale_max"], 1.0);
    assert_eq!(aug["jitter"], 0.4);
    assert_eq!(aug["grayscale"], 0.2);
    assert_eq!(aug["flip"], 0.5);
    assert_eq!(aug["blur"], 0.0);
    let none = eval(&["--augmentation", "none"]);
    assert_eq!(none["spec"]["augmentation"]["recipe"], "none");
    let pos = none["positive_similarity"].as_f64().unwrap();
    assert!((pos - 1.0).abs() < 1e-5, "{none}");
    assert!(none["alignment"].as_f64().unwrap() < 1e-6, "{none}");
    assert!(default["positive_similarity"].as_f64().unwrap() < pos);

    // The user's own views: a copy of digits whose split `views` holds the
    // test images themselves gives what no augmentation gives.
    let work = tempfile::tempdir().unwrap();
    let own = work.path().join("digits-views");
    std::fs::create_dir(&own).unwrap();
    let src = zoo().join("../datasets/digits");
    for f in [
        "train_images.npy",
        "train_labels.npy",
        "test_images.npy",
        "test_labels.npy",
    ] {
        std::fs::copy(src.join(f), own.join(f)).unwrap();
    }
    std::fs::copy(src.join("test_images.npy"), own.join("views_images.npy")).unwrap();
    std::fs::copy(src.join("test_labels.npy"), own.join("views_labels.npy")).unwrap();
    let manifest = std::fs::read_to_string(src.join("dataset.toml"))
        .unwrap()
        .replace("name = \"digits\"", "name = \"digits-views\"")
        + "\n[splits.views]\nimages = \"views_images.npy\"\nlabels = \"views_labels.npy\"\nsize = 540\n";
    std::fs::write(own.join("dataset.toml"), manifest).unwrap();
    ok(
        &server,
        &["datasets", "add", "digits-views", own.to_str().unwrap()],
    );
    let (out, _) = ok(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits-views",
            "--positives-split",
            "views",
            "--skip-linear",
            "--skip-knn",
            "--json",
        ],
    );
    let views = json(&out);
    assert_eq!(views["spec"]["positives_split"], "views");
    let same =
        |key: &str| (views[key].as_f64().unwrap() - none[key].as_f64().unwrap()).abs() < 1e-6;
    assert!(
        same("positive_similarity") && same("alignment") && same("uniformity"),
        "{views}"
    );
    // A split that is not there, or of another length, is refused up front.
    let err = fails(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits-views",
            "--positives-split",
            "nope",
        ],
    );
    assert!(
        err.contains("spec.positives_split") && err.contains("no split \"nope\""),
        "{err}"
    );
    let err = fails(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits-views",
            "--positives-split",
            "train",
        ],
    );
    assert!(err.contains("row for row"), "{err}");
    let err = fails(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--augmentation",
            "simclar",
        ],
    );
    assert!(err.contains("did you mean simclr"), "{err}");
}

/// Observation 5: `compare --all` takes the models that fit, names the
/// duplicates, stores no SKIPPED rows, and evaluations can be removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_all_names_what_it_leaves_out_and_evaluations_can_be_removed() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let onnx = own_onnx(work.path(), "infonce-t0.5");
    let card = zoo().join("infonce-t0.5/model.toml");
    ok(
        &server,
        &[
            "models",
            "add",
            "copy-of-t0.5",
            "--onnx",
            onnx.to_str().unwrap(),
            "--card",
            card.to_str().unwrap(),
        ],
    );
    let (out, err) = ok(
        &server,
        &[
            "compare",
            "--all",
            "--dataset",
            "digits",
            "--skip-linear",
            "--format",
            "csv",
        ],
    );
    assert!(
        err.contains("left out copy-of-t0.5: the same ONNX file and preprocessing as infonce-t0.5")
            || err.contains(
                "left out infonce-t0.5: the same ONNX file and preprocessing as copy-of-t0.5"
            ),
        "{err}"
    );
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 14, "the 14 zoo models, the copy once:\n{out}");
    let (out, _) = ok(
        &server,
        &["evaluations", "ls", "--limit", "100", "--format", "csv"],
    );
    assert!(!out.contains("SKIPPED"), "{out}");
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let (out, _) = ok(&server, &["evaluations", "rm", &id]);
    assert!(out.contains(&format!("removed evaluation {id}")), "{out}");
    let err = fails(&server, &["evaluations", "show", &id]);
    assert!(err.contains("evaluation not found"), "{err}");
}

/// Observation 6: `watch` without a loss stops at once with the message;
/// `--once` fails when it evaluated nothing it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stops_at_start_on_its_own_configuration() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("ckpt");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        zoo().join("infonce-t0.5/model.onnx"),
        dir.join("epoch_001.onnx"),
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let started = std::time::Instant::now();
    let err = fails(&server, &["watch", d, "--run", "r", "--dataset", "digits"]);
    assert!(err.contains("the model needs its training loss"), "{err}");
    assert!(!err.contains("trying again"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = fails(
        &server,
        &[
            "watch",
            d,
            "--run",
            "r",
            "--dataset",
            "nope",
            "--loss",
            "simple",
        ],
    );
    assert!(err.contains("dataset not found: nope"), "{err}");
    let err = fails(
        &server,
        &[
            "watch",
            d,
            "--run",
            "r",
            "--dataset",
            "digits",
            "--loss",
            "infoNCE",
            "--tau",
            "0.2",
        ],
    );
    assert!(err.contains("did you mean infonce"), "{err}");
    // A file whose side-car card is refused: --once says so and fails.
    std::fs::write(dir.join("epoch_001.toml"), "[training]\nloss = \"wrong\"\n").unwrap();
    let err = fails(
        &server,
        &[
            "watch",
            d,
            "--run",
            "r",
            "--dataset",
            "digits",
            "--once",
            "--poll",
            "0.2",
        ],
    );
    assert!(
        err.contains("epoch_001.onnx") && err.contains("not a known loss"),
        "{err}"
    );
    assert!(err.contains("1 checkpoint file(s) not evaluated"), "{err}");
    std::fs::remove_file(dir.join("epoch_001.toml")).unwrap();
    let (out, _) = ok(
        &server,
        &[
            "watch",
            d,
            "--run",
            "r",
            "--dataset",
            "digits",
            "--once",
            "--poll",
            "0.2",
            "--loss",
            "simple",
            "--skip-linear",
        ],
    );
    assert!(
        out.lines().count() >= 2,
        "a header and the checkpoint's row: {out}"
    );
}

/// Observation 7: each kind of wrong model argument says what it is, and
/// Ctrl-C on an attached evaluation names it as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_say_what_they_are_about() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let eval = |model: &str| {
        fails(
            &server,
            &["eval", model, "--dataset", "digits", "--loss", "simple"],
        )
    };
    let err = eval("./nope/model.onnx");
    assert!(err.contains("./nope/model.onnx: no such file"), "{err}");
    let folder = work.path().join("j6");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(zoo().join("simple/model.onnx"), folder.join("model.onnx")).unwrap();
    let err = eval(folder.to_str().unwrap());
    assert!(
        err.contains("is a folder: give the ONNX file itself") && err.contains("model.onnx"),
        "{err}"
    );
    // A bare name that is a folder here, not a registered model.
    let out = Command::new(bin())
        .args(["eval", "j6", "--dataset", "digits"])
        .current_dir(work.path())
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("j6 is a folder"),
        "{err}"
    );
    let err = eval("infonce-t02");
    assert!(
        err.contains("model not found: infonce-t02; did you mean infonce-t0.2"),
        "{err}"
    );
    let err = fails(&server, &["eval", "infonce-t0.5", "--dataset", "digit"]);
    assert!(
        err.contains("dataset not found: digit; did you mean digits?"),
        "{err}"
    );
    // torch.save writes a zip archive.
    let pt = work.path().join("model.pt");
    std::fs::write(&pt, b"PK\x03\x04 a torch.save archive").unwrap();
    let err = eval(pt.to_str().unwrap());
    assert!(
        err.contains("not an ONNX file") && err.contains("torch.onnx.export"),
        "{err}"
    );
    // The server gives the same hint to any client.
    let err = fails(
        &server,
        &[
            "models",
            "add",
            "pt",
            "--onnx",
            pt.to_str().unwrap(),
            "--loss",
            "simple",
        ],
    );
    assert!(err.contains("torch.onnx.export"), "{err}");

    // Ctrl-C on an attached evaluation: a long sampled uniformity, stopped
    // once its progress shows.
    let mut child = Command::new(bin())
        .args([
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--uniformity-exact-max-rows",
            "1",
            "--uniformity-samples",
            "1000000000",
        ])
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no uniformity progress: {seen:?}"));
        let started = line.contains("uniformity");
        seen.push(line);
        if started {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = common::exit_within(&mut child, Duration::from_secs(20), "eval", || {
        format!("{seen:?}")
    });
    assert_ne!(code, Some(0));
    let rest: Vec<String> = rx.iter().collect();
    let text = rest.join("\n");
    let line = rest
        .iter()
        .find(|l| l.contains("interrupted: evaluation"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("cancelled"), "{line}");
    let id = line
        .split("evaluation ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let (out, _) = ok(&server, &["evaluations", "show", id]);
    assert_eq!(json(&out)["status"], "CANCELLED");
}

/// Observation 8: one name per metric in every format, colour only on
/// terminals, progress as lines when stderr is not a terminal, help without
/// contradictory defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_name_per_metric_and_output_fit_for_files() {
    let server = common::zoo_server().await;
    let (out, err) = ok(
        &server,
        &[
            "eval",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--format",
            "csv",
        ],
    );
    let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
    for column in [
        "temperature",
        "positive_similarity",
        "nn1_similarity",
        "penalty_entropy",
        "effective_rank",
        "knn_top1",
        "linear_top1",
    ] {
        assert!(header.contains(&column), "{column} in {header:?}");
    }
    for old in ["tau", "pos_sim", "erank", "nn1_sim", "entropy"] {
        assert!(!header.contains(&old), "{old} in {header:?}");
    }
    // The same names as the report's JSON fields.
    let (out_json, _) = ok(
        &server,
        &["eval", "infonce-t0.5", "--dataset", "digits", "--json"],
    );
    let report = json(&out_json);
    for column in ["temperature", "positive_similarity", "effective_rank"] {
        assert!(report.get(column).is_some(), "{column}");
    }
    // Progress as plain lines (stderr is a pipe here), with no escape codes.
    assert!(err.contains("embed_test"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let (out, _) = ok(&server, &["models", "ls", "--format", "csv"]);
    assert!(out.starts_with("name,loss,temperature,"), "{out}");

    let help = Command::new(bin())
        .args(["datasets", "add", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        !help.contains("[default: 0]") && !help.contains("[default: ]"),
        "{help}"
    );
    assert!(help.contains("[3]"), "{help}");

    // A server's log written to a file carries no colour codes.
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("server.log");
    let addr = common::free_addr();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--addr",
            &addr,
            "--models-dir",
            zoo().to_str().unwrap(),
            "--datasets-dir",
            zoo().join("../datasets").to_str().unwrap(),
            "--data-dir",
            work.path().join("data").to_str().unwrap(),
        ])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("models ready")
    {
        assert!(
            std::time::Instant::now() < until,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    common::sigterm(&child);
    common::exit_within(&mut child, Duration::from_secs(30), "server", || {
        String::new()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

/// Observation: JPEGs decoded otherwise than Pillow decodes them, so a JPEG
/// folder's embeddings were not a PyTorch pipeline's (cosine 0.9934 for a
/// ConvNeXt), and nothing said so. Now a folder of 32 × 32 JPEGs of every
/// kind (4:2:0, 4:2:2, 4:4:4, progressive, RGB, greyscale, CMYK) and the
/// same images as Pillow's `convert("RGB")` pixels, sent as arrays, give the
/// same embeddings, value for value (tests/data/jpeg/make.py made both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_folder_embeds_as_pillows_pixels_do() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg");
    let folder = fixtures.join("folder");
    let pillow = fixtures.join("pillow");
    ok(
        &server,
        &["datasets", "add", "jpegs", folder.to_str().unwrap()],
    );
    ok(
        &server,
        &["datasets", "add", "pillow-pixels", pillow.to_str().unwrap()],
    );
    let embed = |dataset: &str| {
        let npy = work.path().join(format!("{dataset}.npy"));
        ok(
            &server,
            &[
                "embed",
                "cifar10-infonce-t0.1",
                "--dataset",
                dataset,
                "--split",
                "test",
                "-o",
                npy.to_str().unwrap(),
            ],
        );
        embedeval::data::npy::NpyArray::read(&npy)
            .unwrap()
            .to_f32()
            .unwrap()
    };
    let (jpegs, pixels) = (embed("jpegs"), embed("pillow-pixels"));
    assert_eq!(jpegs.len(), pixels.len());
    assert!(!jpegs.is_empty());
    let worst = jpegs
        .iter()
        .zip(&pixels)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert_eq!(
        worst, 0.0,
        "the JPEG folder's embeddings differ from those of Pillow's pixels by up to {worst}"
    );
}
