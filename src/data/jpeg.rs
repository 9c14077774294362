//! JPEG decoding as Pillow does it, so that a folder of JPEGs gives the
//! pixels a PyTorch user's `Image.open(p).convert("RGB")` gives.
//!
//! The decoder is libjpeg-turbo, the library inside Pillow's wheels (built
//! here from the source `turbojpeg-sys` vendors), with the defaults Pillow
//! leaves alone: the accurate integer IDCT (`JDCT_ISLOW`) and "fancy"
//! (triangle-filter) chroma upsampling. Then Pillow's own conversions:
//!
//! - a one-component JPEG is Pillow's mode `L`; three channels repeat it;
//! - a three-component JPEG (YCbCr, or RGB under an Adobe marker) is decoded
//!   to RGB by libjpeg; one channel is `L = (19595 R + 38470 G + 7471 B +
//!   2¹⁵) >> 16` (Pillow's `convert("L")`);
//! - a four-component JPEG (CMYK, or YCCK which libjpeg turns into CMYK) is
//!   read inverted, as Pillow always does ("assume adobe conventions"), and
//!   converted as Pillow's `cmyk2rgb`: each of R, G, B is
//!   `K' − C'·K'/255` (rounded as Pillow's `MULDIV255`, `K' = 255 − K`), then
//!   `L` from that RGB for one channel;
//! - samples of another precision than 8 bits, and other component counts,
//!   are refused, as Pillow refuses them.
//!
//! A file cut short is refused (Pillow: "image file is truncated"); the other
//! warnings libjpeg gives (corrupt data it decodes past) are not, as Pillow
//! ignores them. `tests/data/jpeg/` holds the files and Pillow's pixels that
//! the tests compare with bit for bit.

use std::ffi::CStr;
use std::io::Read;

use turbojpeg_sys as tj;

use crate::error::{Error, Result};

/// Whether `bytes` start as a JPEG does (SOI and the next marker's 0xFF).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Most progressive scans a JPEG may have (libjpeg-turbo's `TJPARAM_SCANLIMIT`):
/// encoders write about ten; thousands are a way to make decoding slow.
const MAX_SCANS: i32 = 500;

/// The width and height the frame header (SOFn) of the JPEG read from
/// `reader` declares, found by walking the markers before it: nothing is
/// decoded and nothing past the frame header is read.
pub fn dimensions(reader: impl Read) -> Result<(usize, usize)> {
    let bad = |what: &str| Error::InvalidArgument(format!("not a readable JPEG: {what}"));
    let mut r = std::io::BufReader::new(reader);
    let mut byte = || -> Result<u8> {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)
            .map_err(|_| bad("the file ends before its frame header"))?;
        Ok(b[0])
    };
    if byte()? != 0xFF || byte()? != 0xD8 {
        return Err(bad("no start-of-image marker"));
    }
    loop {
        // A marker: 0xFF (any number of fill bytes), then its code.
        if byte()? != 0xFF {
            return Err(bad("data where a marker should be"));
        }
        let mut code = byte()?;
        while code == 0xFF {
            code = byte()?;
        }
        match code {
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            // SOI, EOI, SOS: no frame header came before them.
            0xD8..=0xDA => return Err(bad("no frame header before the image data")),
            _ => {}
        }
        let len = u16::from_be_bytes([byte()?, byte()?]) as usize;
        if len < 2 {
            return Err(bad("a marker segment shorter than its length field"));
        }
        // SOF0..SOF15 less DHT (C4), JPG (C8) and DAC (CC).
        if matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC) {
            if len < 8 {
                return Err(bad("a frame header too short"));
            }
            let _precision = byte()?;
            let height = u16::from_be_bytes([byte()?, byte()?]) as usize;
            let width = u16::from_be_bytes([byte()?, byte()?]) as usize;
            if width == 0 || height == 0 {
                return Err(bad(&format!("a frame header of {width}x{height}")));
            }
            return Ok((width, height));
        }
        for _ in 2..len {
            byte()?;
        }
    }
}

/// The colour model of a JPEG's components, as Pillow names its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One component: greyscale.
    L,
    /// Three: YCbCr (converted by libjpeg) or RGB.
    Rgb,
    /// Four: CMYK or YCCK, read inverted as Pillow reads them.
    Cmyk,
}

/// A libjpeg-turbo decompressor (`tj3Init`), destroyed on drop.
struct Handle(tj::tjhandle);

