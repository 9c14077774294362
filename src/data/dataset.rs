//! A dataset: its `dataset.toml` ([`Manifest`]), its [`Format`], what it
//! holds ([`Summary`]) and its splits read ([`Split`]). Each format reads
//! its files behind one reader (`data::formats`); the `format` key says
//! how the images are stored:
//!
//! - `embedeval-npy` (the project's own): per split a uint8 images `.npy`
//!   [n, H, W, C] and an int64 labels `.npy` [n], listed in the manifest.
//! - `cifar10` / `cifar100`: the binary batches as distributed
//!   (`data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`; or
//!   `train.bin` and `test.bin` with coarse and fine labels, the fine used).
//! - `image-folder`: `<split>/<class>/<image>.png|.jpg`, classes in sorted
//!   order; every image of one size, or any sizes with `image_size`: each
//!   image's shorter side is resized (bilinear, antialiased) to
//!   `round(image_size / crop_fraction)` and the centre `image_size` square
//!   cropped, the ImageNet evaluation convention (resize 256, crop 224).
//!   JPEGs decode to Pillow's pixels ([`jpeg`]), PNGs through `image`.
//!
//! All formats load into the same [`Split`]: uint8 pixels [n, H, W, C] and
//! int64 labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::formats::{cifar_records, CIFAR10_CLASSES};
pub use super::image::{decode_fitted_bytes, decode_image_bytes};
use super::image::{image_files, subdirs};
use crate::data::paths::inside;
use crate::error::{Error, Result};

/// Largest height or width of a dataset's images.
pub const MAX_IMAGE_SIDE: usize = 8192;
/// Most channels of a dataset's images.
pub const MAX_CHANNELS: usize = 4;
/// Most images in one split.
pub const MAX_SPLIT_ROWS: u64 = 100_000_000;

/// `dataset.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Dataset name.
    #[serde(default)]
    pub name: String,
    /// "embedeval-npy" | "cifar10" | "cifar100" | "image-folder".
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
    /// Number of classes (embedeval-npy; derived for the other formats).
    #[serde(default)]
    pub num_classes: Option<u32>,
    /// One image: height, width, channels (embedeval-npy; derived otherwise).
    #[serde(default)]
    pub image_shape: Option<[usize; 3]>,
    /// Largest pixel value, when it is not 255.
    #[serde(default)]
    pub pixel_max: Option<u32>,
    /// Seed of the train/test split.
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Channels to decode image-folder images to (1 or 3; default 3).
    #[serde(default)]
    pub channels: Option<usize>,
    /// Side of the square every image-folder image is brought to (shorter
    /// side resized, centre crop); without it the images must share a size.
    #[serde(default)]
    pub image_size: Option<usize>,
    /// Fraction of the resized shorter side the centre crop keeps [0.875].
    #[serde(default)]
    pub crop_fraction: Option<f64>,
    /// The split evaluated when a request names none [test, else val].
    #[serde(default)]
    pub test_split: Option<String>,
    /// The split the kNN bank and the probe are fitted on when a request
    /// names none [train].
    #[serde(default)]
    pub train_split: Option<String>,
    /// Split name to its files (embedeval-npy).
    #[serde(default)]
    pub splits: BTreeMap<String, SplitFiles>,
    /// The class names by label (embedeval-npy; label i is the i-th), one
    /// per class; derived for the other formats.
    #[serde(default)]
    pub class_names: Option<Vec<String>>,
}

/// The files of one embedeval-npy split.
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
    /// Pixels, [n, h, w, c] row-major; shared, so that batches of it are
    /// views rather than copies.
    pub pixels: bytes::Bytes,
    /// Number of images.
    pub n: usize,
    /// (height, width, channels).
    pub image_shape: [usize; 3],
    /// One label per image.
    pub labels: Vec<i64>,
}

impl Split {
    /// Images `rows` as a batch for preprocessing.
    pub fn batch(&self, rows: std::ops::Range<usize>) -> super::ImageBatch<'_> {
        let [h, w, c] = self.image_shape;
        let per = h * w * c;
        super::ImageBatch {
            pixels: &self.pixels[rows.start * per..rows.end * per],
            n: rows.len(),
            h,
            w,
            c,
        }
    }
}

