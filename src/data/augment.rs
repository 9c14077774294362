//! Positive views: seeded, deterministic augmentations. The view of image
//! `index` under `seed` is always the same, whatever order or thread asks.
//! A request names the recipe and may change its parameters
//! ([`AugmentParams`], the API's `MetricSpec.augmentation`):
//!
//! - `simclr` (the default; Chen et al. 2020) on RGB images: random resized
//!   crop (area `crop_scale` 0.2–1, aspect 3/4–4/3), horizontal flip (p
//!   `flip` 0.5), colour jitter (brightness, contrast, saturation by a
//!   factor in 1 ± `jitter` 0.4, with p 0.8), greyscale (p `grayscale` 0.2),
//!   Gaussian blur (p `blur` 0; σ 0.1–2, radius a twentieth of the side).
//! - `instdisc` (Wu et al. 2018): the same with the jitter always applied.
//! - `none`: the image itself (alignment 0, positive similarity 1).
//! - Small greyscale images (one channel, at most 32×32, e.g. digits) under
//!   `simclr` or `instdisc`: a random affine warp (rotation within ±10°,
//!   scale 0.9–1.1, shift of up to 1/8 of the side) with zero padding, then
//!   Gaussian noise (σ = 5% of the pixel range), as the zoo was trained.
//! - Larger greyscale images: random resized crop, flip, brightness/contrast
//!   jitter and blur.

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// Version of the augmentation arithmetic. Bump it whenever a view of the
/// same image under the same seed changes: it is part of the embedding
/// cache's key, so an upgrade never serves stale positive views.
pub const AUGMENT_VERSION: u32 = 1;

/// Which pipeline a dataset's images get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Affine warp and noise.
    SmallGreyscale,
    /// Random resized crop, flip, colour jitter, greyscale.
    Rgb,
    /// Random resized crop, flip, brightness/contrast.
    Greyscale,
}

impl Policy {
    /// The pipeline for images of height `h`, width `w`, `c` channels.
    pub fn for_shape(h: usize, w: usize, c: usize) -> Self {
        match c {
            1 if h <= 32 && w <= 32 => Policy::SmallGreyscale,
            3 => Policy::Rgb,
            _ => Policy::Greyscale,
        }
    }
}

/// A named augmentation recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// SimCLR's: colour jitter with probability 0.8.
    Simclr,
    /// InstDisc's: colour jitter always.
    Instdisc,
    /// No augmentation: the view is the image.
    None,
}

impl Recipe {
    /// The recipes a request may name.
    pub const NAMES: [&'static str; 3] = ["simclr", "instdisc", "none"];

    /// The recipe named `name` ("" is the default, `simclr`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "" | "simclr" => Some(Recipe::Simclr),
            "instdisc" => Some(Recipe::Instdisc),
            "none" => Some(Recipe::None),
            _ => None,
        }
    }

    /// The recipe's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Recipe::Simclr => "simclr",
            Recipe::Instdisc => "instdisc",
            Recipe::None => "none",
        }
    }

    /// Probability of the colour jitter.
    fn jitter_p(self) -> f64 {
        match self {
            Recipe::Instdisc => 1.0,
            _ => 0.8,
        }
    }
}

/// The recipe and its parameters: what a request may change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    /// The recipe.
    pub recipe: Recipe,
    /// Smallest and largest crop area, as fractions of the image.
    pub crop_scale: (f64, f64),
    /// Jitter strength: brightness, contrast and saturation factors in 1 ± jitter.
    pub jitter: f64,
    /// Probability of a greyscale view.
    pub grayscale: f64,
    /// Probability of a horizontal flip.
    pub flip: f64,
    /// Probability of a Gaussian blur.
    pub blur: f64,
}

impl AugmentParams {
    /// The recipe's defaults.
    pub fn of(recipe: Recipe) -> Self {
        Self {
            recipe,
            crop_scale: (0.2, 1.0),
            jitter: 0.4,
            grayscale: 0.2,
            flip: 0.5,
            blur: 0.0,
        }
    }

