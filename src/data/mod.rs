//! Datasets: the project's own format (`datasets/<name>/dataset.toml` plus
//! `.npy` images and labels per split), the `.npy` codec it rests on, the
//! JPEG decoder that gives Pillow's pixels, and the seeded augmentations
//! that make positive views.

pub mod augment;
pub mod dataset;
mod formats;
mod image;
pub mod jpeg;
pub mod loaded;
pub mod npy;
pub mod paths;

pub use dataset::{Dataset, Manifest, Split};
pub use image::ImageBatch;
pub use loaded::{content_id, LoadedDataset};
