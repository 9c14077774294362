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
        "map_at_r",
        "r_precision",
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

// ---------------------------------------------------------------------------
// The second round of a new user's observations: nothing ignored in silence.
// ---------------------------------------------------------------------------

/// A registered model named with card flags: flags equal to its card are
/// fine; any other is refused, naming each differing key and the two ways
/// forward, before anything is evaluated or uploaded. Unknown names are
/// refused before any upload, with "did you mean"; a temperature left out is
/// "not given".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_flags_on_a_registered_name_are_never_ignored() {
    let server = common::zoo_server().await;
    let quick = ["--skip-linear", "--skip-knn", "--skip-per-class"];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        let mut all = vec!["eval", "infonce-t0.5", "--dataset", "digits"];
        all.extend_from_slice(args);
        all.extend_from_slice(&quick);
        all
    };
    let err = fails(&server, &with(&["--tau", "0.9", "--preset", "imagenet"]));
    assert!(
        err.contains("training.temperature: 0.5 registered, 0.9 given")
            && err.contains("input.preset: scale, mean and std registered, imagenet given"),
        "{err}"
    );
    assert!(
        err.contains("embedeval models add infonce-t0.5 --onnx")
            && err.contains("--replace")
            && err.contains("give the ONNX file's path"),
        "{err}"
    );
    // A loss given under another name: refused with the name it has here.
    let err = fails(&server, &with(&["--loss", "simclr"]));
    assert!(err.contains("\"simclr\" is called nt_xent"), "{err}");
    let err = fails(&server, &with(&["--loss", "nt_xent"]));
    assert!(
        err.contains("training.loss: infonce registered, nt_xent given"),
        "{err}"
    );
    // Flags that agree with the card, and evaluation tags, are fine.
    ok(
        &server,
        &with(&["--loss", "infonce", "--tau", "0.5", "--tag", "sweep=a"]),
    );

    // A file with a preset of no such name: refused before any upload.
    let work = tempfile::tempdir().unwrap();
    let onnx = own_onnx(work.path(), "infonce-t0.5");
    let onnx = onnx.to_str().unwrap();
    let out = run(
        &server,
        &[
            "eval",
            onnx,
            "--dataset",
            "digits",
            "--loss",
            "infonce",
            "--tau",
            "0.5",
            "--preset",
            "cifar",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("input.preset \"cifar\" is not one of imagenet, cifar10, cifar100, none")
            && err.contains("did you mean cifar10"),
        "{err}"
    );
    assert!(
        !err.contains("registering") && !err.contains("upload"),
        "nothing is uploaded: {err}"
    );
    // The same file with a loss and no τ: "not given", not 0.
    let err = fails(
        &server,
        &[
            "eval",
            onnx,
            "--dataset",
            "digits",
            "--name",
            "infonce-t0.5",
            "--loss",
            "infonce",
        ],
    );
    assert!(
        err.contains("training.temperature: 0.5 registered, not given"),
        "{err}"
    );
}

/// The CLI's own `watch` folder: checkpoints named as trainers name them.
fn checkpoint_folder(work: &Path) -> PathBuf {
    let dir = work.join("ckpt");
    std::fs::create_dir(&dir).unwrap();
    for (model, name) in [
        ("infonce-t0.5", "resnet18_last.onnx"),
        ("infonce-t0.2", "model_v2_epoch_10.onnx"),
        ("infonce-t0.1", "ckpt-0500.onnx"),
    ] {
        std::fs::copy(zoo().join(model).join("model.onnx"), dir.join(name)).unwrap();
    }
    dir
}