    /// Checks the values: probabilities in [0, 1], 0 < min ≤ max ≤ 1 for the
    /// crop, jitter in [0, 1]. The message names the field.
    pub fn check(&self) -> Result<(), String> {
        let (lo, hi) = self.crop_scale;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return Err(format!(
                "spec.augmentation: crop_scale_min and crop_scale_max must satisfy 0 < min <= max <= 1, got {lo} and {hi}"
            ));
        }
        for (name, v) in [
            ("jitter", self.jitter),
            ("grayscale", self.grayscale),
            ("flip", self.flip),
            ("blur", self.blur),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "spec.augmentation.{name} must be in [0, 1], got {v}"
                ));
            }
        }
        Ok(())
    }
}

impl Default for AugmentParams {
    fn default() -> Self {
        Self::of(Recipe::Simclr)
    }
}

/// Settings of the positive views: every parameter that decides a view.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmenter {
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Largest pixel value (255, or 16 for digits).
    pub pixel_max: f32,
    /// Seed of every view.
    pub seed: u64,
    /// The pipeline.
    pub policy: Policy,
    /// The recipe and its parameters.
    pub params: AugmentParams,
}

impl Augmenter {
    /// The pipeline that suits images of this shape.
    pub fn new(h: usize, w: usize, c: usize, pixel_max: f32, seed: u64) -> Self {
        Self {
            h,
            w,
            c,
            pixel_max,
            seed,
            policy: Policy::for_shape(h, w, c),
            params: AugmentParams::default(),
        }
    }

    /// The same with the recipe and parameters `params`.
    pub fn with(self, params: AugmentParams) -> Self {
        Self { params, ..self }
    }

