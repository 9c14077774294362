//! `cifar10` and `cifar100`: the binary batches as distributed
//! (`data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`; or
//! `train.bin` and `test.bin` with coarse and fine labels, the fine used),
//! 32 × 32 RGB in channel planes.

use std::collections::BTreeMap;
use std::path::Path;

use super::Reader;
use crate::data::dataset::{Dataset, Format, Manifest, Split, Summary};
use crate::data::paths::inside;
use crate::error::{Error, Result};

/// The reader of CIFAR datasets (of this format: 10 or 100 classes).
#[derive(Debug)]
pub(super) struct Cifar(pub(super) Format);

impl Reader for Cifar {
    fn summary(&self, dir: &Path, _: &Manifest) -> Result<Summary> {
        let format = self.0;
        let record = cifar_label_bytes(format) + CIFAR_PIXELS;
        let mut splits = BTreeMap::new();
        for (split, files) in cifar_files(format) {
            let mut size = 0u64;
            for file in files {
                let path = inside(dir, file, "CIFAR file")?;
                let len = std::fs::metadata(&path)
                    .map_err(|e| {
                        Error::InvalidArgument(format!("CIFAR file {file} is missing: {e}"))
                    })?
                    .len();
                if len == 0 || len % record as u64 != 0 {
                    return Err(Error::InvalidArgument(format!(
                        "truncated CIFAR file {file}: {len} bytes is not a whole number of {record}-byte records"
                    )));
                }
                size += len / record as u64;
            }
            splits.insert(split.to_string(), size);
        }
        let num_classes = if format == Format::Cifar100 { 100 } else { 10 };
        // The names file of the binary version, where it came along.
        let names_file = if format == Format::Cifar100 {
            "fine_label_names.txt"
        } else {
            "batches.meta.txt"
        };
        let listed: Vec<String> = inside(dir, names_file, "CIFAR names file")
            .ok()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let class_names = if listed.len() == num_classes as usize {
            listed
        } else if format == Format::Cifar10 {
            CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        Ok(Summary {
            splits,
            num_classes,
            image_shape: [32, 32, 3],
            class_names,
        })
    }

    fn load(&self, ds: &Dataset, split: &str) -> Result<Split> {
        let files = cifar_files(ds.format)
            .into_iter()
            .find(|(s, _)| *s == split)
            .map(|(_, f)| f)
            .unwrap_or_default();
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for file in files {
            let path = inside(&ds.dir, file, "CIFAR file")?;
            let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("read {file}"), e))?;
            cifar_records(&bytes, ds.format, &mut pixels, &mut labels)
                .map_err(|e| Error::InvalidArgument(format!("CIFAR file {file}: {e}")))?;
        }
        Ok(Split {
            n: labels.len(),
            pixels: pixels.into(),
            image_shape: [32, 32, 3],
            labels,
        })
    }
}

const CIFAR_PIXELS: usize = 32 * 32 * 3;

/// CIFAR-10's class names by label (Krizhevsky 2009; `batches.meta.txt` of
/// the binary version lists the same).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR record layout: label bytes before the 3,072 pixel bytes.
fn cifar_label_bytes(format: Format) -> usize {
    if format == Format::Cifar100 {
        2
    } else {
        1
    }
}

/// The files of each CIFAR split.
fn cifar_files(format: Format) -> Vec<(&'static str, Vec<&'static str>)> {
    match format {
        Format::Cifar100 => vec![("test", vec!["test.bin"]), ("train", vec!["train.bin"])],
        _ => vec![
            ("test", vec!["test_batch.bin"]),
            (
                "train",
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
            ),
        ],
    }
}

/// Appends the records of a CIFAR batch (`format` says how many label
/// bytes each has; the fine label is the last) as HWC pixels and labels.
pub fn cifar_records(
    bytes: &[u8],
    format: Format,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i64>,
) -> Result<()> {
    let label_bytes = cifar_label_bytes(format);
    let record = label_bytes + CIFAR_PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::InvalidArgument(format!(
            "{} bytes is not a whole number of {record}-byte records",
            bytes.len()
        )));
    }
    for rec in bytes.chunks_exact(record) {
        labels.push(rec[label_bytes - 1] as i64);
        let planes = &rec[label_bytes..];
        // Channel planes (R, G, B, each 32×32) to HWC.
        for p in 0..1024 {
            pixels.extend([planes[p], planes[1024 + p], planes[2048 + p]]);
        }
    }
    Ok(())
}
