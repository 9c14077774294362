//! Entry points for the fuzzers (`fuzz/`, run by `bench/fuzz`) and for the
//! regression cases they leave behind (`fuzz/regressions/<target>/`, run by
//! `make test`): each feeds arbitrary bytes to one parser of untrusted input
//! and must return, never panic, whatever the bytes.

use crate::data::dataset::{cifar_records, decode_image_bytes, Format, Manifest};
use crate::data::npy::NpyArray;
use crate::encoder::{
    ElementType, InputDType, Layout, Preprocessing, Resize, TensorSpec, PREPROCESS_VERSION,
};
use crate::registry::card::CardFile;

/// A fuzz target: arbitrary bytes in, nothing out, never a panic.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the regression runner.
pub const TARGETS: [(&str, Target); 6] = [
    ("npy", npy),
    ("manifest", manifest),
    ("card", card),
    ("cifar", cifar),
    ("image", image),
    ("tensor", tensor),
];

/// A `.npy` file, then its values as every element type.
pub fn npy(data: &[u8]) {
    if let Ok(a) = NpyArray::parse(data, "fuzz") {
        let _ = a.to_u8();
        let _ = a.to_f32();
        let _ = a.to_i64();
    }
}

/// A `dataset.toml`.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::parse(text);
    }
}

/// A `model.toml`, completed against a ResNet-shaped graph (one float
/// image input, `embedding` and `features` outputs), then the
/// preprocessing it asks for.
pub fn card(data: &[u8]) {
    let spec = |name: &str, shape: &[i64]| TensorSpec {
        name: name.into(),
        dtype: Some(ElementType::Float32),
        shape: shape.to_vec(),
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = CardFile::parse(text) {
            let inputs = [spec("images", &[-1, 3, 32, 32])];
            let outputs = [spec("embedding", &[-1, 128]), spec("features", &[-1, 2048])];
            if let Ok(card) = file.resolve(&inputs, &outputs) {
                let _ = card.input.preprocessing().chw();
            }
        }
    }
}

/// A CIFAR-10 and a CIFAR-100 batch.
pub fn cifar(data: &[u8]) {
    for format in [Format::Cifar10, Format::Cifar100] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        let _ = cifar_records(data, format, &mut pixels, &mut labels);
    }
}

/// A PNG or JPEG expected to be 32 × 32, in one and in three channels.
pub fn image(data: &[u8]) {
    for channels in [1, 3] {
        let _ = decode_image_bytes(data, (32, 32), channels);
    }
}

/// A `Tensor` message sent inline to Embed, for a float32 NCHW model and a
/// uint8 NHWC one.
pub fn tensor(data: &[u8]) {
    use prost::Message;
    let Ok(tensor) = crate::proto::Tensor::decode(data) else {
        return;
    };
    let cards = [
        (InputDType::Float32, Layout::NCHW, vec![-1, 1, 8, 8]),
        (InputDType::Uint8, Layout::NHWC, vec![-1, 8, 8, 3]),
    ];
    for (dtype, layout, shape) in cards {
        let c = if layout == Layout::NCHW {
            shape[1]
        } else {
            shape[3]
        } as usize;
        let card = Preprocessing {
            input: "images".into(),
            dtype,
            layout,
            shape,
            scale: 1.0,
            mean: vec![0.0; c],
            std: vec![1.0; c],
            resize: Resize::Bilinear,
            version: PREPROCESS_VERSION,
        };
        let _ = crate::server::convert::decode_tensor(tensor.clone(), &card, "fuzz");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input the fuzzers kept (seeds and past crashes) still returns.
    #[test]
    fn fuzz_regression_cases_return() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let mut ran = 0;
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "no cases for {name}");
            for file in files {
                target(&std::fs::read(&file).unwrap());
                ran += 1;
            }
        }
        assert!(ran >= TARGETS.len());
    }
}
