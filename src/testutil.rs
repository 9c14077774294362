//! Test helpers shared by the unit tests: the reference vectors of
//! tests/data/reference (a copy of shared/reference).

use std::path::PathBuf;

use crate::data::npy::NpyArray;
use crate::metrics::Matrix;

/// The folder of the reference vectors.
pub fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference")
}

/// `<case>.<part>.npy`.
pub fn load(case: &str, part: &str) -> NpyArray {
    NpyArray::read(&reference_dir().join(format!("{case}.{part}.npy"))).unwrap()
}

/// `<case>.<part>.npy` as a matrix.
pub fn matrix(case: &str, part: &str) -> Matrix {
    let arr = load(case, part);
    Matrix::new(arr.to_f32().unwrap(), arr.shape[1]).unwrap()
}

/// expected.json.
pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(reference_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}