/// The storage formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The project's own `.npy` format.
    Npy,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary batches (fine labels).
    Cifar100,
    /// Folders of PNG/JPEG images by class.
    ImageFolder,
}

impl Format {
    /// Parses the manifest's `format`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "embedeval-npy" => Ok(Format::Npy),
            "cifar10" => Ok(Format::Cifar10),
            "cifar100" => Ok(Format::Cifar100),
            "image-folder" => Ok(Format::ImageFolder),
            other => Err(Error::InvalidArgument(format!(
                "unknown dataset format {other:?}: use embedeval-npy, cifar10, cifar100 or image-folder"
            ))),
        }
    }

    /// The manifest's name of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Npy => "embedeval-npy",
            Format::Cifar10 => "cifar10",
            Format::Cifar100 => "cifar100",
            Format::ImageFolder => "image-folder",
        }
    }

    /// The format a folder without a manifest is in, told from its files:
    /// CIFAR-10 batches (`data_batch_1.bin`, `test_batch.bin`), CIFAR-100
    /// (`train.bin`, `test.bin`), or `<split>/<class>/` folders of images.
    pub fn detect(dir: &Path) -> Option<Self> {
        let has = |name: &str| dir.join(name).is_file();
        if has("data_batch_1.bin") && has("test_batch.bin") {
            return Some(Format::Cifar10);
        }
        if has("train.bin") && has("test.bin") {
            return Some(Format::Cifar100);
        }
        let folders = subdirs(dir, dir).ok()?;
        let images = folders.iter().any(|split| {
            subdirs(dir, &dir.join(split)).is_ok_and(|classes| {
                classes.iter().any(|class| {
                    image_files(dir, &dir.join(split).join(class)).is_ok_and(|f| !f.is_empty())
                })
            })
        });
        images.then_some(Format::ImageFolder)
    }
}

impl Manifest {
    /// Parses `dataset.toml` text; checks its format and that the files it
    /// names are plain relative paths.
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("dataset.toml: {}", e.message())))?;
        Format::parse(&manifest.format)?;
        for (name, files) in &manifest.splits {
            crate::data::paths::check_relative(&files.images, &format!("splits.{name}.images"))?;
            crate::data::paths::check_relative(&files.labels, &format!("splits.{name}.labels"))?;
        }
        Ok(manifest)
    }
}

/// Default fraction of the resized shorter side kept by the centre crop
/// (224 / 256, the ImageNet evaluation convention).
pub const DEFAULT_CROP_FRACTION: f64 = 0.875;

/// How images of any size become `side` × `side`: the shorter side resized
/// to `round(side / crop_fraction)` (ties to even), the longer in
/// proportion, then the centre square cropped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Side of the square.
    pub side: usize,
    /// Fraction of the resized shorter side the crop keeps, in (0, 1].
    pub crop_fraction: f64,
}

impl Fit {
    /// (width, height) an image of `w` × `h` is resized to before the
    /// crop, or INVALID_ARGUMENT when a side would exceed
    /// [`MAX_IMAGE_SIDE`] (an extreme aspect ratio): the intermediate image
    /// is bounded like any other.
    pub fn checked_resize(&self, w: usize, h: usize) -> Result<(usize, usize)> {
        let (rw, rh) = self.resized(w, h);
        if rw > MAX_IMAGE_SIDE || rh > MAX_IMAGE_SIDE {
            return Err(Error::InvalidArgument(format!(
                "an image of {w}x{h} would be resized to {rw}x{rh} before its centre crop, \
                 over {MAX_IMAGE_SIDE} pixels a side: its aspect ratio is too extreme"
            )));
        }
        Ok((rw, rh))
    }