/// `watch` reads a step only where a step word introduces it; any other
/// file is left out with a line that says why; its table lines up under
/// its header; `runs show` then reasons about the real steps only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_takes_steps_from_step_words_only_and_lines_its_table_up() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let dir = checkpoint_folder(work.path());
    let d = dir.to_str().unwrap();
    // `watch --once` of the folder as run `run`, with `extra` flags.
    let watch = |run_name: &str, extra: &[&str]| {
        let mut args = vec![
            "watch",
            d,
            "--run",
            run_name,
            "--dataset",
            "digits",
            "--once",
            "--poll",
            "0.2",
            "--loss",
            "infonce",
            "--tau",
            "0.2",
            "--skip-linear",
        ];
        args.extend_from_slice(extra);
        run(&server, &args)
    };
    let out = watch("r18", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "a file was left out: {stderr}");
    assert!(
        stderr.contains("resnet18_last.onnx: no step: its name has none")
            && stderr.contains("resnet18_last.toml")
            && stderr.contains("--step-pattern"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 checkpoint file(s) not evaluated"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("warning"))
        .collect();
    assert_eq!(lines.len(), 3, "the header and steps 10 and 500: {stdout}");
    let steps: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(steps, ["10", "500"], "{stdout}");
    // Every column of every row starts where its header does.
    let starts = |line: &str| -> Vec<usize> {
        let b = line.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] != b' ' && (i == 0 || b[i - 1] == b' '))
            .collect()
    };
    let header = starts(lines[0]);
    for row in &lines[1..] {
        assert_eq!(starts(row), header[..starts(row).len()], "\n{stdout}");
    }
    // The run holds steps 10 and 500, nothing of "18".
    let (shown, _) = ok(&server, &["runs", "show", "r18", "--dataset", "digits"]);
    assert!(
        shown.contains("r18-step10") && shown.contains("r18-step500") && !shown.contains("step18"),
        "{shown}"
    );
    // With --step-pattern the last file has a step too.
    let out = watch("r18b", &["--step-pattern", r"(?:epoch_|ckpt-|resnet)(\d+)"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = stdout.lines().filter(|l| !l.starts_with("warning")).count();
    assert_eq!(rows, 4, "the header and steps 10, 18 and 500: {stdout}");
}

/// Ctrl-C ends `watch` with a line that says what it did (exit 130), and
/// a refused checkpoint is said as `eval` says it, not as a raw status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_speaks_as_eval_does_and_stops_cleanly_on_ctrl_c() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("ckpt");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("epoch_3.onnx"), b"not an onnx file at all").unwrap();
    let d = dir.to_str().unwrap();
    let err = fails(
        &server,
        &[
            "watch",
            d,
            "--run",
            "bad",
            "--dataset",
            "digits",
            "--once",
            "--poll",
            "0.2",
            "--loss",
            "simple",
        ],
    );
    assert!(
        err.contains("epoch_3.onnx: InvalidArgument: ") && !err.contains("code: '"),
        "{err}"
    );
    std::fs::remove_file(dir.join("epoch_3.onnx")).unwrap();
    let mut child = Command::new(bin())
        .args([
            "watch",
            d,
            "--run",
            "quiet",
            "--dataset",
            "digits",
            "--poll",
            "0.2",
            "--loss",
            "simple",
        ])
        .env("EMBEDEVAL_SERVER", format!("http://{}", server.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut header = String::new();
    BufReader::new(stdout).read_line(&mut header).unwrap();
    assert!(header.starts_with("step"), "{header}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = common::exit_within(&mut child, Duration::from_secs(20), "watch", String::new);
    assert_eq!(code, Some(130));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("interrupted: 0 checkpoint(s) of run quiet evaluated"),
        "{err}"
    );
}

/// Two models have no knee: a tie is broken by accuracy and named as a
/// tie-break, never as a reason. Comparisons are listed, shown with their
/// recommendation, and removed by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_models_get_no_knee_and_comparisons_are_first_class() {
    let server = common::zoo_server().await;
    let (out, err) = ok(
        &server,
        &[
            "compare",
            "infonce-t0.1",
            "infonce-t0.5",
            "--dataset",
            "digits",
            "--recommend",
        ],
    );
    let reason = out
        .lines()
        .find(|l| l.starts_with("recommended: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(!reason.contains("nearest of them"), "{reason}");
    assert!(
        reason.contains("no other model's 95% interval reaches it")
            || reason.contains(
                "Tie-break: the higher linear top-1 (no knee: the uniformity–tolerance front has"
            ),
        "{reason}"
    );
    // The recommendation is the one with the higher linear accuracy.
    let linear = |model: &str| -> f64 {
        let row = out
            .lines()
            .find(|l| l.starts_with(model))
            .unwrap_or_else(|| panic!("{out}"));
        let header = out.lines().next().unwrap();
        let col = header
            .split_whitespace()
            .position(|h| h == "linear_top1")
            .unwrap();
        row.split_whitespace().nth(col).unwrap().parse().unwrap()
    };
    let best = if linear("infonce-t0.1 ") >= linear("infonce-t0.5 ") {
        "τ = 0.1"
    } else {
        "τ = 0.5"
    };
    assert!(
        reason.starts_with(&format!("recommended: {best}:")),
        "{reason}\n{out}"
    );
    let id = err
        .lines()
        .find_map(|l| l.strip_prefix("comparison "))
        .map(|s| s.split_whitespace().next().unwrap().to_string());
    let (listed, _) = ok(&server, &["comparisons", "ls"]);
    let id = id.unwrap_or_else(|| {
        listed
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    });
    assert!(
        listed.lines().next().unwrap().contains("dataset_id")
            && listed.contains(&id)
            && listed.contains("infonce-t0.1 infonce-t0.5"),
        "{listed}"
    );
    let (shown, _) = ok(&server, &["comparisons", "show", &id, "--recommend"]);
    assert!(shown.contains(reason), "{shown}");
    // τ by its other name is the temperature axis; a typo is told.
    let work = tempfile::tempdir().unwrap();
    let figure = work.path().join("acc.svg");
    let figure = figure.to_str().unwrap();
    ok(
        &server,
        &[
            "plot", &id, "--kind", "accuracy", "-o", figure, "--x", "tau",
        ],
    );
    let err = fails(
        &server,
        &[
            "plot", &id, "--kind", "accuracy", "-o", figure, "--x", "sed",
        ],
    );
    assert!(err.contains("did you mean seed"), "{err}");
    let (removed, _) = ok(&server, &["comparisons", "rm", &id]);
    assert!(
        removed.contains(&format!("removed comparison {id}")),
        "{removed}"
    );
    let err = fails(&server, &["comparisons", "show", &id]);
    assert!(err.contains("NotFound: comparison not found"), "{err}");
    // The evaluations stay.
    let (evals, _) = ok(&server, &["evaluations", "ls", "--dataset", "digits"]);
    assert!(evals.contains("infonce-t0.1"), "{evals}");
}

/// Every `rm` names the nearest names of a typo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rm_says_did_you_mean() {
    let server = common::zoo_server().await;
    let err = fails(&server, &["models", "rm", "infonce-t05"]);
    assert!(err.contains("did you mean infonce-t0.5"), "{err}");
    let err = fails(&server, &["datasets", "rm", "digit"]);
    assert!(err.contains("did you mean digits"), "{err}");
}

/// Paths of fields down to a string (a string field, a repeated one, a map
/// with string keys or values), through singular and repeated messages of
/// the request, at most `depth` deep.
fn string_paths(
    desc: &prost_reflect::MessageDescriptor,
    depth: usize,
    prefix: &[prost_reflect::FieldDescriptor],
    out: &mut Vec<Vec<prost_reflect::FieldDescriptor>>,
) {
    use prost_reflect::Kind;
    for f in desc.fields() {
        let mut path = prefix.to_vec();
        path.push(f.clone());
        match f.kind() {
            Kind::String => out.push(path),
            Kind::Message(entry) if f.is_map() => {
                let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
                if matches!(k.kind(), Kind::String) || matches!(v.kind(), Kind::String) {
                    out.push(path);
                }
            }
            Kind::Message(m) if depth > 0 && !m.full_name().starts_with("google.protobuf") => {
                string_paths(&m, depth - 1, &path, out)
            }
            _ => {}
        }
    }
}

/// Sets the string at the end of `path` (every string of a map entry) to
/// `long`, making the messages on the way.
fn set_long(
    msg: &mut prost_reflect::DynamicMessage,
    path: &[prost_reflect::FieldDescriptor],
    long: &str,
) {
    use prost_reflect::{DynamicMessage, Kind, MapKey, Value};
    let f = &path[0];
    let text = || Value::String(long.to_string());
    if path.len() == 1 {
        let value = if f.is_map() {
            let entry = f.kind().as_message().unwrap().clone();
            let v = entry.map_entry_value_field();
            let value = match v.kind() {
                Kind::String => text(),
                _ => Value::default_value_for_field(&v),
            };
            let key = match entry.map_entry_key_field().kind() {
                Kind::String => MapKey::String(long.to_string()),
                _ => MapKey::default_value(&entry.map_entry_key_field().kind()),
            };
            Value::Map([(key, value)].into_iter().collect())
        } else if f.is_list() {
            Value::List(vec![text()])
        } else {
            text()
        };
        msg.set_field(f, value);
        return;
    }
    let Kind::Message(m) = f.kind() else {
        unreachable!()
    };
    if f.is_list() {
        let mut child = DynamicMessage::new(m);
        set_long(&mut child, &path[1..], long);
        msg.set_field(f, Value::List(vec![Value::Message(child)]));
    } else {
        let child = msg.get_field_mut(f).as_message_mut().unwrap();
        set_long(child, &path[1..], long);
    }
}

/// Sends one request message (raw bytes) to `path` as its RPC takes it, and
/// reads the answer to its end.
async fn send_raw(
    channel: tonic::transport::Channel,
    method: &prost_reflect::MethodDescriptor,
    body: Vec<u8>,
) -> Result<(), tonic::Status> {
    use common::RawCodec;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(format!(
        "/{}/{}",
        method.parent_service().full_name(),
        method.name()
    ))
    .unwrap();
    let one = || tokio_stream::iter(vec![body.clone()]);
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => grpc
            .unary(tonic::Request::new(body.clone()), path, RawCodec)
            .await
            .map(drop),
        (true, false) => grpc
            .client_streaming(tonic::Request::new(one()), path, RawCodec)
            .await
            .map(drop),
        (false, true) => {
            let mut s = grpc
                .server_streaming(tonic::Request::new(body.clone()), path, RawCodec)
                .await?
                .into_inner();
            while s.message().await?.is_some() {}
            Ok(())
        }
        (true, true) => {
            let mut s = grpc
                .streaming(tonic::Request::new(one()), path, RawCodec)
                .await?
                .into_inner();
            while s.message().await?.is_some() {}
            Ok(())
        }
    }
}

/// A 100,000-character value in every string field of every request of
/// every RPC gets the code of the client's mistake (never
/// RESOURCE_EXHAUSTED for a status too large to send, never INTERNAL), a
/// message that echoes at most 120 characters of it, and the server keeps
/// serving. Requests that need a model and a dataset to reach their deeper
/// fields start from valid ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_value_in_any_string_field_gets_its_own_code() {
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};
    let server = common::zoo_server().await;
    let pool = DescriptorPool::decode(embedeval::proto::FILE_DESCRIPTOR_SET).unwrap();
    let skips = r#"{"skip_uniformity": true, "skip_alignment": true, "skip_tolerance": true,
        "skip_nearest_negatives": true, "skip_penalty": true, "skip_effective_rank": true,
        "skip_knn": true, "skip_linear": true, "skip_per_class": true}"#;
    let bases: Vec<(&str, String)> = vec![
        (
            "Evaluate",
            format!(r#"{{"model": "infonce-t0.5", "dataset": "digits", "spec": {skips}}}"#),
        ),
        (
            "Compare",
            format!(r#"{{"models": ["infonce-t0.5"], "dataset": "digits", "spec": {skips}}}"#),
        ),
        (
            "Embed",
            r#"{"model": "infonce-t0.5", "dataset": "digits", "split": "test"}"#.into(),
        ),
    ];
    let long = "x".repeat(100_000);
    let too_much = "x".repeat(121);
    let mut wrong = Vec::new();
    let mut tried = 0;
    for service in pool.services() {
        for method in service.methods() {
            let input = method.input();
            let mut paths = Vec::new();
            string_paths(&input, 3, &[], &mut paths);
            for path in paths {
                let mut msg = match bases.iter().find(|(m, _)| *m == method.name()) {
                    Some((_, json)) => {
                        let mut de = serde_json::Deserializer::from_str(json);
                        DynamicMessage::deserialize(input.clone(), &mut de).unwrap()
                    }
                    None => DynamicMessage::new(input.clone()),
                };
                set_long(&mut msg, &path, &long);
                let field = path
                    .iter()
                    .map(|f| f.name().to_string())
                    .collect::<Vec<_>>()
                    .join(".");
                let what = format!("{}.{field}", method.full_name());
                tried += 1;
                let answer = tokio::time::timeout(
                    Duration::from_secs(120),
                    send_raw(server.channel.clone(), &method, msg.encode_to_vec()),
                )
                .await
                .unwrap_or_else(|_| panic!("{what}: no answer in 120 s"));
                let Err(status) = answer else { continue };
                let code_ok = matches!(
                    status.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::AlreadyExists
                );
                let m = status.message();
                if !code_ok || m.contains(&too_much) || m.len() > 4000 {
                    wrong.push(format!(
                        "{what}: {:?} ({} bytes) {}",
                        status.code(),
                        m.len(),
                        m.chars().take(300).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(tried > 50, "only {tried} string fields found");
    assert!(
        wrong.is_empty(),
        "{} of {tried}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Still serving.
    assert_eq!(
        server.health().await,
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let (listed, _) = ok(&server, &["models", "ls"]);
    assert!(listed.contains("infonce-t0.5"));
}

/// An image folder of `side` × `side` RGB PNGs, two classes, train and test.
fn png_folder(root: &Path, side: u32) -> PathBuf {
    let dir = root.join(format!("pngs{side}"));
    for split in ["train", "test"] {
        for (c, class) in ["cats", "dogs"].iter().enumerate() {
            let folder = dir.join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..12u32 {
                let img = image::RgbImage::from_fn(side, side, |x, y| {
                    let v = (x * 37 + y * 11 + i * 5 + c as u32 * 90) % 256;
                    image::Rgb([v as u8, (255 - v) as u8, (c as u32 * 200) as u8])
                });
                img.save(folder.join(format!("{i:02}.png"))).unwrap();
            }
        }
    }
    dir
}

/// A model evaluated on images of another size says so: the factor in the
/// report's preprocessing, and a warning (report, CLI) when a side is
/// enlarged more than 2×.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resizing_far_is_said() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let dir = png_folder(work.path(), 8);
    let (summary, _) = ok(&server, &["datasets", "add", "tiny", dir.to_str().unwrap()]);
    assert!(
        summary.starts_with("registered dataset tiny (id ")
            && summary.contains("splits: test 24 rows, train 24 rows")
            && summary.contains("classes: 2 (cats, dogs)")
            && summary.contains("image shape: 8 × 8 × 3"),
        "{summary}"
    );
    let (out, err) = ok(
        &server,
        &[
            "eval",
            "cifar10-infonce-t0.5",
            "--dataset",
            "tiny",
            "--skip-linear",
            "--json",
        ],
    );
    let report = json(&out);
    let pre = &report["preprocessing"];
    assert_eq!(pre["image_height"], "8", "{pre}");
    assert_eq!(pre["resize_factor_height"], 4.0, "{pre}");
    assert_eq!(pre["resize_factor_width"], 4.0, "{pre}");
    let warning = "the model takes 32 × 32, the images are 8 × 8: each is enlarged 4×";
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with(warning)),
        "{}",
        report["warnings"]
    );
    assert!(err.contains(warning), "{err}");
    // At the model's size, nothing is said.
    let dir = png_folder(work.path(), 32);
    ok(&server, &["datasets", "add", "same", dir.to_str().unwrap()]);
    let (out, _) = ok(
        &server,
        &[
            "eval",
            "cifar10-infonce-t0.5",
            "--dataset",
            "same",
            "--skip-linear",
            "--json",
        ],
    );
    let report = json(&out);
    assert_eq!(report["preprocessing"]["resize_factor_height"], 0.0);
    assert!(!report["warnings"].to_string().contains("enlarged"));
}

/// A dataset name taken says the way forward; `--replace` swaps it and the
/// two versions are told apart by their content ids in every table; a
/// folder of mixed sizes is refused before anything is uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_versions_are_told_apart_and_mixed_sizes_refused_first() {
    let server = common::zoo_server().await;
    let work = tempfile::tempdir().unwrap();
    let first = png_folder(work.path(), 32);
    let (summary, _) = ok(
        &server,
        &["datasets", "add", "photos", first.to_str().unwrap()],
    );
    let id_of = |summary: &str| -> String {
        summary
            .split("(id ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_string()
    };
    let old_id = id_of(&summary);
    let eval = |server: &TestServer| {
        ok(
            server,
            &[
                "eval",
                "cifar10-infonce-t0.5",
                "--dataset",
                "photos",
                "--skip-linear",
            ],
        )
    };
    let (table, _) = eval(&server);
    assert!(
        table.lines().next().unwrap().contains("dataset_id"),
        "{table}"
    );
    assert!(table.contains(&old_id), "{table}");
    // Taken: the way forward is named.
    let second = png_folder(&work.path().join("v2"), 16);
    let err = fails(
        &server,
        &["datasets", "add", "photos", second.to_str().unwrap()],
    );
    assert!(
        err.contains("dataset photos exists") && err.contains("--replace"),
        "{err}"
    );
    let (summary, _) = ok(
        &server,
        &[
            "datasets",
            "add",
            "photos",
            second.to_str().unwrap(),
            "--replace",
        ],
    );
    let new_id = id_of(&summary);
    assert_ne!(new_id, old_id);
    let (table, _) = eval(&server);
    assert!(table.contains(&new_id), "{table}");
    let (listed, _) = ok(&server, &["evaluations", "ls", "--dataset", "photos"]);
    assert!(
        listed.contains(&new_id) && listed.contains(&old_id),
        "both versions, told apart: {listed}"
    );
    // Mixed sizes: refused from the files' headers, nothing uploaded.
    let mixed = png_folder(&work.path().join("mixed"), 24);
    let other = png_folder(&work.path().join("other"), 40);
    std::fs::rename(other.join("train"), mixed.join("val")).unwrap();
    let out = run(
        &server,
        &["datasets", "add", "mixed", mixed.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("the images are of 2 sizes: 48 of 24x24")
            && err.contains("24 of 40x40")
            && err.contains("nothing was uploaded")
            && err.contains("--image-size"),
        "{err}"
    );
    assert!(!err.contains("upload:"), "{err}");
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

/// The connection flags are every command's alike (`health` takes
/// `--token-file` too), `--server` shows as optional with its default, and
/// an upload's progress has units and a rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flags_are_alike_and_uploads_count_bytes() {
    let work = tempfile::tempdir().unwrap();
    let token = work.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let mut config = common::zoo_config();
    config.auth_token_file = Some(token.clone());
    let server = TestServer::start(config).await;
    server.wait_serving().await;
    let token = token.to_str().unwrap();
    let (out, _) = ok(&server, &["health", "--token-file", token]);
    assert_eq!(out.trim(), "SERVING");
    let err = fails(&server, &["models", "ls"]);
    assert!(err.contains("Unauthenticated"), "{err}");
    ok(&server, &["models", "ls", "--token-file", token]);
    let help = Command::new(bin())
        .args(["eval", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--server <URL>")
            && help.contains("optional")
            && help.contains("[default: http://127.0.0.1:50051]"),
        "{help}"
    );
    let usage = Command::new(bin()).args(["eval"]).output().unwrap();
    let usage = String::from_utf8_lossy(&usage.stderr);
    assert!(!usage.contains("--server"), "{usage}");
    // An upload: bytes, not a bare count.
    let onnx = own_onnx(work.path(), "infonce-t0.5");
    let (_, err) = ok(
        &server,
        &[
            "models",
            "add",
            "copy",
            "--onnx",
            onnx.to_str().unwrap(),
            "--loss",
            "infonce",
            "--tau",
            "0.5",
            "--token-file",
            token,
        ],
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("upload: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("KiB") && line.contains("/s)"), "{line}");
}
