//! `image-folder`: `<split>/<class>/<image>.png|.jpg`, classes in sorted
//! order; every image of one size, or any sizes with `image_size`: each
//! image's shorter side is resized (bilinear, antialiased) to
//! `round(image_size / crop_fraction)` and the centre `image_size` square
//! cropped, the ImageNet evaluation convention (resize 256, crop 224).
//! JPEGs decode to Pillow's pixels (`data::jpeg`), PNGs through `image`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Reader;
use crate::data::dataset::{
    Dataset, Fit, Manifest, Split, Summary, DEFAULT_CROP_FRACTION, MAX_IMAGE_SIDE,
};
use crate::data::image::{decode_fitted, decode_image, image_files, image_size, subdirs};
use crate::data::paths::shown;
use crate::error::{Error, Result};

/// The reader of image folders.
#[derive(Debug)]
pub(super) struct Folder;

impl Reader for Folder {
    fn summary(&self, dir: &Path, m: &Manifest) -> Result<Summary> {
        let channels = m.channels.unwrap_or(3);
        if channels != 1 && channels != 3 {
            return Err(Error::InvalidArgument(format!(
                "image-folder `channels` must be 1 or 3, got {channels}"
            )));
        }
        let fit = folder_fit(m)?;
        let mut classes = std::collections::BTreeSet::new();
        let mut splits = BTreeMap::new();
        // Every image's header is read (nothing decoded): all must be in
        // bounds, and of the size of the first unless they are fitted, so
        // the decoded size is known before decoding.
        let mut size_of_first: Option<(PathBuf, (u32, u32))> = None;
        for split in subdirs(dir, dir)? {
            let mut size = 0;
            for class in subdirs(dir, &dir.join(&split))? {
                let files = image_files(dir, &dir.join(&split).join(&class))?;
                size += files.len() as u64;
                for file in &files {
                    let dims = image_size(dir, file)?;
                    if dims.0 as usize > MAX_IMAGE_SIDE || dims.1 as usize > MAX_IMAGE_SIDE {
                        return Err(Error::InvalidArgument(format!(
                            "{} is {}x{}: images may be at most {MAX_IMAGE_SIDE} pixels a side",
                            shown(dir, file),
                            dims.0,
                            dims.1
                        )));
                    }
                    if let Some(fit) = fit {
                        fit.checked_resize(dims.0 as usize, dims.1 as usize)
                            .map_err(|e| {
                                Error::InvalidArgument(format!("{}: {e}", shown(dir, file)))
                            })?;
                    }
                    match &size_of_first {
                        None => size_of_first = Some((file.clone(), dims)),
                        Some((first, want)) if *want != dims && fit.is_none() => {
                            return Err(Error::InvalidArgument(format!(
                                "{} is {}x{} but {} is {}x{}: images of several sizes need an image_size to be brought to \
                                 (`datasets add --image-size 224`, or image_size = 224 in dataset.toml): each is then resized \
                                 (shorter side) and centre-cropped",
                                shown(dir, file),
                                dims.0,
                                dims.1,
                                shown(dir, first),
                                want.0,
                                want.1
                            )))
                        }
                        Some(_) => {}
                    }
                }
                classes.insert(class);
            }
            splits.insert(split, size);
        }
        let (_, (w, h)) = size_of_first.ok_or_else(|| {
            Error::InvalidArgument(
                "the image folder holds no <split>/<class>/*.png or *.jpg images".into(),
            )
        })?;
        let (h, w) = match fit {
            Some(fit) => (fit.side, fit.side),
            None => (h as usize, w as usize),
        };
        Ok(Summary {
            splits,
            num_classes: classes.len() as u32,
            image_shape: [h, w, channels],
            // Labels are the classes' places in this sorted set (load_folder).
            class_names: classes.into_iter().collect(),
        })
    }

    fn load(&self, ds: &Dataset, split: &str) -> Result<Split> {
        let [h, w, c] = ds.summary.image_shape;
        // Classes over every split, so labels agree between splits.
        let mut classes = std::collections::BTreeSet::new();
        for s in ds.summary.splits.keys() {
            classes.extend(subdirs(&ds.dir, &ds.dir.join(s))?);
        }
        let classes: Vec<String> = classes.into_iter().collect();
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for class in subdirs(&ds.dir, &ds.dir.join(split))? {
            let label = classes.binary_search(&class).map_err(|_| {
                Error::InvalidArgument(format!("class {class:?} appeared while reading"))
            })? as i64;
            for path in image_files(&ds.dir, &ds.dir.join(split).join(&class))? {
                let decoded = match ds.fit() {
                    Some(fit) => decode_fitted(&ds.dir, &path, fit, c)?,
                    None => decode_image(&ds.dir, &path, (w, h), c)?,
                };
                pixels.extend(decoded);
                labels.push(label);
            }
        }
        Ok(Split {
            n: labels.len(),
            pixels: pixels.into(),
            image_shape: [h, w, c],
            labels,
        })
    }
}

/// The `image_size` and `crop_fraction` of an image-folder manifest, checked.
pub(crate) fn folder_fit(m: &Manifest) -> Result<Option<Fit>> {
    let Some(side) = m.image_size else {
        if m.crop_fraction.is_some() {
            return Err(Error::InvalidArgument(
                "`crop_fraction` needs an `image_size`".into(),
            ));
        }
        return Ok(None);
    };
    if !(1..=MAX_IMAGE_SIDE).contains(&side) {
        return Err(Error::InvalidArgument(format!(
            "`image_size` must be 1 to {MAX_IMAGE_SIDE}, got {side}"
        )));
    }
    let crop_fraction = m.crop_fraction.unwrap_or(DEFAULT_CROP_FRACTION);
    if !(crop_fraction > 0.0 && crop_fraction <= 1.0)
        || side as f64 / crop_fraction > MAX_IMAGE_SIDE as f64
    {
        return Err(Error::InvalidArgument(format!(
            "`crop_fraction` must be in (0, 1] and keep image_size / crop_fraction \
             within {MAX_IMAGE_SIDE} pixels, got {crop_fraction} for image_size {side}"
        )));
    }
    Ok(Some(Fit {
        side,
        crop_fraction,
    }))
}