impl Handle {
    fn new() -> Result<Self> {
        // SAFETY: tj3Init has no preconditions; a null handle is checked.
        let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
        if handle.is_null() {
            return Err(Error::Internal {
                task: "JPEG decoding".into(),
                message: "libjpeg-turbo could not make a decompressor".into(),
            });
        }
        Ok(Self(handle))
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: the handle is live; tj3Get only reads it.
        unsafe { tj::tj3Get(self.0, param as i32) }
    }

    fn set(&self, param: tj::TJPARAM, value: i32) -> Result<()> {
        // SAFETY: the handle is live.
        if unsafe { tj::tj3Set(self.0, param as i32, value) } != 0 {
            return Err(Error::Internal {
                task: "JPEG decoding".into(),
                message: format!("libjpeg-turbo parameter {param}: {}", self.message()),
            });
        }
        Ok(())
    }

    /// The message of the last error or warning.
    fn message(&self) -> String {
        // SAFETY: the handle is live; tj3GetErrorStr returns a NUL-terminated
        // string owned by it, copied before the next call.
        unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// After a call that returned −1: `Ok` for a warning libjpeg decoded
    /// past, the error otherwise.
    fn check_failure(&self) -> Result<()> {
        let message = self.message();
        // SAFETY: the handle is live.
        let warning = unsafe { tj::tj3GetErrorCode(self.0) } == tj::TJERR_TJERR_WARNING as i32;
        if warning && !message.contains("Premature end of JPEG file") {
            return Ok(());
        }
        if warning {
            return Err(Error::InvalidArgument(format!(
                "the JPEG file is truncated ({message}): refused, as Pillow refuses it"
            )));
        }
        Err(Error::InvalidArgument(format!("JPEG: {message}")))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by tj3Init, destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

/// A JPEG whose header has been read: its size and mode are known, nothing
/// is decoded yet (so a caller can refuse its size before any allocation).
pub struct Jpeg<'a> {
    bytes: &'a [u8],
    handle: Handle,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pillow's mode for it.
    pub mode: Mode,
}

impl<'a> Jpeg<'a> {
    /// Reads the header of the JPEG `bytes`: refused if it is no JPEG
    /// libjpeg-turbo reads, has samples of another precision than 8 bits
    /// (Pillow: "cannot handle 12-bit layers"), or a component count other
    /// than 1, 3 or 4.
    pub fn read_header(bytes: &'a [u8]) -> Result<Self> {
        let handle = Handle::new()?;
        // SAFETY: the handle is live and `bytes` outlives the call.
        let rc =
            unsafe { tj::tj3DecompressHeader(handle.0, bytes.as_ptr(), bytes.len() as tj::size_t) };
        if rc != 0 {
            handle.check_failure()?;
        }
        let (width, height) = (
            handle.get(tj::TJPARAM_TJPARAM_JPEGWIDTH),
            handle.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT),
        );
        if width <= 0 || height <= 0 {
            // No frame header was read (libjpeg-turbo's message says why).
            return Err(Error::InvalidArgument(format!(
                "JPEG: no frame header ({})",
                handle.message()
            )));
        }
        let precision = handle.get(tj::TJPARAM_TJPARAM_PRECISION);
        if precision != 8 {
            return Err(Error::InvalidArgument(format!(
                "JPEG of {precision}-bit samples: only 8-bit JPEGs are read (as Pillow)"
            )));
        }
        let mode = match handle.get(tj::TJPARAM_TJPARAM_COLORSPACE) as u32 {
            tj::TJCS_TJCS_GRAY => Mode::L,
            tj::TJCS_TJCS_RGB | tj::TJCS_TJCS_YCbCr => Mode::Rgb,
            tj::TJCS_TJCS_CMYK | tj::TJCS_TJCS_YCCK => Mode::Cmyk,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "JPEG of an unknown colour space ({other})"
                )))
            }
        };
        handle.set(tj::TJPARAM_TJPARAM_SCANLIMIT, MAX_SCANS)?;
        // A progressive JPEG keeps every coefficient (2 bytes per sample,
        // at most 4 full-size components): bound the buffers by what this
        // size needs, so a header cannot make the decoder take more.
        let needed_mib = (width as u64 * height as u64 * 8) >> 20;
        handle.set(
            tj::TJPARAM_TJPARAM_MAXMEMORY,
            i32::try_from(needed_mib + 16).unwrap_or(i32::MAX),
        )?;
        Ok(Self {
            bytes,
            handle,
            width: width as usize,
            height: height as usize,
            mode,
        })
    }

    /// Decodes the image into `channels` (1: Pillow's `convert("L")`, 3:
    /// `convert("RGB")`), HWC.
    pub fn decode(self, channels: usize) -> Result<Vec<u8>> {
        if channels != 1 && channels != 3 {
            return Err(Error::InvalidArgument(format!(
                "a JPEG decodes to 1 or 3 channels, not {channels}"
            )));
        }
        let (format, depth) = match self.mode {
            Mode::L => (tj::TJPF_TJPF_GRAY, 1),
            Mode::Rgb => (tj::TJPF_TJPF_RGB, 3),
            Mode::Cmyk => (tj::TJPF_TJPF_CMYK, 4),
        };
        let pixels = self.width * self.height;
        let pitch = i32::try_from(self.width * depth)
            .map_err(|_| Error::InvalidArgument(format!("JPEG {} pixels wide", self.width)))?;
        let mut raw = vec![0u8; pixels * depth];
        // SAFETY: the handle is live, `raw` holds height rows of `pitch`
        // bytes in `format`, as tj3Decompress8 writes at scale 1.
        let rc = unsafe {
            tj::tj3Decompress8(
                self.handle.0,
                self.bytes.as_ptr(),
                self.bytes.len() as tj::size_t,
                raw.as_mut_ptr(),
                pitch,
                format,
            )
        };
        if rc != 0 {
            self.handle.check_failure()?;
        }
        Ok(match (self.mode, channels) {
            (Mode::L, 1) | (Mode::Rgb, 3) => raw,
            (Mode::L, _) => raw.iter().flat_map(|&v| [v, v, v]).collect(),
            (Mode::Rgb, _) => raw.chunks_exact(3).map(luma).collect(),
            (Mode::Cmyk, 3) => raw.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
            (Mode::Cmyk, _) => raw.chunks_exact(4).map(|p| luma(&cmyk_to_rgb(p))).collect(),
        })
    }
}