    fn rng(&self, index: u64) -> SplitMix64 {
        let mut mix = SplitMix64::new(self.seed ^ 0x0005_EED0_FA11_u64.rotate_left(17));
        let base = mix.next_u64();
        SplitMix64::new(base ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The positive view of image `index` (pixels [h, w, c], row-major).
    pub fn view(&self, pixels: &[u8], index: u64) -> Vec<u8> {
        assert_eq!(pixels.len(), self.h * self.w * self.c, "image size");
        if self.params.recipe == Recipe::None {
            return pixels.to_vec();
        }
        let mut rng = self.rng(index);
        let img: Vec<f32> = pixels.iter().map(|&p| p as f32).collect();
        let p = self.params;
        let out = match self.policy {
            Policy::SmallGreyscale => self.affine_and_noise(&img, &mut rng),
            Policy::Rgb | Policy::Greyscale => {
                let rgb = self.policy == Policy::Rgb;
                let mut v = self.resized_crop_flip(&img, &mut rng);
                if rng.unit() < p.recipe.jitter_p() {
                    self.colour_jitter(&mut v, &mut rng, rgb);
                }
                if rgb && rng.unit() < p.grayscale {
                    self.greyscale(&mut v);
                }
                // Drawn only when asked for, so that views without blur are
                // those of the earlier versions.
                if p.blur > 0.0 && rng.unit() < p.blur {
                    let sigma = 0.1 + 1.9 * rng.unit();
                    self.blur(&mut v, sigma as f32);
                }
                v
            }
        };
        out.iter()
            .map(|&v| v.round().clamp(0.0, self.pixel_max) as u8)
            .collect()
    }

    /// Bilinear sample of channel `ch` at (y, x), zero outside.
    fn sample(&self, img: &[f32], y: f32, x: f32, ch: usize) -> f32 {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let at = |yy: f32, xx: f32| {
            if yy < 0.0 || xx < 0.0 || yy >= self.h as f32 || xx >= self.w as f32 {
                0.0
            } else {
                img[((yy as usize) * self.w + xx as usize) * self.c + ch]
            }
        };
        at(y0, x0) * (1.0 - fy) * (1.0 - fx)
            + at(y0, x0 + 1.0) * (1.0 - fy) * fx
            + at(y0 + 1.0, x0) * fy * (1.0 - fx)
            + at(y0 + 1.0, x0 + 1.0) * fy * fx
    }

    fn affine_and_noise(&self, img: &[f32], rng: &mut SplitMix64) -> Vec<f32> {
        let angle = ((rng.unit() * 2.0 - 1.0) * 10f64.to_radians()) as f32;
        let scale = (0.9 + 0.2 * rng.unit()) as f32;
        let max_shift = (self.h.max(self.w) as f32 / 8.0).max(1.0);
        let dy = ((rng.unit() * 2.0 - 1.0) as f32 * max_shift).round();
        let dx = ((rng.unit() * 2.0 - 1.0) as f32 * max_shift).round();
        let (cy, cx) = ((self.h as f32 - 1.0) / 2.0, (self.w as f32 - 1.0) / 2.0);
        let (sin, cos) = angle.sin_cos();
        let sigma = 0.05 * self.pixel_max as f64;
        let mut out = vec![0f32; img.len()];
        for y in 0..self.h {
            for x in 0..self.w {
                // Inverse map: output pixel back to its source position.
                let (oy, ox) = (y as f32 - cy - dy, x as f32 - cx - dx);
                let sy = (cos * oy - sin * ox) / scale + cy;
                let sx = (sin * oy + cos * ox) / scale + cx;
                for ch in 0..self.c {
                    out[(y * self.w + x) * self.c + ch] = self.sample(img, sy, sx, ch);
                }
            }
        }
        for v in &mut out {
            *v += (rng.normal() * sigma) as f32;
        }
        out
    }

    fn resized_crop_flip(&self, img: &[f32], rng: &mut SplitMix64) -> Vec<f32> {
        let (h, w) = (self.h as f64, self.w as f64);
        let (mut ch, mut cw) = (h, w);
        let (lo, hi) = self.params.crop_scale;
        for _ in 0..10 {
            let area = h * w * (lo + (hi - lo) * rng.unit());
            let ratio =
                ((3f64 / 4.0).ln() + rng.unit() * ((4f64 / 3.0).ln() - (3f64 / 4.0).ln())).exp();
            let (tw, th) = ((area * ratio).sqrt(), (area / ratio).sqrt());
            if tw <= w && th <= h {
                (ch, cw) = (th, tw);
                break;
            }
        }
        let top = rng.unit() * (h - ch);
        let left = rng.unit() * (w - cw);
        let flip = rng.unit() < self.params.flip;
        let mut out = vec![0f32; img.len()];
        for y in 0..self.h {
            for x in 0..self.w {
                let xs = if flip { self.w - 1 - x } else { x };
                let sy = (top + (y as f64 + 0.5) * ch / h - 0.5).clamp(0.0, h - 1.0) as f32;
                let sx = (left + (xs as f64 + 0.5) * cw / w - 0.5).clamp(0.0, w - 1.0) as f32;
                for c in 0..self.c {
                    out[(y * self.w + x) * self.c + c] = self.sample(img, sy, sx, c);
                }
            }
        }
        out
    }

    fn colour_jitter(&self, img: &mut [f32], rng: &mut SplitMix64, saturation: bool) {
        let j = self.params.jitter;
        let factor = |rng: &mut SplitMix64| (1.0 - j + 2.0 * j * rng.unit()) as f32;
        let (b, c, s) = (factor(rng), factor(rng), factor(rng));
        img.iter_mut().for_each(|v| *v *= b);
        let mean = img.iter().sum::<f32>() / img.len() as f32;
        img.iter_mut().for_each(|v| *v = mean + (*v - mean) * c);
        if saturation && self.c == 3 {
            for px in img.chunks_exact_mut(3) {
                let grey = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                px.iter_mut().for_each(|v| *v = grey + (*v - grey) * s);
            }
        }
    }

    /// Separable Gaussian blur of standard deviation `sigma` pixels, radius a
    /// twentieth of the longer side (at least 1), edges clamped.
    fn blur(&self, img: &mut [f32], sigma: f32) {
        let radius = (self.h.max(self.w) / 20).max(1) as isize;
        let weights: Vec<f32> = (-radius..=radius)
            .map(|d| (-((d * d) as f32) / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f32 = weights.iter().sum();
        let (h, w, c) = (self.h as isize, self.w as isize, self.c);
        let pass = |src: &[f32], dst: &mut [f32], along_x: bool| {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let mut acc = 0.0;
                        for (k, wt) in weights.iter().enumerate() {
                            let d = k as isize - radius;
                            let (yy, xx) = if along_x {
                                (y, (x + d).clamp(0, w - 1))
                            } else {
                                ((y + d).clamp(0, h - 1), x)
                            };
                            acc += wt * src[((yy * w + xx) as usize) * c + ch];
                        }
                        dst[((y * w + x) as usize) * c + ch] = acc / total;
                    }
                }
            }
        };
        let mut tmp = vec![0f32; img.len()];
        pass(img, &mut tmp, true);
        pass(&tmp, img, false);
    }

    fn greyscale(&self, img: &mut [f32]) {
        if self.c == 3 {
            for px in img.chunks_exact_mut(3) {
                let grey = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
                px.iter_mut().for_each(|v| *v = grey);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> Vec<u8> {
        (0..64)
            .map(|i| if (i % 8) == 3 || (i % 8) == 4 { 16 } else { 0 })
            .collect()
    }

    #[test]
    fn same_seed_and_index_give_the_same_view() {
        let aug = Augmenter::new(8, 8, 1, 16.0, 0);
        assert_eq!(aug.policy, Policy::SmallGreyscale);
        let img = digit();
        assert_eq!(aug.view(&img, 5), aug.view(&img, 5));
        assert_ne!(aug.view(&img, 5), aug.view(&img, 6));
        let other = Augmenter::new(8, 8, 1, 16.0, 1);
        assert_ne!(aug.view(&img, 5), other.view(&img, 5));
    }

    #[test]
    fn views_stay_in_range_and_resemble_the_image() {
        let aug = Augmenter::new(8, 8, 1, 16.0, 3);
        let img = digit();
        for index in 0..50 {
            let v = aug.view(&img, index);
            assert_eq!(v.len(), 64);
            assert!(v.iter().all(|&p| p <= 16));
            // A vertical bar stays mostly where it was: correlation with the original.
            let dot: f64 = v.iter().zip(&img).map(|(&a, &b)| a as f64 * b as f64).sum();
            let na: f64 = v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = img.iter().map(|&b| (b as f64).powi(2)).sum::<f64>().sqrt();
            assert!(dot / (na * nb) > 0.3, "view {index} lost the image");
        }
    }

    #[test]
    fn the_recipe_decides_the_view() {
        let img: Vec<u8> = (0..32 * 32 * 3).map(|i| (i % 251) as u8).collect();
        let base = Augmenter::new(32, 32, 3, 255.0, 9);
        let none = base.with(AugmentParams::of(Recipe::None));
        assert_eq!(none.view(&img, 1), img, "no augmentation: the image itself");
        // The full crop, no flip, jitter, greyscale or blur: the image again.
        let identity = base.with(AugmentParams {
            crop_scale: (1.0, 1.0),
            jitter: 0.0,
            grayscale: 0.0,
            flip: 0.0,
            ..AugmentParams::default()
        });
        for i in 0..5 {
            let v = identity.view(&img, i);
            let diff = v
                .iter()
                .zip(&img)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max();
            assert!(diff.unwrap() <= 1, "view {i} differs by {diff:?}");
        }
        // Blur always on changes the view and keeps its mean.
        let blurred = identity.with(AugmentParams {
            blur: 1.0,
            ..identity.params
        });
        let noisy: Vec<u8> = (0..32 * 32 * 3).map(|i| ((i * 7919) % 256) as u8).collect();
        let mean = |v: &[u8]| v.iter().map(|&p| p as f64).sum::<f64>() / v.len() as f64;
        let changed = (0..8)
            .filter(|&i| blurred.view(&noisy, i) != identity.view(&noisy, i))
            .count();
        assert!(changed > 0, "a blur always applied changes some views");
        let b = blurred.view(&noisy, 2);
        assert!((mean(&b) - mean(&noisy)).abs() < 3.0);
        assert!(AugmentParams {
            crop_scale: (0.5, 0.2),
            ..AugmentParams::default()
        }
        .check()
        .unwrap_err()
        .contains("crop_scale_min"));
        assert_eq!(Recipe::parse(""), Some(Recipe::Simclr));
        assert_eq!(Recipe::parse("byol"), None);
    }

    #[test]
    fn rgb_views_are_deterministic_and_sized() {
        let aug = Augmenter::new(32, 32, 3, 255.0, 9);
        assert_eq!(aug.policy, Policy::Rgb);
        let img: Vec<u8> = (0..32 * 32 * 3).map(|i| (i % 251) as u8).collect();
        let a = aug.view(&img, 1);
        assert_eq!(a.len(), img.len());
        assert_eq!(a, aug.view(&img, 1));
        assert_ne!(a, img);
    }
}
