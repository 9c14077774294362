//! Reading and writing NumPy `.npy` files (format versions 1-3, C order,
//! little-endian `f4`, `f8`, `i8` and `u1`): the project's dataset format,
//! golden outputs and reference vectors are all `.npy`.

use std::path::Path;

use crate::error::{Error, Result};

/// Element types a `.npy` file may hold here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyType {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `<i8`
    I64,
    /// `|u1`
    U8,
}

impl NpyType {
    fn descr(self) -> &'static str {
        match self {
            NpyType::F32 => "<f4",
            NpyType::F64 => "<f8",
            NpyType::I64 => "<i8",
            NpyType::U8 => "|u1",
        }
    }

    fn size(self) -> usize {
        match self {
            NpyType::F32 => 4,
            NpyType::F64 | NpyType::I64 => 8,
            NpyType::U8 => 1,
        }
    }

    fn parse(descr: &str) -> Option<Self> {
        match descr {
            "<f4" => Some(NpyType::F32),
            "<f8" => Some(NpyType::F64),
            "<i8" => Some(NpyType::I64),
            "|u1" | "<u1" => Some(NpyType::U8),
            _ => None,
        }
    }
}

/// The contents of a `.npy` file: element type, shape and raw little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Element type.
    pub dtype: NpyType,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Row-major little-endian bytes.
    pub data: Vec<u8>,
}

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{what}: not a supported .npy file: {msg}"))
}

/// Value of `'key': value` in the header dict, up to the next top-level comma.
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(inner) = rest.strip_prefix('(') {
        return inner.find(')').map(|end| &inner[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

impl NpyArray {
    /// Parses `.npy` bytes; `what` names the source in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(bad(what, "missing magic"));
        }
        let (header_len, offset) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(bad(what, format!("version {v}"))),
        };
        let header = bytes
            .get(offset..offset + header_len)
            .ok_or_else(|| bad(what, "truncated header"))?;
        let header = std::str::from_utf8(header).map_err(|e| bad(what, e))?;
        let descr = header_field(header, "descr")
            .map(|d| d.trim_matches(['\'', '"']))
            .ok_or_else(|| bad(what, "no descr"))?;
        let dtype = NpyType::parse(descr).ok_or_else(|| bad(what, format!("dtype {descr}")))?;
        if header_field(header, "fortran_order") != Some("False") {
            return Err(bad(what, "fortran order"));
        }
        let shape = header_field(header, "shape")
            .ok_or_else(|| bad(what, "no shape"))?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|e| bad(what, e)))
            .collect::<Result<Vec<_>>>()?;
        let need = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(what, format!("shape {shape:?} is too large")))?;
        let data = &bytes[offset + header_len..];
        if data.len() != need {
            return Err(bad(
                what,
                format!(
                    "shape {shape:?} needs {need} bytes of data, found {}",
                    data.len()
                ),
            ));
        }
        Ok(Self {
            dtype,
            shape,
            data: data.to_vec(),
        })
    }

    /// Reads a `.npy` file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::read_as(path, &path.display().to_string())
    }

    /// Reads a `.npy` file that errors call `name`.
    pub fn read_as(path: &Path, name: &str) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(format!("read {name}"), e))?;
        Self::parse(&bytes, name)
    }

    /// Encodes as a version 1 `.npy` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.dtype.descr()
        );
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Writes a version 1 `.npy` file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes())
            .map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// A float32 array from values and shape.
    pub fn from_f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dtype: NpyType::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn expect(&self, dtype: NpyType) -> Result<()> {
        if self.dtype == dtype {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "expected a {} array, found {}",
                dtype.descr(),
                self.dtype.descr()
            )))
        }
    }

    /// The values as f32 (the array must be `<f4`).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.expect(NpyType::F32)?;
        Ok(self
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The values as f64 (the array must be `<f8`).
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        self.expect(NpyType::F64)?;
        Ok(self
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    }

    /// The values as i64 (the array must be `<i8`).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.expect(NpyType::I64)?;
        Ok(self
            .data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
            .collect())
    }

    /// The values as u8 (the array must be `|u1`).
    pub fn to_u8(&self) -> Result<Vec<u8>> {
        self.expect(NpyType::U8)?;
        Ok(self.data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes numpy 2 wrote for `np.save(f, np.arange(6, dtype='<i8').reshape(2, 3))`.
    fn numpy_i64() -> Vec<u8> {
        let mut header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for v in 0i64..6 {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_numpy_layout() {
        let arr = NpyArray::parse(&numpy_i64(), "t").unwrap();
        assert_eq!(arr.shape, vec![2, 3]);
        assert_eq!(arr.to_i64().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert!(arr.to_f32().is_err());
    }

    #[test]
    fn round_trips_and_matches_numpy_bytes() {
        let arr = NpyArray {
            dtype: NpyType::I64,
            shape: vec![2, 3],
            data: (0i64..6).flat_map(|v| v.to_le_bytes()).collect(),
        };
        assert_eq!(arr.to_bytes(), numpy_i64());
        let f = NpyArray::from_f32(vec![3], &[1.0, -2.5, 3.25]);
        let back = NpyArray::parse(&f.to_bytes(), "t").unwrap();
        assert_eq!(back.to_f32().unwrap(), vec![1.0, -2.5, 3.25]);
        assert_eq!(back.shape, vec![3]);
    }

    #[test]
    fn rejects_truncated_data() {
        let mut bytes = numpy_i64();
        bytes.truncate(bytes.len() - 3);
        let err = NpyArray::parse(&bytes, "cut.npy").unwrap_err().to_string();
        assert!(
            err.contains("cut.npy") && err.contains("needs 48 bytes"),
            "{err}"
        );
    }
}