/// Pillow's `L` of an RGB pixel (`rgb2l`, ITU-R 601-2 luma in 16-bit fixed point).
fn luma(rgb: &[u8]) -> u8 {
    ((rgb[0] as u32 * 19595 + rgb[1] as u32 * 38470 + rgb[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's RGB of a CMYK pixel as libjpeg gives it: Pillow reads the
/// samples inverted (`CMYK;I`) and converts with `cmyk2rgb`.
fn cmyk_to_rgb(raw: &[u8]) -> [u8; 3] {
    // Pillow's K' = 255 - K with K = 255 - raw K.
    let nk = raw[3] as i32;
    let channel = |raw_c: u8| {
        let c = 255 - raw_c as i32;
        // MULDIV255(c, nk): round(c·nk / 255) as Pillow computes it.
        let t = c * nk + 128;
        let scaled = ((t >> 8) + t) >> 8;
        (nk - scaled).clamp(0, 255) as u8
    };
    [channel(raw[0]), channel(raw[1]), channel(raw[2])]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy::NpyArray;
    use std::path::{Path, PathBuf};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jpeg")
    }

    fn pillow(name: &str, kind: &str) -> Vec<u8> {
        let bytes = std::fs::read(fixtures().join(format!("{name}.{kind}.npy"))).unwrap();
        NpyArray::parse(&bytes, name).unwrap().to_u8().unwrap()
    }

    #[test]
    fn every_fixture_decodes_to_pillows_pixels_bit_for_bit() {
        let mut names: Vec<String> = std::fs::read_dir(fixtures())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".jpg").map(str::to_owned)
            })
            .collect();
        names.sort();
        // 4:2:0, 4:2:2, 4:4:4, progressive, RGB, greyscale and CMYK.
        assert!(names.len() >= 11, "{names:?}");
        for name in &names {
            let bytes = std::fs::read(fixtures().join(format!("{name}.jpg"))).unwrap();
            assert!(is_jpeg(&bytes));
            let header = Jpeg::read_header(&bytes).unwrap();
            let (w, h) = (header.width, header.height);
            assert_eq!(
                dimensions(bytes.as_slice()).unwrap(),
                (w, h),
                "{name}: the marker walk and libjpeg-turbo disagree"
            );
            assert!(name.ends_with(&format!("_{w}x{h}")), "{name}: {w}x{h}");
            let mode = header.mode;
            let expected = match name.split('_').next().unwrap() {
                "grey" => Mode::L,
                "cmyk" => Mode::Cmyk,
                _ => Mode::Rgb,
            };
            assert_eq!(mode, expected, "{name}");
            for (channels, kind) in [(3, "rgb"), (1, "l")] {
                let got = Jpeg::read_header(&bytes).unwrap().decode(channels).unwrap();
                let want = pillow(name, kind);
                assert_eq!(got.len(), w * h * channels, "{name} {kind}");
                let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differing,
                    0,
                    "{name} ({mode:?}) as {kind}: {differing} of {} values differ from Pillow's",
                    want.len()
                );
            }
        }
    }

    /// `digests.txt`'s line for `set` `folder`: file count and the sha256
    /// of Pillow's RGB and L pixels.
    fn digest_line(set: &str, folder: &str) -> (usize, String, String) {
        let text = std::fs::read_to_string(fixtures().join("digests.txt")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{set} {folder} ")))
            .unwrap_or_else(|| panic!("no digest for {set} {folder}"));
        let fields: Vec<&str> = line.split(' ').collect();
        (
            fields[2].parse().unwrap(),
            fields[3].into(),
            fields[4].into(),
        )
    }

    /// The pets fixture's photos (mixed sizes, made by Pillow at other
    /// qualities) through `decode_image_bytes`, as an image folder decodes
    /// them.
    #[test]
    fn the_pets_photos_decode_to_pillows_pixels_bit_for_bit() {
        use sha2::{Digest, Sha256};
        let pets = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/resnet2048/pets");
        let mut checked = 0;
        for split in ["train", "val"] {
            for class in ["cat", "dog", "fox"] {
                let folder = pets.join(split).join(class);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                    .collect();
                files.sort();
                let (n, rgb, l) = digest_line("pets", &format!("{split}/{class}"));
                assert_eq!(files.len(), n, "{split}/{class}");
                let (mut got_rgb, mut got_l) = (Sha256::new(), Sha256::new());
                for file in &files {
                    let bytes = std::fs::read(file).unwrap();
                    let dims = dimensions(bytes.as_slice()).unwrap();
                    got_rgb
                        .update(crate::data::dataset::decode_image_bytes(&bytes, dims, 3).unwrap());
                    got_l
                        .update(crate::data::dataset::decode_image_bytes(&bytes, dims, 1).unwrap());
                    checked += 1;
                }
                assert_eq!(
                    hex::encode(got_rgb.finalize()),
                    rgb,
                    "{split}/{class} as RGB"
                );
                assert_eq!(hex::encode(got_l.finalize()), l, "{split}/{class} as L");
            }
        }
        assert!(checked >= 30, "{checked}");
    }

    #[test]
    fn a_truncated_file_is_refused_as_pillow_refuses_it() {
        let bytes = std::fs::read(fixtures().join("photo_420_240x160.jpg")).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        let err = Jpeg::read_header(cut)
            .and_then(|j| j.decode(3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn twelve_bit_samples_and_garbage_are_refused_with_a_reason() {
        let mut bytes = std::fs::read(fixtures().join("photo_444_67x45.jpg")).unwrap();
        // The precision byte of the frame header (SOF0), set to 12.
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 4] = 12;
        let err = Jpeg::read_header(&bytes)
            .and_then(|j| j.decode(3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("12-bit"), "{err}");
        let err = Jpeg::read_header(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 2])
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("JPEG: no frame header ("), "{err}");
        assert!(dimensions(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2][..]).is_err());
        assert!(dimensions(&b"\x89PNG"[..]).is_err());
    }

    #[test]
    fn pillows_cmyk_and_luma_arithmetic() {
        // Raw libjpeg CMYK (Adobe-inverted on disk): white paper is 255 in
        // every sample, black ink is K = 0.
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[255, 255, 255, 0]), [0, 0, 0]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255]), [0, 255, 255]);
        assert_eq!(luma(&[255, 255, 255]), 255);
        assert_eq!(luma(&[255, 0, 0]), 76);
        assert_eq!(luma(&[0, 255, 0]), 150);
        assert_eq!(luma(&[0, 0, 255]), 29);
    }
}
