//! MLX quantization modes (`mx.quantize`): parameters, validation, and exact
//! dequantization to f32, one file per mode.
//!
//! Shapes (any leading dims, e.g. stacked experts `[E, out, in]`):
//! `weight` U32 `[.., rows, in*bits/32]`, `scales` `[.., rows, in/group]`
//! (affine: float like the model; fp modes: U8), `biases` like scales (affine only),
//! nvfp4 optionally `global_scale` F32 `[E]`. Elements are one little-endian bit stream
//! per row, LSB first (see `pack`).

pub mod affine;
pub mod fp;
pub mod mxfp4;
pub mod mxfp8;
pub mod nvfp4;
pub mod pack;

use std::fmt;

/// An MLX quantization mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuantMode {
    Affine,
    Mxfp4,
    Nvfp4,
    Mxfp8,
}

impl QuantMode {
    pub fn parse(s: &str) -> Option<QuantMode> {
        Some(match s {
            "affine" => QuantMode::Affine,
            "mxfp4" => QuantMode::Mxfp4,
            "nvfp4" => QuantMode::Nvfp4,
            "mxfp8" => QuantMode::Mxfp8,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            QuantMode::Affine => "affine",
            QuantMode::Mxfp4 => "mxfp4",
            QuantMode::Nvfp4 => "nvfp4",
            QuantMode::Mxfp8 => "mxfp8",
        }
    }

    /// Default (group_size, bits), as mlx's `_defaults_for_mode`.
    pub fn defaults(self) -> (u32, u32) {
        match self {
            QuantMode::Affine => (64, 4),
            QuantMode::Mxfp4 => (32, 4),
            QuantMode::Nvfp4 => (16, 4),
            QuantMode::Mxfp8 => (32, 8),
        }
    }

    /// The mode implied by uint8 scales and (bits, group), as mlx-lm's `infer_quant_config`.
    pub fn from_fp_params(bits: u32, group_size: u32) -> Option<QuantMode> {
        match (bits, group_size) {
            (4, 32) => Some(QuantMode::Mxfp4),
            (4, 16) => Some(QuantMode::Nvfp4),
            (8, 32) => Some(QuantMode::Mxfp8),
            _ => None,
        }
    }
}

impl fmt::Display for QuantMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of one quantized module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuantParams {
    pub mode: QuantMode,
    pub group_size: u32,
    pub bits: u32,
}

impl QuantParams {
    /// Checks the combination is one mlx accepts.
    pub fn validate(&self) -> Result<(), String> {
        let ok = match self.mode {
            QuantMode::Affine => [32, 64, 128].contains(&self.group_size) && [1, 2, 3, 4, 5, 6, 8].contains(&self.bits),
            m => m.defaults() == (self.group_size, self.bits),
        };
        if ok {
            Ok(())
        } else {
            let allowed = match self.mode {
                QuantMode::Affine => "group_size 32, 64 or 128 and bits 1, 2, 3, 4, 5, 6 or 8".to_string(),
                m => format!("group_size {} and bits {}", m.defaults().0, m.defaults().1),
            };
            Err(format!(
                "{} with group_size {} and bits {} is not an mlx quantization ({} allows {allowed})",
                self.mode, self.group_size, self.bits, self.mode
            ))
        }
    }
}

impl fmt::Display for QuantParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            QuantMode::Affine => write!(f, "affine {}-bit g{}", self.bits, self.group_size),
            m => write!(f, "{m}"),
        }
    }
}

/// Float type of affine scales/biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleFloat {
    F32,
    F16,
    BF16,
}

impl ScaleFloat {
    pub fn size(self) -> usize {
        match self {
            ScaleFloat::F32 => 4,
            _ => 2,
        }
    }

    #[inline]
    pub fn read(self, bytes: &[u8], i: usize) -> f32 {
        match self {
            ScaleFloat::F32 => f32::from_le_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]),
            ScaleFloat::F16 => half::f16::from_bits(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])).to_f32(),
            ScaleFloat::BF16 => crate::quant::bf16::to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
        }
    }
}

/// A quantized tensor's bytes, viewed as `rows` rows of `in_dim` logical elements.
/// Rows run over all leading dims; `rows_per_expert` maps a row to its expert (for nvfp4's
/// per-expert global scale).
#[derive(Clone, Copy, Debug)]
pub struct QuantData<'a> {
    pub params: QuantParams,
    pub in_dim: usize,
    pub rows: usize,
    pub rows_per_expert: usize,
    pub weight: &'a [u8],
    pub scales: &'a [u8],
    /// Affine only: the float type of scales and biases.
    pub scale_float: ScaleFloat,
    pub biases: Option<&'a [u8]>,
    /// nvfp4 only: one f32 per expert.
    pub global_scale: Option<&'a [u8]>,
}

impl QuantData<'_> {
    pub fn words_per_row(&self) -> usize {
        self.in_dim * self.params.bits as usize / 32
    }

    pub fn groups_per_row(&self) -> usize {
        self.in_dim / self.params.group_size as usize
    }

    /// Dequantizes rows `first..first + out.len() / in_dim` into `out` exactly (f32
    /// arithmetic; see each mode's file for the formula).
    pub fn dequantize_rows(&self, first: usize, out: &mut [f32]) {
        let wpr = self.words_per_row() * 4;
        let gpr = self.groups_per_row();
        let gs = self.params.group_size as usize;
        for (i, row_out) in out.chunks_exact_mut(self.in_dim).enumerate() {
            let r = first + i;
            let words = &self.weight[r * wpr..(r + 1) * wpr];
            match self.params.mode {
                QuantMode::Affine => {
                    let ss = self.scale_float.size();
                    let scales = &self.scales[r * gpr * ss..(r + 1) * gpr * ss];
                    let biases = self.biases.map(|b| &b[r * gpr * ss..(r + 1) * gpr * ss]).unwrap_or(&[]);
                    affine::dequantize_row(words, self.params.bits, gs, scales, biases, self.scale_float, row_out)
                }
                QuantMode::Mxfp4 => mxfp4::dequantize_row(words, &self.scales[r * gpr..(r + 1) * gpr], row_out),
                QuantMode::Mxfp8 => mxfp8::dequantize_row(words, &self.scales[r * gpr..(r + 1) * gpr], row_out),
                QuantMode::Nvfp4 => {
                    let g = self.global_scale.map(|g| {
                        let e = r / self.rows_per_expert.max(1);
                        f32::from_le_bytes([g[4 * e], g[4 * e + 1], g[4 * e + 2], g[4 * e + 3]])
                    });
                    nvfp4::dequantize_row(words, &self.scales[r * gpr..(r + 1) * gpr], g, row_out)
                }
            }
        }
    }
}
