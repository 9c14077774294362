//! The bundled zoo: every model in models/ loads, its card matches its ONNX
//! session, and ONNX Runtime reproduces the PyTorch golden outputs to 1e-4,
//! max abs: for the digits models on the first 64 test images of digits, for
//! the CIFAR-10 models on the first 64 CIFAR-10 test images, whose pixels
//! training/ stores (training/cifar10_golden_images.npy) so that the check
//! needs no CIFAR-10 at hand.

mod common;

use embedeval::data::npy::NpyArray;
use embedeval::data::Dataset;
use embedeval::encoder::{preprocess, ImageBatch, Runtime, RuntimeOptions};
use embedeval::registry::ModelRegistry;

#[test]
fn every_zoo_model_loads_and_reproduces_its_golden_outputs() {
    let runtime = Runtime::new(&RuntimeOptions::default()).unwrap();
    let registry = ModelRegistry::empty(common::zoo());
    registry.scan(&runtime).unwrap();
    assert!(registry.skipped().is_empty(), "{:?}", registry.skipped());
    let models = registry.list();
    assert!(models.len() >= 14, "the zoo has {} models", models.len());

    let digits = Dataset::open(&common::zoo().join("../datasets/digits")).unwrap();
    let test = digits.load_split("test").unwrap();
    let cifar =
        NpyArray::read(&common::zoo().join("../training/cifar10_golden_images.npy")).unwrap();
    assert_eq!(cifar.shape, vec![64, 32, 32, 3]);
    let cifar_pixels = cifar.to_u8().unwrap();
    for model in models {
        let card = &model.card;
        assert_eq!(
            card.onnx_sha256.as_deref(),
            Some(model.sha256.as_str()),
            "{}: the card records the ONNX sha256",
            model.name
        );
        let golden = card
            .golden
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no golden outputs", model.name));
        assert_eq!(golden.split, "test");
        let images = match card.training.dataset.as_str() {
            "digits" => test.batch(0..golden.rows),
            "cifar10" => ImageBatch {
                pixels: &cifar_pixels[..golden.rows * 32 * 32 * 3],
                n: golden.rows,
                h: 32,
                w: 32,
                c: 3,
            },
            other => panic!("{}: golden inputs of dataset {other:?}", model.name),
        };
        let (shape, input) = preprocess(images, &card.input.preprocessing()).unwrap();
        let mut outputs = vec![(card.outputs.embedding.clone(), golden.embedding.clone())];
        if let (Some(name), Some(file)) = (&card.outputs.features, &golden.features) {
            outputs.push((name.clone(), file.clone()));
        }
        let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
        let got = model
            .session
            .run(&card.input.name, &shape, input, &names)
            .unwrap();
        for ((name, file), out) in outputs.iter().zip(got) {
            let want = NpyArray::read(&model.dir.join(file)).unwrap();
            assert_eq!(
                want.shape,
                out.shape.iter().map(|&d| d as usize).collect::<Vec<_>>(),
                "{} {name}",
                model.name
            );
            let want = want.to_f32().unwrap();
            let max_abs = want
                .iter()
                .zip(&out.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                max_abs <= 1e-4,
                "{} {name}: max abs difference {max_abs} to PyTorch",
                model.name
            );
        }
    }
}

#[test]
fn the_digits_dataset_matches_its_manifest() {
    let digits = Dataset::open(&common::zoo().join("../datasets/digits")).unwrap();
    assert_eq!(digits.summary.num_classes, 10);
    let train = digits.load_split("train").unwrap();
    let test = digits.load_split("test").unwrap();
    assert_eq!(train.n + test.n, 1797);
    assert_eq!(test.n, 540);
    // Stratified: every class is in both splits, in about the 70/30 ratio.
    for class in 0..10 {
        let tr = train.labels.iter().filter(|&&l| l == class).count();
        let te = test.labels.iter().filter(|&&l| l == class).count();
        let ratio = te as f64 / (tr + te) as f64;
        assert!(
            (0.27..=0.33).contains(&ratio),
            "class {class}: {te}/{}",
            tr + te
        );
    }
    assert!(train.pixels.iter().chain(&test.pixels).all(|&p| p <= 16));
    assert!(digits.load_split("validation").is_err());
}
