//! A batch of images as datasets hold them and the encoder takes them.

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
