//! The dataset formats, each behind one [`Reader`]: what a format's files
//! hold (its splits, classes and image shape, from sizes and headers) and
//! how a split is read into a [`Split`] (uint8 pixels [n, H, W, C], int64
//! labels). `Format::reader` is the one place a format picks its reader.

mod cifar;
mod folder;
mod npy;

use std::path::Path;

pub use cifar::{cifar_records, CIFAR10_CLASSES};
pub(crate) use folder::folder_fit;

use super::dataset::{Dataset, Format, Manifest, Split, Summary};
use crate::error::Result;

/// How a format reads its files.
pub(crate) trait Reader: Sync {
    /// The splits, classes and image shape of the dataset in `dir`
    /// (`manifest` as parsed), from the files' sizes and headers (no pixels
    /// decoded); INVALID_ARGUMENT for files the manifest does not match.
    fn summary(&self, dir: &Path, manifest: &Manifest) -> Result<Summary>;

    /// Reads split `split` (one the dataset has) of `dataset`.
    fn load(&self, dataset: &Dataset, split: &str) -> Result<Split>;
}

impl Format {
    /// The reader of this format's files.
    pub(crate) fn reader(self) -> &'static dyn Reader {
        match self {
            Format::Npy => &npy::Npy,
            Format::Cifar10 => &cifar::Cifar(Format::Cifar10),
            Format::Cifar100 => &cifar::Cifar(Format::Cifar100),
            Format::ImageFolder => &folder::Folder,
        }
    }
}
