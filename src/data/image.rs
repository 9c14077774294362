//! Images: a batch as datasets hold it and the encoder takes it, and the
//! image files of a folder read and decoded (JPEG as Pillow decodes it,
//! PNG by the `image` crate), at their size or brought to a square.

/// Images as stored: `n` images of height × width × channels, uint8, row-major.
#[derive(Debug, Clone, Copy)]
pub struct ImageBatch<'a> {
    /// Pixels, [n, h, w, c] row-major.
    pub pixels: &'a [u8],
    /// Number of images.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

use std::path::{Path, PathBuf};

use super::dataset::{Fit, MAX_IMAGE_SIDE};
use super::jpeg::{self, Jpeg};
use super::paths::{shown, stays_inside};
use crate::error::{Error, Result};

/// The images of a class folder, sorted; one that links outside `root` is refused.
pub(super) fn image_files(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("read {}", shown(root, dir)), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if let Some(out) = files.iter().find(|f| !stays_inside(root, f)) {
        return Err(Error::InvalidArgument(format!(
            "{} leads outside the dataset folder through a link",
            shown(root, out)
        )));
    }
    Ok(files)
}

/// The sub-folders of `dir`, sorted; one that links outside `root` is refused.
pub(super) fn subdirs(root: &Path, dir: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("read {}", shown(root, dir)), e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    if let Some(out) = out.iter().find(|n| !stays_inside(root, &dir.join(n))) {
        return Err(Error::InvalidArgument(format!(
            "{} leads outside the dataset folder through a link",
            shown(root, &dir.join(out))
        )));
    }
    Ok(out)
}

/// The width and height an image's header declares (nothing is decoded):
/// a JPEG's from its frame header (as libjpeg-turbo, which decodes it, reads
/// it), any other image's through the `image` crate.
pub(super) fn image_size(root: &Path, path: &Path) -> Result<(u32, u32)> {
    let err =
        |e: &dyn std::fmt::Display| Error::InvalidArgument(format!("{}: {e}", shown(root, path)));
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("read {}", shown(root, path)), e))?;
    let mut magic = [0u8; 3];
    let jpeg = std::io::Read::read_exact(&mut file, &mut magic).is_ok() && jpeg::is_jpeg(&magic);
    if jpeg {
        std::io::Seek::rewind(&mut file)
            .map_err(|e| Error::io(format!("read {}", shown(root, path)), e))?;
        let (w, h) = jpeg::dimensions(file).map_err(|e| err(&e))?;
        return Ok((w as u32, h as u32));
    }
    image::image_dimensions(path).map_err(|e| err(&e))
}

/// Decodes PNG or JPEG `bytes` that must be a `w` × `h` image into `c`
/// channels (1 or 3), HWC; the decoder may not allocate more than such an
/// image needs, whatever the header says. A JPEG gives Pillow's pixels
/// (see [`jpeg`]), a PNG the `image` crate's.
pub fn decode_image_bytes(bytes: &[u8], (w, h): (usize, usize), c: usize) -> Result<Vec<u8>> {
    if jpeg::is_jpeg(bytes) {
        let jpeg = Jpeg::read_header(bytes)?;
        if (jpeg.width, jpeg.height) != (w, h) {
            return Err(Error::InvalidArgument(format!(
                "the image is {}x{}, the dataset's images are {w}x{h}",
                jpeg.width, jpeg.height
            )));
        }
        return jpeg.decode(c);
    }
    let bad = |e: &dyn std::fmt::Display| Error::InvalidArgument(e.to_string());
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w as u32);
    limits.max_image_height = Some(h as u32);
    limits.max_alloc = Some((w * h * 4 * 2).max(1 << 20) as u64);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(&e))?;
    if (img.width() as usize, img.height() as usize) != (w, h) {
        return Err(Error::InvalidArgument(format!(
            "the image is {}x{}, the dataset's images are {w}x{h}",
            img.width(),
            img.height()
        )));
    }
    Ok(if c == 1 {
        img.to_luma8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    })
}

/// Decodes `bytes` (an image of any size up to the bounds) into `c`
/// channels, resizes its shorter side and crops the centre square (see
/// [`Fit`]); the resize is bilinear with antialiasing (a triangle filter
/// whose support widens with the downscale factor).
pub fn decode_fitted_bytes(bytes: &[u8], fit: Fit, c: usize) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| Error::InvalidArgument(e.to_string());
    let img = if jpeg::is_jpeg(bytes) {
        let jpeg = Jpeg::read_header(bytes)?;
        let (w, h) = (jpeg.width, jpeg.height);
        if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE {
            return Err(Error::InvalidArgument(format!(
                "the image is {w}x{h}: images may be at most {MAX_IMAGE_SIDE} pixels a side"
            )));
        }
        // Pillow's pixels in the channels asked for, resized below.
        let pixels = jpeg.decode(c)?;
        let (w, h) = (w as u32, h as u32);
        let img = if c == 1 {
            image::GrayImage::from_raw(w, h, pixels).map(image::DynamicImage::ImageLuma8)
        } else {
            image::RgbImage::from_raw(w, h, pixels).map(image::DynamicImage::ImageRgb8)
        };
        img.ok_or_else(|| bad(&"the decoded JPEG has the wrong number of pixels"))?
    } else {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(&e))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
        limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
        reader.limits(limits);
        reader.decode().map_err(|e| bad(&e))?
    };
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (rw, rh) = fit.checked_resize(w, h)?;
    let (left, top) = (
        ((rw - fit.side) as f64 / 2.0).round_ties_even() as u32,
        ((rh - fit.side) as f64 / 2.0).round_ties_even() as u32,
    );
    let side = fit.side as u32;
    let filter = image::imageops::FilterType::Triangle;
    Ok(if c == 1 {
        let resized = image::imageops::resize(&img.to_luma8(), rw as u32, rh as u32, filter);
        image::imageops::crop_imm(&resized, left, top, side, side)
            .to_image()
            .into_raw()
    } else {
        let resized = image::imageops::resize(&img.to_rgb8(), rw as u32, rh as u32, filter);
        image::imageops::crop_imm(&resized, left, top, side, side)
            .to_image()
            .into_raw()
    })
}

/// Decodes the image file `path` and fits it to a square (see [`Fit`]).
pub(super) fn decode_fitted(root: &Path, path: &Path, fit: Fit, c: usize) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("read {}", shown(root, path)), e))?;
    decode_fitted_bytes(&bytes, fit, c)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", shown(root, path))))
}

/// Decodes the image file `path`, which must be `w` × `h`, into `c` channels.
pub(super) fn decode_image(
    root: &Path,
    path: &Path,
    (w, h): (usize, usize),
    c: usize,
) -> Result<Vec<u8>> {
    let (iw, ih) = image_size(root, path)?;
    if (iw as usize, ih as usize) != (w, h) {
        return Err(Error::InvalidArgument(format!(
            "{} is {iw}x{ih}, the dataset's images are {w}x{h}",
            shown(root, path)
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("read {}", shown(root, path)), e))?;
    decode_image_bytes(&bytes, (w, h), c)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", shown(root, path))))
}