    /// (width, height) an image of `w` × `h` is resized to before the crop.
    pub fn resized(&self, w: usize, h: usize) -> (usize, usize) {
        let short = (self.side as f64 / self.crop_fraction)
            .round_ties_even()
            .max(self.side as f64);
        let scale = |long: usize, of: usize| {
            ((long as f64 * short / of as f64).round_ties_even() as usize).max(self.side)
        };
        if w <= h {
            (short as usize, scale(h, w))
        } else {
            (scale(w, h), short as usize)
        }
    }
}

/// What is known about a dataset without reading its pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Split name to size.
    pub splits: BTreeMap<String, u64>,
    /// Number of classes.
    pub num_classes: u32,
    /// (height, width, channels).
    pub image_shape: [usize; 3],
    /// The class names by label; empty where the dataset names none.
    pub class_names: Vec<String>,
}

impl Summary {
    /// Bytes of pixels once every split is decoded (None: beyond u64).
    pub fn decoded_bytes(&self) -> Option<u64> {
        let [h, w, c] = self.image_shape;
        let per = (h as u64).checked_mul(w as u64)?.checked_mul(c as u64)?;
        self.splits
            .values()
            .try_fold(0u64, |acc, &n| acc.checked_add(n.checked_mul(per)?))
    }

    /// Checks the image shape and the split sizes against the bounds, and
    /// that no split is empty.
    fn check(&self) -> Result<()> {
        let [h, w, c] = self.image_shape;
        if !(1..=MAX_IMAGE_SIDE).contains(&h)
            || !(1..=MAX_IMAGE_SIDE).contains(&w)
            || !(1..=MAX_CHANNELS).contains(&c)
        {
            return Err(Error::InvalidArgument(format!(
                "image_shape [{h}, {w}, {c}] is out of bounds: height and width 1 to {MAX_IMAGE_SIDE}, channels 1 to {MAX_CHANNELS}"
            )));
        }
        for (name, &n) in &self.splits {
            if n == 0 {
                return Err(Error::InvalidArgument(format!("split {name:?} is empty")));
            }
            if n > MAX_SPLIT_ROWS {
                return Err(Error::InvalidArgument(format!(
                    "split {name:?} has {n} images, more than the {MAX_SPLIT_ROWS} allowed"
                )));
            }
        }
        if self.decoded_bytes().is_none() {
            return Err(Error::InvalidArgument(
                "the dataset's decoded size overflows".into(),
            ));
        }
        Ok(())
    }
}

/// A dataset folder with its manifest.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The folder.
    pub dir: PathBuf,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The storage format.
    pub format: Format,
    /// Splits, classes and image shape.
    pub summary: Summary,
}

impl Dataset {
    /// Opens `dir/dataset.toml` and checks the files the format needs
    /// (sizes, not pixels).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = inside(dir, "dataset.toml", "the manifest")?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::InvalidArgument(format!("dataset.toml: {e}")))?;
        let manifest = Manifest::parse(&text)?;
        let format = Format::parse(&manifest.format)?;
        if format != Format::ImageFolder {
            let folder_only = [
                ("`channels`", manifest.channels.is_some()),
                ("`image_size`", manifest.image_size.is_some()),
                ("`crop_fraction`", manifest.crop_fraction.is_some()),
            ];
            if let Some((key, _)) = folder_only.iter().find(|(_, set)| *set) {
                return Err(Error::InvalidArgument(format!(
                    "{key} applies to image-folder datasets only; this one is {}",
                    format.as_str()
                )));
            }
        }
        let summary = format.reader().summary(dir, &manifest)?;
        summary.check()?;
        for (key, split) in [
            ("`test_split`", &manifest.test_split),
            ("`train_split`", &manifest.train_split),
        ] {
            if let Some(split) = split {
                if !summary.splits.contains_key(split) {
                    return Err(Error::InvalidArgument(format!(
                        "the dataset's default {key} is {split:?}, which it does not have (it has {:?})",
                        summary.splits.keys().collect::<Vec<_>>()
                    )));
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            format,
            summary,
        })
    }

    /// The image-folder's resize and crop, when its manifest has `image_size`.
    pub fn fit(&self) -> Option<Fit> {
        if self.format != Format::ImageFolder {
            return None;
        }
        super::formats::folder_fit(&self.manifest).ok().flatten()
    }

