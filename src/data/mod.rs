//! Datasets: the project's own format (`datasets/<name>/dataset.toml` plus
//! `.npy` images and labels per split), the `.npy` codec it rests on, and
//! the seeded augmentations that make positive views.

pub mod augment;
pub mod dataset;
pub mod npy;
pub mod registry;

pub use dataset::{Dataset, Manifest, Split};
pub use registry::{DatasetRegistry, LoadedDataset};
