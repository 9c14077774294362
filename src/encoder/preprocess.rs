//! Preprocessing from the model card: raw uint8 images, [n, H, W, C], become
//! the model's input: resized to the model's height and width when they
//! differ (bilinear with half-pixel centres; an axis that is enlarged as
//! `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`
//! does, an axis that is reduced antialiased as the same call with
//! `antialias=True` and PIL's `Image.resize(BILINEAR)` do, the triangle
//! filter widened by the reduction factor), then
//! x = (pixel * scale - mean[c]) / std[c] in the card's layout (NCHW or
//! NHWC) and element type.

use serde::{Deserialize, Serialize};

pub use crate::data::ImageBatch;
use crate::encoder::{ElementType, InputData};
use crate::error::{Error, Result};

/// Version of the preprocessing arithmetic. Bump it whenever [`preprocess`]
/// computes different numbers from the same card and pixels: it is part of
/// the embedding cache's key, so an upgrade never serves stale matrices.
pub const PREPROCESS_VERSION: u32 = 3;

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

/// What happens to images whose height and width differ from the model's.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Bilinear interpolation to the model's size (half-pixel centres, no
    /// antialiasing).
    #[default]
    Bilinear,
    /// No resizing: images of another size are refused.
    None,
}

impl Resize {
    /// "bilinear" or "none".
    pub fn as_str(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
            Resize::None => "none",
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
    /// Interpolation for images of another height and width.
    pub resize: Resize,
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

    /// Checks that images of height `h`, width `w` and `c` channels can be
    /// fed: the channels must match, and the size too unless images are
    /// resized. INVALID_ARGUMENT names both shapes and what to change.
    pub fn check_image(&self, h: usize, w: usize, c: usize) -> Result<()> {
        let (ec, eh, ew) = self.chw();
        let mismatch = |hint: &str| {
            Err(Error::InvalidArgument(format!(
                "image shape mismatch: the model expects [{eh}, {ew}, {ec}] (height, width, channels), \
                 received [{h}, {w}, {c}]; {hint}"
            )))
        };
        if ec != c as i64 {
            return mismatch(&format!(
                "the channels must match (register the dataset with `channels={ec}`)"
            ));
        }
        if (eh, ew) != (h as i64, w as i64) && self.resize == Resize::None {
            return mismatch("the model's card has input.resize = \"none\"");
        }
        Ok(())
    }
}

/// One output sample of a resized axis: the first source sample it reads
/// and the weights of that one and the ones after it (summing to 1).
#[derive(Debug, Clone, PartialEq)]
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The taps of an axis resized from `input` to `output` samples; the
/// identity when they are equal. Enlarged: plain bilinear with half-pixel
/// centres, src = (dst + 0.5) * in / out - 0.5 clamped at 0 (torch's
/// `antialias=False`). Reduced: the antialiased bilinear of torch's
/// `antialias=True` and PIL (`_compute_indices_weights_aa`,
/// `ImagingResample`): the triangle filter stretched to a support of
/// `in / out` samples either side of the centre (dst + 0.5) * in / out,
/// clipped to the image, its weights normalised to sum 1.
fn taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f64 / output as f64;
    if scale <= 1.0 {
        return (0..output)
            .map(|dst| {
                let src = ((dst as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(input - 1);
                let w = (src - i0 as f64) as f32;
                if i0 + 1 < input {
                    Taps {
                        first: i0,
                        weights: vec![1.0 - w, w],
                    }
                } else {
                    Taps {
                        first: i0,
                        weights: vec![1.0],
                    }
                }
            })
            .collect();
    }
    let support = scale;
    (0..output)
        .map(|dst| {
            let center = scale * (dst as f64 + 0.5);
            // C's truncation toward zero, then clipped to the image.
            let first = ((center - support + 0.5).trunc().max(0.0)) as usize;
            let end = ((center + support + 0.5).trunc() as usize).min(input);
            let raw: Vec<f64> = (first..end)
                .map(|j| {
                    let x = (j as f64 - center + 0.5) / scale;
                    (1.0 - x.abs()).max(0.0)
                })
                .collect();
            let total: f64 = raw.iter().sum();
            Taps {
                first,
                weights: raw.iter().map(|w| (w / total) as f32).collect(),
            }
        })
        .collect()
}

/// Bilinear resize of uint8 images [n, h, w, c] to [n, oh, ow, c] as f32
/// (no rounding), width first, then height (see [`taps`] for enlarging and
/// reducing); the same size gives the pixels exactly.
pub fn resize_bilinear(batch: ImageBatch<'_>, oh: usize, ow: usize) -> Vec<f32> {
    let ImageBatch { pixels, n, h, w, c } = batch;
    let (ys, xs) = (taps(h, oh), taps(w, ow));
    let mut out = Vec::with_capacity(n * oh * ow * c);
    let mut rows = vec![0f32; h * ow * c];
    for i in 0..n {
        let image = &pixels[i * h * w * c..(i + 1) * h * w * c];
        // Along the width: h rows of ow samples.
        for y in 0..h {
            for (x, t) in xs.iter().enumerate() {
                for ch in 0..c {
                    let mut v = 0f32;
                    for (k, wt) in t.weights.iter().enumerate() {
                        v += wt * image[(y * w + t.first + k) * c + ch] as f32;
                    }
                    rows[(y * ow + x) * c + ch] = v;
                }
            }
        }
        // Along the height.
        for t in &ys {
            for x in 0..ow {
                for ch in 0..c {
                    let mut v = 0f32;
                    for (k, wt) in t.weights.iter().enumerate() {
                        v += wt * rows[((t.first + k) * ow + x) * c + ch];
                    }
                    out.push(v);
                }
            }
        }
    }
    out
}

/// How the images of a dataset are brought to a model's input: the factor
/// each side is resized by (model side / image side), and the warning of a
/// side enlarged more than 2× or reduced below half.
#[derive(Debug, Clone, PartialEq)]
pub struct ResizeNote {
    /// Model height / image height.
    pub factor_height: f64,
    /// Model width / image width.
    pub factor_width: f64,
    /// Said to the user when a side is enlarged more than
    /// [`ENLARGE_WARNING`]× or reduced below 1 / [`ENLARGE_WARNING`].
    pub warning: Option<String>,
}

/// The factor past which a resize is warned about, either way.
pub const ENLARGE_WARNING: f64 = 2.0;

/// The resize from images of `image` (height, width) to a model that
/// takes `model` (height, width); None when they are the same size.
pub fn resize_note(model: (usize, usize), image: (usize, usize)) -> Option<ResizeNote> {
    if model == image || image.0 == 0 || image.1 == 0 {
        return None;
    }
    let fh = model.0 as f64 / image.0 as f64;
    let fw = model.1 as f64 / image.1 as f64;
    let factor = |f: f64| {
        if (f - f.round()).abs() < 0.05 {
            format!("{}×", f.round())
        } else {
            format!("{f:.2}×")
        }
    };
    let both = |f: fn(f64) -> bool| f(fh) || f(fw);
    let sides = |f: f64, g: f64| {
        if (f - g).abs() < 1e-9 {
            factor(f)
        } else {
            format!("{} in height and {} in width", factor(f), factor(g))
        }
    };
    let shape = format!(
        "the model takes {} × {}, the images are {} × {}",
        model.0, model.1, image.0, image.1
    );
    let warning = if both(|f| f > ENLARGE_WARNING) {
        Some(format!(
            "{shape}: each is enlarged {} (bilinear), so the model sees blurred images with \
             far less detail than it was trained on and its numbers say little about it; \
             evaluate it on images of its own size (a dataset with `image_size={}`)",
            sides(fh, fw),
            model.0.max(model.1)
        ))
    } else if both(|f| f < 1.0 / ENLARGE_WARNING) {
        Some(format!(
            "{shape}: each is reduced to {} (bilinear, antialiased), so fine detail is lost; \
             a dataset at the model's size (`image_size={}`) keeps it",
            sides(fh, fw),
            model.0.max(model.1)
        ))
    } else {
        None
    };
    Some(ResizeNote {
        factor_height: fh,
        factor_width: fw,
        warning,
    })
}

/// Turns uint8 images into the model's input tensor; returns its shape and
/// data. Images of another height and width are resized first (when the
/// card allows it); INVALID_ARGUMENT names the expected and the received
/// image shape otherwise.
pub fn preprocess(batch: ImageBatch<'_>, card: &Preprocessing) -> Result<(Vec<i64>, InputData)> {
    let ImageBatch { pixels, n, h, w, c } = batch;
    if pixels.len() != n * h * w * c {
        return Err(Error::InvalidArgument(format!(
            "{} pixel bytes do not make {n} images of {h}x{w}x{c}",
            pixels.len()
        )));
    }
    card.check_image(h, w, c)?;
    let (_, eh, ew) = card.chw();
    let (eh, ew) = (eh as usize, ew as usize);
    let shape = match card.layout {
        Layout::NCHW => vec![n as i64, c as i64, eh as i64, ew as i64],
        Layout::NHWC => vec![n as i64, eh as i64, ew as i64, c as i64],
    };
    // Index in the output of pixel (image i, row y, column x, channel ch).
    let out_index = |i: usize, y: usize, x: usize, ch: usize| match card.layout {
        Layout::NCHW => ((i * c + ch) * eh + y) * ew + x,
        Layout::NHWC => ((i * eh + y) * ew + x) * c + ch,
    };
    let resized = ((h, w) != (eh, ew)).then(|| resize_bilinear(batch, eh, ew));
    let count = n * eh * ew * c;
    let data = match card.dtype {
        InputDType::Uint8 => {
            let mut out = vec![0u8; count];
            match &resized {
                None => fill(&mut out, pixels.iter().copied(), eh, ew, c, out_index),
                Some(values) => fill(
                    &mut out,
                    values.iter().map(|v| v.round().clamp(0.0, 255.0) as u8),
                    eh,
                    ew,
                    c,
                    out_index,
                ),
            }
            InputData::U8(out)
        }
        InputDType::Float32 => {
            let scale = card.scale as f32;
            let mean: Vec<f32> = card.mean.iter().map(|&m| m as f32).collect();
            let inv_std: Vec<f32> = card.std.iter().map(|&s| (1.0 / s) as f32).collect();
            let mut out = vec![0f32; count];
            let values: Box<dyn Iterator<Item = f32>> = match &resized {
                None => Box::new(pixels.iter().map(|&p| p as f32)),
                Some(values) => Box::new(values.iter().copied()),
            };
            fill(&mut out, values, eh, ew, c, out_index);
            for (k, v) in out.iter_mut().enumerate() {
                let ch = channel_of(k, card.layout, eh, ew, c);
                *v = (*v * scale - mean[ch]) * inv_std[ch];
            }
            InputData::F32(out)
        }
    };
    Ok((shape, data))
}

/// Writes values given in [n, h, w, c] order to their places in `out`.
fn fill<T>(
    out: &mut [T],
    values: impl Iterator<Item = T>,
    h: usize,
    w: usize,
    c: usize,
    out_index: impl Fn(usize, usize, usize, usize) -> usize,
) {
    for (src, v) in values.enumerate() {
        let (i, y, x, ch) = unravel(src, h, w, c);
        out[out_index(i, y, x, ch)] = v;
    }
}

/// The channel of flat index `k` of the output tensor.
fn channel_of(k: usize, layout: Layout, h: usize, w: usize, c: usize) -> usize {
    match layout {
        Layout::NCHW => (k / (h * w)) % c,
        Layout::NHWC => k % c,
    }
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
            resize: Resize::Bilinear,
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
    fn a_size_mismatch_without_resize_or_a_channel_mismatch_names_both_shapes() {
        let pixels = vec![0u8; 4 * 4];
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 4,
            w: 4,
            c: 1,
        };
        let mut fixed = card(Layout::NCHW, InputDType::Float32, 1);
        fixed.resize = Resize::None;
        let err = preprocess(batch, &fixed).unwrap_err().to_string();
        assert!(
            err.contains("expects [2, 3, 1]") && err.contains("received [4, 4, 1]"),
            "{err}"
        );
        let err = preprocess(batch, &card(Layout::NCHW, InputDType::Float32, 2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`channels=2`"), "{err}");
    }

    /// The resize against values made by an independent numpy
    /// implementation of torch's bilinear convention
    /// (tests/data/resnet2048/reference/README.md).
    #[test]
    fn bilinear_resize_matches_the_reference_down_and_up() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/resnet2048/reference");
        let read = |name: &str| crate::data::npy::NpyArray::read(&dir.join(name)).unwrap();
        let input = read("resize_in.npy");
        let pixels = input.to_u8().unwrap();
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 5,
            w: 7,
            c: 3,
        };
        for (name, oh, ow) in [("resize_out.npy", 3, 4), ("resize_up.npy", 9, 11)] {
            let want = read(name).to_f64().unwrap();
            let got = resize_bilinear(batch, oh, ow);
            assert_eq!(got.len(), want.len(), "{name}");
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-4, "{name}: {g} vs {w}");
            }
        }
        // The same size is the identity.
        let same = resize_bilinear(batch, 5, 7);
        assert!(same.iter().zip(&pixels).all(|(a, &b)| *a == b as f32));
        // Reductions by 3.5 and 2.6 are antialiased (the reference is
        // checked against PIL's own resize), and one axis down, one up.
        let big = read("resize_big.npy").to_u8().unwrap();
        let batch = ImageBatch {
            pixels: &big,
            n: 1,
            h: 21,
            w: 13,
            c: 3,
        };
        for (name, oh, ow) in [("resize_down.npy", 6, 5), ("resize_mixed.npy", 7, 20)] {
            let want = read(name).to_f64().unwrap();
            let got = resize_bilinear(batch, oh, ow);
            assert_eq!(got.len(), want.len(), "{name}");
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-3, "{name}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn reduced_axes_weigh_every_covered_pixel_and_enlarged_ones_two() {
        // 8 to 2: each output averages a support of 4 either side of its
        // centre, with triangle weights summing to 1.
        let t = taps(8, 2);
        assert_eq!(t[0].first, 0);
        assert_eq!(t[0].weights.len(), 6);
        assert!((t[0].weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(t[1].first, 2);
        // Enlarged: at most two taps; the identity at the same size.
        assert!(taps(4, 9).iter().all(|t| t.weights.len() <= 2));
        assert!(taps(5, 5)
            .iter()
            .enumerate()
            .all(|(i, t)| t.first == i && t.weights[0] == 1.0));
    }

    #[test]
    fn resizing_far_is_said_with_its_factor() {
        assert_eq!(resize_note((32, 32), (32, 32)), None);
        let up = resize_note((224, 224), (32, 32)).unwrap();
        assert_eq!((up.factor_height, up.factor_width), (7.0, 7.0));
        let w = up.warning.unwrap();
        assert!(
            w.starts_with("the model takes 224 × 224, the images are 32 × 32: each is enlarged 7×"),
            "{w}"
        );
        let down = resize_note((32, 32), (64, 64)).unwrap();
        assert_eq!(down.factor_height, 0.5);
        assert!(down.warning.is_none(), "half is not below half");
        let w = resize_note((32, 32), (100, 80)).unwrap().warning.unwrap();
        assert!(
            w.contains("reduced to 0.32× in height and 0.40× in width (bilinear, antialiased)"),
            "{w}"
        );
        let mild = resize_note((224, 224), (160, 160)).unwrap();
        assert!(mild.warning.is_none());
        assert_eq!(mild.factor_height, 1.4);
    }

    #[test]
    fn a_resized_float_input_is_normalised_per_channel() {
        // 2x2 image, one channel, to 1x1: the mean of the four pixels at
        // the centre sample (0.5, 0.5).
        let pixels = [0u8, 10, 20, 30];
        let batch = ImageBatch {
            pixels: &pixels,
            n: 1,
            h: 2,
            w: 2,
            c: 1,
        };
        let mut p = card(Layout::NCHW, InputDType::Float32, 1);
        p.shape = vec![-1, 1, 1, 1];
        let (shape, data) = preprocess(batch, &p).unwrap();
        assert_eq!(shape, vec![1, 1, 1, 1]);
        assert_eq!(data, InputData::F32(vec![(15.0 * 0.5 - 0.0) / 2.0]));
    }
}
