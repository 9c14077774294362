//! Benchmark of Embed (not a test): images/s through the Embed RPC over
//! gRPC on loopback, against the same ONNX Runtime library called directly
//! (same model, batch size, intra-op threads and preprocessing), in one run.
//! Target: the ratio gRPC / direct is at least 0.9.
//!
//! Run: `cargo bench --bench embed`.

use std::path::Path;
use std::time::{Duration, Instant};

use embedeval::data::npy::{NpyArray, NpyType};
use embedeval::data::Dataset;
use embedeval::encoder::{preprocess, Runtime, RuntimeOptions, WorkerOptions};
use embedeval::proto::embedding_service_client::EmbeddingServiceClient;
use embedeval::proto::EmbedRequest;
use embedeval::registry::card::CardFile;
use embedeval::ServeConfig;

const MODEL: &str = "infonce-t0.5";
const ROWS: usize = 40_960;
const BATCH: usize = 1024;
const THREADS: usize = 2;

/// A dataset of ROWS digits (the train split, repeated) in target/bench-data.
fn make_dataset(root: &Path) {
    let digits = Dataset::open(&root.join("../../datasets/digits")).unwrap();
    let train = digits.load_split("train").unwrap();
    let dir = root.join("datasets/many-digits");
    std::fs::create_dir_all(&dir).unwrap();
    let per = 64;
    let pixels: Vec<u8> = (0..ROWS)
        .flat_map(|i| train.pixels[(i % train.n) * per..(i % train.n + 1) * per].to_vec())
        .collect();
    let labels: Vec<i64> = (0..ROWS).map(|i| train.labels[i % train.n]).collect();
    NpyArray {
        dtype: NpyType::U8,
        shape: vec![ROWS, 8, 8, 1],
        data: pixels,
    }
    .write(&dir.join("train_images.npy"))
    .unwrap();
    NpyArray {
        dtype: NpyType::I64,
        shape: vec![ROWS],
        data: labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
    .write(&dir.join("train_labels.npy"))
    .unwrap();
    std::fs::write(
        dir.join("dataset.toml"),
        format!(
            "name = \"many-digits\"\nformat = \"embedeval-npy\"\nnum_classes = 10\nimage_shape = [8, 8, 1]\n\n[splits.train]\nimages = \"train_images.npy\"\nlabels = \"train_labels.npy\"\nsize = {ROWS}\n"
        ),
    )
    .unwrap();
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    embedeval::blas::use_processor_kernels();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("target/bench-data");
    make_dataset(&root);
    let models = root.join("models");
    let _ = std::fs::remove_dir_all(&models);
    std::fs::create_dir_all(models.join(MODEL)).unwrap();
    for f in ["model.onnx", "model.toml"] {
        std::fs::copy(
            manifest.join("models").join(MODEL).join(f),
            models.join(MODEL).join(f),
        )
        .unwrap();
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = ServeConfig::with_models_dir(&models);
    config.datasets_dir = root.join("datasets");
    config.intra_threads = THREADS;
    config.max_batch = BATCH;
    config.embed_chunk_rows = BATCH;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = rt.spawn(embedeval::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let channel = rt.block_on(async {
        loop {
            if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
            {
                break ch;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let embed = || {
        rt.block_on(async {
            loop {
                let req = EmbedRequest {
                    model: MODEL.into(),
                    dataset: "many-digits".into(),
                    split: "train".into(),
                    ..Default::default()
                };
                match EmbeddingServiceClient::new(channel.clone())
                    .embed(req)
                    .await
                {
                    Ok(stream) => {
                        let mut stream = stream.into_inner();
                        let mut rows = 0;
                        while let Some(m) = stream.message().await.unwrap() {
                            rows += m.labels.len();
                        }
                        assert_eq!(rows, ROWS);
                        return rows;
                    }
                    // Still loading: health says NOT_SERVING until ready.
                    Err(s) if s.code() == tonic::Code::Unavailable => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    Err(s) => panic!("{s}"),
                }
            }
        })
    };
    embed();
    let grpc = best(3, embed);

    // The same library, model, batch, threads and preprocessing, called directly.
    let runtime = Runtime::new(&RuntimeOptions {
        intra_threads: THREADS,
        worker: WorkerOptions::default(),
        ..Default::default()
    })
    .unwrap();
    let session = runtime
        .load(&models.join(MODEL).join("model.onnx"))
        .unwrap();
    let card =
        CardFile::parse(&std::fs::read_to_string(models.join(MODEL).join("model.toml")).unwrap())
            .unwrap()
            .resolve(session.inputs(), session.outputs())
            .unwrap();
    let split = Dataset::open(&root.join("datasets/many-digits"))
        .unwrap()
        .load_split("train")
        .unwrap();
    let preprocessing = card.input.preprocessing();
    let direct_run = || {
        let mut rows = 0;
        for start in (0..ROWS).step_by(BATCH) {
            let end = (start + BATCH).min(ROWS);
            let (shape, input) = preprocess(split.batch(start..end), &preprocessing).unwrap();
            let out = session
                .run("images", &shape, input, &["embedding"])
                .unwrap();
            rows += out[0].shape[0] as usize;
        }
        rows
    };
    direct_run();
    let direct = best(3, direct_run);

    let per_s = |d: Duration| ROWS as f64 / d.as_secs_f64();
    println!(
        "Embed over gRPC: {:.0} images/s; ONNX Runtime directly: {:.0} images/s; ratio {:.3} (target >= 0.9) [{ROWS} images, batch {BATCH}, {THREADS} intra-op threads, model {MODEL}]",
        per_s(grpc),
        per_s(direct),
        per_s(grpc) / per_s(direct)
    );
    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
}
