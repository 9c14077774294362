//! The project's dataset format, `embedeval-npy`: `<name>/dataset.toml` (the
//! manifest) and per split a uint8 images `.npy` [n, H, W, C] and an int64
//! labels `.npy` [n].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::npy::NpyArray;
use crate::error::{Error, Result};

/// `dataset.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Dataset name.
    pub name: String,
    /// Always "embedeval-npy" for this format.
    pub format: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Where the data came from.
    #[serde(default)]
    pub source: String,
    /// Licence of the data.
    #[serde(default)]
    pub license: String,
    /// Number of classes.
    pub num_classes: u32,
    /// One image: height, width, channels.
    pub image_shape: [usize; 3],
    /// Largest pixel value, when it is not 255.
    #[serde(default)]
    pub pixel_max: Option<u32>,
    /// Seed of the train/test split.
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Split name to its files.
    pub splits: BTreeMap<String, SplitFiles>,
}

/// The files of one split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitFiles {
    /// Images `.npy`, relative to the dataset folder.
    pub images: String,
    /// Labels `.npy`, relative to the dataset folder.
    pub labels: String,
    /// Number of images.
    pub size: u64,
}

/// One split in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Pixels, [n, h, w, c] row-major.
    pub pixels: Vec<u8>,
    /// Number of images.
    pub n: usize,
    /// (height, width, channels).
    pub image_shape: [usize; 3],
    /// One label per image.
    pub labels: Vec<i64>,
}

impl Split {
    /// The first `rows` images as a batch for preprocessing.
    pub fn batch(&self, rows: std::ops::Range<usize>) -> crate::encoder::ImageBatch<'_> {
        let [h, w, c] = self.image_shape;
        let per = h * w * c;
        crate::encoder::ImageBatch {
            pixels: &self.pixels[rows.start * per..rows.end * per],
            n: rows.len(),
            h,
            w,
            c,
        }
    }
}

/// A dataset folder with its manifest.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder.
    pub dir: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
}

impl Dataset {
    /// Opens `dir/dataset.toml`.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("dataset.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| Error::InvalidArgument(format!("{}: {}", path.display(), e.message())))?;
        if manifest.format != "embedeval-npy" {
            return Err(Error::InvalidArgument(format!(
                "{}: format {:?} is not embedeval-npy",
                path.display(),
                manifest.format
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Loads a split; checks shapes, sizes and the manifest agree.
    pub fn load_split(&self, split: &str) -> Result<Split> {
        let files = self.manifest.splits.get(split).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "dataset {} has no split {split:?} (it has {:?})",
                self.manifest.name,
                self.manifest.splits.keys().collect::<Vec<_>>()
            ))
        })?;
        let images = NpyArray::read(&self.dir.join(&files.images))?;
        let labels = NpyArray::read(&self.dir.join(&files.labels))?.to_i64()?;
        let [h, w, c] = self.manifest.image_shape;
        if images.shape.len() != 4 || images.shape[1..] != [h, w, c] {
            return Err(Error::InvalidArgument(format!(
                "{}: images have shape {:?}, the manifest says [n, {h}, {w}, {c}]",
                files.images, images.shape
            )));
        }
        let n = images.shape[0];
        if labels.len() != n || n as u64 != files.size {
            return Err(Error::InvalidArgument(format!(
                "split {split}: {n} images, {} labels, manifest size {}",
                labels.len(),
                files.size
            )));
        }
        Ok(Split {
            pixels: images.to_u8()?,
            n,
            image_shape: [h, w, c],
            labels,
        })
    }
}
