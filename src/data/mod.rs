//! Datasets: the project's own format (`datasets/<name>/dataset.toml` plus
//! `.npy` images and labels per split) and the `.npy` codec it rests on.

pub mod dataset;
pub mod npy;

pub use dataset::{Dataset, Manifest, Split};
