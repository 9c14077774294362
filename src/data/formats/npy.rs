//! `embedeval-npy`, the project's own format: per split a uint8 images
//! `.npy` [n, H, W, C] and an int64 labels `.npy` [n], listed in the
//! manifest with the number of classes and the image shape.

use std::path::Path;

use super::Reader;
use crate::data::dataset::{Dataset, Manifest, Split, Summary};
use crate::data::npy::NpyArray;
use crate::data::paths::inside;
use crate::error::{Error, Result};

/// The reader of `embedeval-npy` datasets.
#[derive(Debug)]
pub(super) struct Npy;

impl Reader for Npy {
    fn summary(&self, dir: &Path, m: &Manifest) -> Result<Summary> {
        let missing =
            |what: &str| Error::InvalidArgument(format!("an embedeval-npy manifest needs {what}"));
        if m.splits.is_empty() {
            return Err(missing("[splits.<name>] tables"));
        }
        for (name, files) in &m.splits {
            inside(dir, &files.images, &format!("splits.{name}.images"))?;
            inside(dir, &files.labels, &format!("splits.{name}.labels"))?;
        }
        let num_classes = m.num_classes.ok_or_else(|| missing("num_classes"))?;
        let class_names = m.class_names.clone().unwrap_or_default();
        if !class_names.is_empty() && class_names.len() != num_classes as usize {
            return Err(Error::InvalidArgument(format!(
                "class_names has {} names but num_classes is {num_classes}: give one name per class, by label",
                class_names.len()
            )));
        }
        Ok(Summary {
            splits: m.splits.iter().map(|(k, v)| (k.clone(), v.size)).collect(),
            num_classes,
            image_shape: m.image_shape.ok_or_else(|| missing("image_shape"))?,
            class_names,
        })
    }

    fn load(&self, ds: &Dataset, split: &str) -> Result<Split> {
        let files = &ds.manifest.splits[split];
        let images_path = inside(&ds.dir, &files.images, &format!("splits.{split}.images"))?;
        let labels_path = inside(&ds.dir, &files.labels, &format!("splits.{split}.labels"))?;
        let images = NpyArray::read_as(&images_path, &files.images)?;
        let labels = NpyArray::read_as(&labels_path, &files.labels)?.to_i64()?;
        let [h, w, c] = ds.summary.image_shape;
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
            pixels: images.to_u8()?.into(),
            n,
            image_shape: [h, w, c],
            labels,
        })
    }
}