    /// Reads a split; checks shapes, sizes and the manifest agree.
    pub fn load_split(&self, split: &str) -> Result<Split> {
        if !self.summary.splits.contains_key(split) {
            return Err(Error::InvalidArgument(format!(
                "dataset {} has no split {split:?} (it has {:?})",
                self.manifest.name,
                self.summary.splits.keys().collect::<Vec<_>>()
            )));
        }
        self.format.reader().load(self, split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_manifest(dir: &Path, format: &str) {
        std::fs::write(dir.join("dataset.toml"), format!("format = \"{format}\"\n")).unwrap();
    }

    /// A CIFAR-10 record: label, then R, G and B planes.
    fn record(label: u8, r: u8, g: u8, b: u8) -> Vec<u8> {
        let mut out = vec![label];
        out.extend(vec![r; 1024]);
        out.extend(vec![g; 1024]);
        out.extend(vec![b; 1024]);
        out
    }

    #[test]
    fn an_extreme_aspect_ratio_or_crop_is_refused_before_any_pixel_is_decoded() {
        let fit = Fit {
            side: 224,
            crop_fraction: 0.875,
        };
        assert_eq!(fit.checked_resize(640, 480).unwrap(), (341, 256));
        let err = fit.checked_resize(8192, 1).unwrap_err().to_string();
        assert!(err.contains("aspect ratio is too extreme"), "{err}");
        // An 8192 × 1 PNG in a folder with image_size: refused at open.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/a")).unwrap();
        image::GrayImage::new(8192, 1)
            .save(dir.path().join("train/a/0.png"))
            .unwrap();
        std::fs::write(
            dir.path().join("dataset.toml"),
            "format = \"image-folder\"\nimage_size = 224\n",
        )
        .unwrap();
        let err = Dataset::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("0.png") && err.contains("too extreme"),
            "{err}"
        );
        for crop in ["0.001", "1.5"] {
            std::fs::write(
                dir.path().join("dataset.toml"),
                format!("format = \"image-folder\"\nimage_size = 224\ncrop_fraction = {crop}\n"),
            )
            .unwrap();
            let err = Dataset::open(dir.path()).unwrap_err().to_string();
            assert!(err.contains("`crop_fraction`"), "{crop}: {err}");
        }
    }

    #[test]
    fn folder_settings_on_other_formats_and_missing_default_splits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data_batch_1.bin"), record(1, 0, 0, 0)).unwrap();
        for i in 2..=5 {
            std::fs::write(
                dir.path().join(format!("data_batch_{i}.bin")),
                record(1, 0, 0, 0),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("test_batch.bin"), record(2, 0, 0, 0)).unwrap();
        let manifest = |extra: &str| {
            std::fs::write(
                dir.path().join("dataset.toml"),
                format!("format = \"cifar10\"\n{extra}"),
            )
            .unwrap();
            Dataset::open(dir.path())
        };
        manifest("").unwrap();
        let err = manifest("image_size = 224\n").unwrap_err().to_string();
        assert!(err.contains("image-folder datasets only"), "{err}");
        let err = manifest("test_split = \"val\"\n").unwrap_err().to_string();
        assert!(
            err.contains("default `test_split`") && err.contains("\"val\""),
            "{err}"
        );
        assert!(manifest("test_split = \"train\"\n").is_ok());
    }

    #[test]
    fn the_format_of_a_folder_without_a_manifest_is_told_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Format::detect(dir.path()), None);
        std::fs::write(dir.path().join("data_batch_1.bin"), b"").unwrap();
        std::fs::write(dir.path().join("test_batch.bin"), b"").unwrap();
        assert_eq!(Format::detect(dir.path()), Some(Format::Cifar10));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.bin"), b"").unwrap();
        std::fs::write(dir.path().join("test.bin"), b"").unwrap();
        assert_eq!(Format::detect(dir.path()), Some(Format::Cifar100));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("val/cat")).unwrap();
        std::fs::write(dir.path().join("val/cat/1.png"), b"").unwrap();
        assert_eq!(Format::detect(dir.path()), Some(Format::ImageFolder));
    }

    #[test]
    fn reads_cifar10_binary_batches() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "cifar10");
        for i in 1..=5 {
            let mut bytes = record(i, 10, 20, 30);
            bytes.extend(record(9, 1, 2, 3));
            std::fs::write(dir.path().join(format!("data_batch_{i}.bin")), bytes).unwrap();
        }
        std::fs::write(dir.path().join("test_batch.bin"), record(4, 7, 8, 9)).unwrap();
        let ds = Dataset::open(dir.path()).unwrap();
        assert_eq!(ds.summary.splits["train"], 10);
        assert_eq!(ds.summary.num_classes, 10);
        assert_eq!(ds.summary.class_names, CIFAR10_CLASSES);
        let train = ds.load_split("train").unwrap();
        assert_eq!(train.labels, vec![1, 9, 2, 9, 3, 9, 4, 9, 5, 9]);
        assert_eq!(
            &train.pixels[..6],
            &[10, 20, 30, 10, 20, 30],
            "planes become HWC"
        );
        let test = ds.load_split("test").unwrap();
        assert_eq!((test.n, test.image_shape), (1, [32, 32, 3]));
    }

    #[test]
    fn reads_cifar100_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "cifar100");
        let rec = |coarse: u8, fine: u8| {
            let mut r = vec![coarse, fine];
            r.extend(vec![5u8; 32 * 32 * 3]);
            r
        };
        std::fs::write(
            dir.path().join("train.bin"),
            [rec(1, 42), rec(2, 99)].concat(),
        )
        .unwrap();
        std::fs::write(dir.path().join("test.bin"), rec(3, 7)).unwrap();
        let ds = Dataset::open(dir.path()).unwrap();
        assert_eq!(ds.summary.num_classes, 100);
        // No names file: unnamed; with one, its lines by label.
        assert!(ds.summary.class_names.is_empty());
        let names: Vec<String> = (0..100).map(|i| format!("fine{i}")).collect();
        std::fs::write(dir.path().join("fine_label_names.txt"), names.join("\n")).unwrap();
        let ds = Dataset::open(dir.path()).unwrap();
        assert_eq!(ds.summary.class_names, names);
        assert_eq!(ds.load_split("train").unwrap().labels, vec![42, 99]);
    }

    #[test]
    fn a_truncated_cifar_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "cifar10");
        for i in 1..=5 {
            std::fs::write(
                dir.path().join(format!("data_batch_{i}.bin")),
                record(1, 0, 0, 0),
            )
            .unwrap();
        }
        let mut cut = record(1, 0, 0, 0);
        cut.truncate(3000);
        std::fs::write(dir.path().join("test_batch.bin"), cut).unwrap();
        let err = Dataset::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("truncated CIFAR file test_batch.bin") && err.contains("3000 bytes"),
            "{err}"
        );
    }

    #[test]
    fn reads_image_folders() {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), "image-folder");
        for (split, class, value) in [
            ("train", "cat", 10u8),
            ("train", "dog", 200),
            ("test", "dog", 201),
        ] {
            let d = dir.path().join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            let img = image::RgbImage::from_pixel(4, 3, image::Rgb([value, value / 2, 7]));
            img.save(d.join("a.png")).unwrap();
        }
        let ds = Dataset::open(dir.path()).unwrap();
        assert_eq!(ds.summary.image_shape, [3, 4, 3]);
        assert_eq!(ds.summary.num_classes, 2);
        assert_eq!(ds.summary.class_names, ["cat", "dog"]);
        let train = ds.load_split("train").unwrap();
        assert_eq!(train.labels, vec![0, 1]);
        assert_eq!(&train.pixels[..3], &[10, 5, 7]);
        let test = ds.load_split("test").unwrap();
        assert_eq!(test.labels, vec![1], "labels agree across splits");
        // An image of another size is named.
        let odd = dir.path().join("test/dog");
        image::RgbImage::new(5, 5).save(odd.join("b.png")).unwrap();
        let err = ds.load_split("test").unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("5x5"), "{err}");
    }
}
