//! Preprocessing from the model card: raw uint8 images, [n, H, W, C], become
//! the model's input: x = (pixel * scale - mean[c]) / std[c] in the card's
//! layout (NCHW or NHWC) and element type.

use serde::{Deserialize, Serialize};

use crate::encoder::{ElementType, InputData};
use crate::error::{Error, Result};

/// Version of the preprocessing arithmetic. Bump it whenever [`preprocess`]
/// computes different numbers from the same card and pixels: it is part of
/// the embedding cache's key, so an upgrade never serves stale matrices.
pub const PREPROCESS_VERSION: u32 = 1;

/// Pixel element type of the model's input.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InputDType {
    /// float32 input; UINT8 images are preprocessed into it.
    Float32,
    /// uint8 input; images are fed unchanged.
    Uint8,
}

impl InputDType {
    /// The matching runtime element type.
    pub fn element_type(self) -> ElementType {
        match self {
            InputDType::Float32 => ElementType::Float32,
            InputDType::Uint8 => ElementType::Uint8,
        }
    }
}

/// Axis order of the image input.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Layout {
    /// batch, channels, height, width
    NCHW,
    /// batch, height, width, channels
    NHWC,
}

impl Layout {
    /// "NCHW" or "NHWC".
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::NCHW => "NCHW",
            Layout::NHWC => "NHWC",
        }
    }
}

/// The effective preprocessing of a model: everything that turns the same
/// pixels into a different input tensor. It is part of the embedding cache's
/// key and is echoed in every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Graph input name.
    pub input: String,
    /// Element type fed to the graph.
    pub dtype: InputDType,
    /// Axis order.
    pub layout: Layout,
    /// Input shape, -1 for the batch axis.
    pub shape: Vec<i64>,
    /// Multiplier applied to raw pixels.
    pub scale: f64,
    /// Per-channel mean subtracted after scaling.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f64>,
    /// [`PREPROCESS_VERSION`] of the code that applies it.
    pub version: u32,
}

impl Preprocessing {
    /// (channels, height, width) of one image.
    pub fn chw(&self) -> (i64, i64, i64) {
        match self.layout {
            Layout::NCHW => (self.shape[1], self.shape[2], self.shape[3]),
            Layout::NHWC => (self.shape[3], self.shape[1], self.shape[2]),
        }
    }
}

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

/// Turns uint8 images into the model's input tensor; returns its shape and data.
/// INVALID_ARGUMENT names the expected and the received image shape.
pub fn preprocess(batch: ImageBatch<'_>, card: &Preprocessing) -> Result<(Vec<i64>, InputData)> {
    let ImageBatch { pixels, n, h, w, c } = batch;
    if pixels.len() != n * h * w * c {
        return Err(Error::InvalidArgument(format!(
            "{} pixel bytes do not make {n} images of {h}x{w}x{c}",
            pixels.len()
        )));
    }
    let (ec, eh, ew) = card.chw();
    if (ec, eh, ew) != (c as i64, h as i64, w as i64) {
        return Err(Error::InvalidArgument(format!(
            "image shape mismatch: the model expects [{eh}, {ew}, {ec}] (height, width, channels), \
             received [{h}, {w}, {c}]"
        )));
    }
    let shape = match card.layout {
        Layout::NCHW => vec![n as i64, ec, eh, ew],
        Layout::NHWC => vec![n as i64, eh, ew, ec],
    };
    // Index in the output of pixel (image i, row y, column x, channel ch).
    let out_index = |i: usize, y: usize, x: usize, ch: usize| match card.layout {
        Layout::NCHW => ((i * c + ch) * h + y) * w + x,
        Layout::NHWC => ((i * h + y) * w + x) * c + ch,
    };
    let data = match card.dtype {
        InputDType::Uint8 => {
            let mut out = vec![0u8; pixels.len()];
            for (src, &p) in pixels.iter().enumerate() {
                let (i, y, x, ch) = unravel(src, h, w, c);
                out[out_index(i, y, x, ch)] = p;
            }
            InputData::U8(out)
        }
        InputDType::Float32 => {
            let scale = card.scale as f32;
            let mean: Vec<f32> = card.mean.iter().map(|&m| m as f32).collect();
            let inv_std: Vec<f32> = card.std.iter().map(|&s| (1.0 / s) as f32).collect();
            let mut out = vec![0f32; pixels.len()];
            for (src, &p) in pixels.iter().enumerate() {
                let (i, y, x, ch) = unravel(src, h, w, c);
                out[out_index(i, y, x, ch)] = (p as f32 * scale - mean[ch]) * inv_std[ch];
            }
            InputData::F32(out)
        }
    };
    Ok((shape, data))
}

/// (image, row, column, channel) of flat index `k` in [n, h, w, c].
fn unravel(k: usize, h: usize, w: usize, c: usize) -> (usize, usize, usize, usize) {
    let ch = k % c;
    let x = (k / c) % w;
    let y = (k / (c * w)) % h;
    let i = k / (c * w * h);
    (i, y, x, ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(layout: Layout, dtype: InputDType, c: i64) -> Preprocessing {
        let shape = match layout {
            Layout::NCHW => vec![-1, c, 2, 3],
            Layout::NHWC => vec![-1, 2, 3, c],
        };
        Preprocessing {
            version: PREPROCESS_VERSION,
            input: "images".into(),
            dtype,
            shape,
            layout,
            scale: 0.5,
            mean: (0..c).map(|i| i as f64).collect(),
            std: vec![2.0; c as usize],
        }
    }

    #[test]
    fn nchw_float_applies_scale_mean_std_and_transposes() {
        // 1 image, 2x3, 2 channels: pixel value = 10*y + 2*x + ch.
        let pixels: Vec<u8> = (0..2)
            .flat_map(|y| {
                (0..3).flat_map(move |x| (0..2).map(move |ch| (10 * y + 2 * x + ch) as u8))
            })
            .collect();
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 2,
            w: 3,
            c: 2,
        };
        let (shape, data) = preprocess(batch, &card(Layout::NCHW, InputDType::Float32, 2)).unwrap();
        assert_eq!(shape, vec![1, 2, 2, 3]);
        let InputData::F32(v) = data else { panic!() };
        for ch in 0..2 {
            for y in 0..2 {
                for x in 0..3 {
                    let p = (10 * y + 2 * x + ch) as f32;
                    let want = (p * 0.5 - ch as f32) / 2.0;
                    assert_eq!(v[(ch * 2 + y) * 3 + x], want);
                }
            }
        }
    }

    #[test]
    fn nhwc_uint8_is_fed_unchanged() {
        let pixels: Vec<u8> = (0..12).collect();
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 2,
            w: 3,
            c: 2,
        };
        let (shape, data) = preprocess(batch, &card(Layout::NHWC, InputDType::Uint8, 2)).unwrap();
        assert_eq!(shape, vec![1, 2, 3, 2]);
        assert_eq!(data, InputData::U8(pixels.clone()));
    }

    #[test]
    fn wrong_image_size_names_both_shapes() {
        let pixels = vec![0u8; 4 * 4];
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 4,
            w: 4,
            c: 1,
        };
        let err = preprocess(batch, &card(Layout::NCHW, InputDType::Float32, 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expects [2, 3, 1]") && err.contains("received [4, 4, 1]"),
            "{err}"
        );
    }
}
