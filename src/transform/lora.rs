//! Fusing a LoRA/DoRA update into row chunks of a weight. The rank-r products run on a
//! small kernel of our own: every element of `L · R` is one product and then r − 1 fused
//! multiply-adds in rank order, so its bits do not depend on the tile, the chunk or the
//! vector width it was made in (the `gemm` crate's edge tiles rounded differently), and the
//! kernel is written once for the compiler to vectorize: AVX2 + FMA on x86-64 (chosen at run
//! time), NEON on arm64.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::plan::{Delta, ModuleKind};
use crate::source::{Dtype, TensorStore, TensorView};

/// Output rows per tile: 6 rows × 2 AVX2 vectors of accumulators (12 of 16 registers).
const TILE_ROWS: usize = 6;
/// Output columns per tile; `R`'s columns are packed in panels of this width.
const TILE_COLS: usize = 16;

/// A delta's factors, read from the adapter's mapped bytes a chunk's rows and an expert at a
/// time for `ΔW[rows of expert e] = L[rows] · R_e`: decoded whole they grow with experts ×
/// rank (gpt-oss-120b's 128 experts at rank 16: about 47 MB per expert tensor in f32), and
/// memory must stay flat in model size.
pub struct LoraFactors<'a> {
    rank: usize,
    in_dim: usize,
    rows: usize,
    rows_per_expert: usize,
    kind: ModuleKind,
    scale: f32,
    /// `L`'s factor as stored: `[rows, r]`, or `[r, rows]` (its transpose) for `Linear`.
    left: Stored<'a>,
    /// `R`'s factor as stored: `[E, r, in]`, or `[in, r]` (its transpose) for `Linear`.
    right: Stored<'a>,
    /// Tells this delta's `R` apart in a thread's [`Scratch`].
    id: u64,
    /// DoRA magnitudes, one per row of a 2-D weight.
    magnitude: Option<Vec<f32>>,
}

/// A factor's bytes in the adapter file and their dtype.
#[derive(Clone, Copy)]
struct Stored<'a> {
    dtype: Dtype,
    data: &'a [u8],
}

impl Stored<'_> {
    fn elements(&self) -> usize {
        self.data.len() / self.dtype.size().max(1)
    }

    /// Elements `range` as f32, into `out`.
    fn read(&self, range: Range<usize>, out: &mut Vec<f32>) {
        let size = self.dtype.size();
        out.clear();
        out.resize(range.len(), 0.0);
        super::decode_dense(self.dtype, &self.data[range.start * size..range.end * size], out);
    }
}

/// A thread's decoded operands: one expert's packed `R` (kept while chunks of the same
/// expert follow), the rows of `L` in use, and room to decode into.
#[derive(Default)]
struct Scratch {
    /// (factors id, expert) of `right`.
    key: Option<(u64, usize)>,
    right: Vec<f32>,
    left: Vec<f32>,
    decoded: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(crate) fn to_f32(v: &TensorView<'_>) -> Vec<f32> {
    let mut out = vec![0f32; v.data.len() / v.dtype.size().max(1)];
    super::decode_dense(v.dtype, v.data, &mut out);
    out
}

/// `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = x[i * cols + j];
        }
    }
    out
}

impl<'a> LoraFactors<'a> {
    /// `shape` is the weight's logical shape; the plan has checked every adapter shape.
    pub fn new(store: &'a TensorStore, d: &Delta, shape: &[usize]) -> Option<LoraFactors<'a>> {
        let magnitude = match &d.m {
            Some(m) => Some(to_f32(&store.get(m)?)),
            None => None,
        };
        Self::from_views(store.get(&d.a)?, store.get(&d.b)?, magnitude, d, shape)
    }

    fn from_views(
        a: TensorView<'a>,
        b: TensorView<'a>,
        magnitude: Option<Vec<f32>>,
        d: &Delta,
        shape: &[usize],
    ) -> Option<LoraFactors<'a>> {
        let (a, b) = (Stored { dtype: a.dtype, data: a.data }, Stored { dtype: b.dtype, data: b.data });
        let (r, in_dim) = (d.rank, *shape.last()?);
        let (rows, rows_per_expert, left, right) = match d.kind {
            // lora_a [in, r], lora_b [r, out]: L = Bᵀ [out, r], R = Aᵀ [r, in].
            ModuleKind::Linear => (shape[0], shape[0], b, a),
            // lora_a [E, r, in], lora_b [E, out, r]: L = B (all experts' rows), R = A.
            ModuleKind::Switch => (shape[0] * shape[1], shape[1], b, a),
            // lora_a [vocab, r], lora_b [r, dims]: L = A, R = B.
            ModuleKind::Embedding => (shape[0], shape[0], a, b),
        };
        // Every later read lies within these sizes.
        let experts = rows / rows_per_expert.max(1);
        if r == 0 || left.elements() != rows * r || right.elements() != experts * r * in_dim {
            return None;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Some(LoraFactors {
            rank: r,
            in_dim,
            rows,
            rows_per_expert,
            kind: d.kind,
            scale: d.scale,
            left,
            right,
            id,
            magnitude,
        })
    }

    /// Rows `range` of `L` (`[rows, r]`), multiplied by the scale, into `out`.
    fn left_rows(&self, range: Range<usize>, out: &mut Vec<f32>, decoded: &mut Vec<f32>) {
        let r = self.rank;
        if self.kind == ModuleKind::Linear {
            // Row i's factors are a column of the stored `[r, rows]`.
            out.clear();
            out.resize(range.len() * r, 0.0);
            for p in 0..r {
                self.left.read(p * self.rows + range.start..p * self.rows + range.end, decoded);
                for (o, &v) in out.iter_mut().skip(p).step_by(r).zip(decoded.iter()) {
                    *o = v;
                }
            }
        } else {
            self.left.read(range.start * r..range.end * r, out);
        }
        out.iter_mut().for_each(|x| *x *= self.scale);
    }

    /// Expert `e`'s `R` (`[r, in]`), packed by [`pack_right`], into `out`.
    fn right_packed(&self, e: usize, out: &mut Vec<f32>, decoded: &mut Vec<f32>) {
        let (r, n) = (self.rank, self.in_dim);
        if self.kind == ModuleKind::Linear {
            self.right.read(0..n * r, decoded);
            *out = pack_right(n, &transpose(decoded, n, r));
        } else {
            self.right.read(e * r * n..(e + 1) * r * n, decoded);
            *out = pack_right(n, decoded);
        }
    }

    /// Writes `ΔW` for rows `first..first + delta.len()/in_dim` into `delta`.
    pub fn delta_rows(&self, first: usize, delta: &mut [f32]) {
        self.product_rows(first, delta, false);
    }

    /// `W += ΔW` for rows `first..first + rows.len()/in_dim`, in the product's last step:
    /// the same sum as adding [`Self::delta_rows`]' result (each is one rounding of
    /// w + Σ), without writing ΔW out and reading it back.
    pub fn add_delta_rows(&self, first: usize, rows: &mut [f32]) {
        self.product_rows(first, rows, true);
    }

    fn product_rows(&self, first: usize, dst: &mut [f32], accumulate: bool) {
        let (r, n_in) = (self.rank, self.in_dim);
        let n = dst.len() / n_in;
        SCRATCH.with_borrow_mut(|s| {
            let Scratch { key, right, left, decoded } = s;
            let mut done = 0;
            while done < n {
                let row = first + done;
                let e = row / self.rows_per_expert;
                // Rows up to the end of this expert.
                let seg = (self.rows_per_expert - row % self.rows_per_expert).min(n - done);
                if *key != Some((self.id, e)) {
                    self.right_packed(e, right, decoded);
                    *key = Some((self.id, e));
                }
                self.left_rows(row..row + seg, left, decoded);
                let rhs = Packed { rank: r, cols: n_in, data: &right[..] };
                product(&left[..], rhs, &mut dst[done * n_in..(done + seg) * n_in], accumulate);
                done += seg;
            }
        });
    }

    /// `W += ΔW` (and DoRA's row rescaling) for rows starting at `first`; `delta` holds ΔW.
    pub fn fuse_rows(&self, first: usize, rows: &mut [f32], delta: &[f32]) {
        rows.iter_mut().zip(delta).for_each(|(w, d)| *w += d);
        self.rescale_rows(first, rows);
    }

    /// DoRA's rescaling of fused rows starting at `first` to their magnitudes (none for
    /// LoRA).
    pub fn rescale_rows(&self, first: usize, rows: &mut [f32]) {
        if let Some(m) = &self.magnitude {
            for (i, row) in rows.chunks_exact_mut(self.in_dim).enumerate() {
                let norm = row.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt() as f32;
                let s = m[first + i] / norm;
                row.iter_mut().for_each(|x| *x *= s);
            }
        }
    }
}

/// `[r, n]` row-major → panels of [`TILE_COLS`] columns (`[n / TILE_COLS][r][TILE_COLS]`),
/// then the `n % TILE_COLS` columns left over (`[r][n % TILE_COLS]`): each tile's operand
/// is one contiguous run. Same length as the input.
fn pack_right(n: usize, x: &[f32]) -> Vec<f32> {
    let (full, rest) = (n / TILE_COLS * TILE_COLS, n % TILE_COLS);
    let mut out = Vec::with_capacity(x.len());
    for c in (0..full).step_by(TILE_COLS) {
        x.chunks_exact(n).for_each(|row| out.extend_from_slice(&row[c..c + TILE_COLS]));
    }
    x.chunks_exact(n).for_each(|row| out.extend_from_slice(&row[full..full + rest]));
    out
}

/// One expert's `R` (`[rank, cols]`) as [`pack_right`] laid it out.
#[derive(Clone, Copy)]
struct Packed<'a> {
    rank: usize,
    cols: usize,
    data: &'a [f32],
}

impl Packed<'_> {
    fn full_cols(&self) -> usize {
        self.cols / TILE_COLS * TILE_COLS
    }

    /// The panels, one per [`TILE_COLS`] columns, and the leftover columns.
    fn split(&self) -> (&[f32], &[f32]) {
        self.data.split_at(self.rank * self.full_cols())
    }

    /// Element (p, j) of `R`.
    fn at(&self, p: usize, j: usize) -> f32 {
        let (panels, rest) = self.split();
        let full = self.full_cols();
        if j < full {
            panels[(j / TILE_COLS * self.rank + p) * TILE_COLS + j % TILE_COLS]
        } else {
            rest[p * (self.cols - full) + j - full]
        }
    }
}

/// Whether products are summed with fused multiply-adds: wherever the CPU has them (every
/// arm64, x86-64 since 2013), so the bytes are the same on all of those. Elsewhere each step
/// rounds the product and the sum apart (a software FMA would take hours on a large model).
fn fused() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    return cfg!(any(target_arch = "aarch64", target_feature = "fma"));
}

/// `dst[m×n] = L · R`, or `dst += L · R` if `accumulate` (one rounding of w + Σ), for `lhs`
/// `[m, r]` row-major. Single-threaded: parallelism is over row chunks.
fn product(lhs: &[f32], rhs: Packed<'_>, dst: &mut [f32], accumulate: bool) {
    assert!(rhs.rank > 0 && lhs.len() * rhs.cols == dst.len() * rhs.rank, "LoRA product operand sizes");
    assert!(rhs.data.len() == rhs.rank * rhs.cols, "LoRA product operand sizes");
    if crate::quant::reference_kernels() {
        return reference(rhs.rank, lhs, |p, j| rhs.at(p, j), dst, accumulate, fused());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::quant::simd_level() >= crate::quant::SimdLevel::Avx2 && fused() {
        // SAFETY: the CPU has AVX2 and FMA (runtime-detected).
        return unsafe { product_avx2_fma(lhs, rhs, dst, accumulate) };
    }
    if fused() {
        tiles::<true>(lhs, rhs, dst, accumulate)
    } else {
        tiles::<false>(lhs, rhs, dst, accumulate)
    }
}

/// [`tiles`] compiled for AVX2 with FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn product_avx2_fma(lhs: &[f32], rhs: Packed<'_>, dst: &mut [f32], accumulate: bool) {
    tiles::<true>(lhs, rhs, dst, accumulate)
}

/// `a · b + c`, fused or not.
#[inline(always)]
fn madd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The product over blocks of [`TILE_ROWS`] rows, then single rows.
#[inline(always)]
fn tiles<const FUSED: bool>(lhs: &[f32], rhs: Packed<'_>, dst: &mut [f32], accumulate: bool) {
    let (r, n) = (rhs.rank, rhs.cols);
    let blocked = dst.len() / n / TILE_ROWS * TILE_ROWS;
    let (dst_blocked, dst_rest) = dst.split_at_mut(blocked * n);
    // L's rows interleaved: `a[p][i]` is row i's rank-p factor.
    let mut a = vec![[0f32; TILE_ROWS]; r];
    for (l, d) in lhs.chunks_exact(TILE_ROWS * r).zip(dst_blocked.chunks_exact_mut(TILE_ROWS * n)) {
        for (p, ap) in a.iter_mut().enumerate() {
            *ap = std::array::from_fn(|i| l[i * r + p]);
        }
        rows::<TILE_ROWS, FUSED>(&a, rhs, d, accumulate);
    }
    let mut a1 = vec![[0f32; 1]; r];
    for (l, d) in lhs[blocked * r..].chunks_exact(r).zip(dst_rest.chunks_exact_mut(n)) {
        a1.iter_mut().zip(l).for_each(|(ap, &v)| *ap = [v]);
        rows::<1, FUSED>(&a1, rhs, d, accumulate);
    }
}

/// `M` rows of the product: tiles of [`TILE_COLS`] columns, then the leftover columns.
#[inline(always)]
fn rows<const M: usize, const FUSED: bool>(a: &[[f32; M]], rhs: Packed<'_>, dst: &mut [f32], accumulate: bool) {
    let (n, full) = (rhs.cols, rhs.full_cols());
    let (panels, rest) = rhs.split();
    for (c, panel) in panels.chunks_exact(rhs.rank * TILE_COLS).enumerate() {
        let sums = tile::<M, FUSED>(a, panel);
        for (i, s) in sums.iter().enumerate() {
            let d: &mut [f32; TILE_COLS] =
                (&mut dst[i * n + c * TILE_COLS..][..TILE_COLS]).try_into().expect("a tile row");
            if accumulate {
                for j in 0..TILE_COLS {
                    d[j] += s[j];
                }
            } else {
                *d = *s;
            }
        }
    }
    let left = n - full;
    for j in 0..left {
        for i in 0..M {
            let mut s = a[0][i] * rest[j];
            for p in 1..rhs.rank {
                s = madd::<FUSED>(a[p][i], rest[p * left + j], s);
            }
            let d = &mut dst[i * n + full + j];
            *d = if accumulate { *d + s } else { s };
        }
    }
}

/// `M` rows × [`TILE_COLS`] columns of sums, in registers (plain loops: the compiler kept
/// `array::from_fn`'s on the stack).
#[inline(always)]
fn tile<const M: usize, const FUSED: bool>(a: &[[f32; M]], panel: &[f32]) -> [[f32; TILE_COLS]; M] {
    let mut steps = panel.chunks_exact(TILE_COLS).zip(a);
    let (r0, a0) = steps.next().expect("rank ≥ 1");
    let mut acc = [[0f32; TILE_COLS]; M];
    for i in 0..M {
        for j in 0..TILE_COLS {
            acc[i][j] = a0[i] * r0[j];
        }
    }
    for (rp, ap) in steps {
        for i in 0..M {
            for j in 0..TILE_COLS {
                acc[i][j] = madd::<FUSED>(ap[i], rp[j], acc[i][j]);
            }
        }
    }
    acc
}

/// One element at a time, in the kernel's order: `MLX2GGUF_REFERENCE_KERNELS=1`, and what the
/// tests hold the kernel to. `rhs(p, j)` is element (p, j) of the `[r, n]` factor.
fn reference(r: usize, lhs: &[f32], rhs: impl Fn(usize, usize) -> f32, dst: &mut [f32], accumulate: bool, fused: bool) {
    let n = dst.len() * r / lhs.len();
    for (l, d) in lhs.chunks_exact(r).zip(dst.chunks_exact_mut(n)) {
        for (j, d) in d.iter_mut().enumerate() {
            let mut s = l[0] * rhs(0, j);
            for (p, &lp) in l.iter().enumerate().skip(1) {
                s = if fused { lp.mul_add(rhs(p, j), s) } else { lp * rhs(p, j) + s };
            }
            *d = if accumulate { *d + s } else { s };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (m, n, r) taking every edge of the tiles: leftover rows and columns, rank 1, panels only.
    const SHAPES: [(usize, usize, usize); 7] =
        [(1, 1, 1), (5, 7, 3), (6, 16, 1), (17, 45, 16), (13, 2880, 16), (7, 33, 64), (12, 48, 8)];

    /// A product's operands: `L` `[m, r]`, `R` `[r, n]` plain and packed, and a weight `W`.
    struct Operands {
        lhs: Vec<f32>,
        rhs: Vec<f32>,
        packed: Vec<f32>,
        w: Vec<f32>,
        r: usize,
        n: usize,
    }

    impl Operands {
        fn new(m: usize, n: usize, r: usize) -> Operands {
            let mut next = crate::quant::test_values(17);
            let lhs: Vec<f32> = (0..m * r).map(|_| next() * 0.1).collect();
            let rhs: Vec<f32> = (0..r * n).map(|_| next()).collect();
            let w: Vec<f32> = (0..m * n).map(|i| next() * [1e-3, 1.0, 40.0][i % 3]).collect();
            Operands { packed: pack_right(n, &rhs), lhs, rhs, w, r, n }
        }

        fn view(&self) -> Packed<'_> {
            Packed { rank: self.r, cols: self.n, data: &self.packed }
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn packing_keeps_every_element() {
        for (_, n, r) in SHAPES {
            let ops = Operands::new(1, n, r);
            let (rhs, view) = (&ops.rhs, ops.view());
            assert_eq!(ops.packed.len(), rhs.len());
            for p in 0..r {
                for j in 0..n {
                    assert_eq!(view.at(p, j).to_bits(), rhs[p * n + j].to_bits(), "{r}×{n} at ({p}, {j})");
                }
            }
        }
    }

    /// Every kernel this machine can run writes the reference's bits, summed and accumulated,
    /// fused and not.
    #[test]
    fn kernels_match_the_reference() {
        for (m, n, r) in SHAPES {
            let ops = Operands::new(m, n, r);
            let (lhs, rhs, w, view) = (&ops.lhs, &ops.rhs, &ops.w, ops.view());
            for accumulate in [false, true] {
                let run = |kernel: &dyn Fn(&mut [f32]), fused: bool| {
                    let (mut got, mut want) = (w.clone(), w.clone());
                    kernel(&mut got);
                    reference(r, lhs, |p, j| rhs[p * n + j], &mut want, accumulate, fused);
                    assert_eq!(bits(&got), bits(&want), "{m}×{n}×{r}, fused {fused}, accumulate {accumulate}");
                };
                run(&|d| tiles::<false>(lhs, view, d, accumulate), false);
                if fused() {
                    run(&|d| tiles::<true>(lhs, view, d, accumulate), true);
                    run(&|d| product(lhs, view, d, accumulate), true);
                }
                #[cfg(target_arch = "x86_64")]
                if crate::quant::cpu_has_avx2() && fused() {
                    // SAFETY: the CPU has AVX2 and FMA.
                    run(&|d| unsafe { product_avx2_fma(lhs, view, d, accumulate) }, true);
                }
            }
        }
    }

    /// Accumulating into W gives the bits of W + ΔW computed apart.
    #[test]
    fn accumulated_product_is_the_sum_of_parts() {
        for (m, n, r) in SHAPES {
            let ops = Operands::new(m, n, r);
            let (lhs, w, view) = (&ops.lhs, &ops.w, ops.view());
            let mut delta = vec![f32::NAN; m * n];
            product(lhs, view, &mut delta, false);
            let mut fused = w.clone();
            product(lhs, view, &mut fused, true);
            for (i, ((f, w), d)) in fused.iter().zip(w).zip(&delta).enumerate() {
                assert_eq!(f.to_bits(), (w + d).to_bits(), "{m}×{n}×{r} at {i}");
            }
        }
    }

    /// The bytes of `x` stored as `dtype` (F32 or BF16), and what they decode to.
    fn stored(x: &[f32], dtype: Dtype) -> (Vec<u8>, Vec<f32>) {
        let mut bytes = Vec::new();
        match dtype {
            Dtype::BF16 => bytes.extend(x.iter().flat_map(|&v| crate::quant::bf16::from_f32(v).to_le_bytes())),
            _ => crate::quant::f32::encode(x, &mut bytes),
        }
        let mut back = vec![0f32; x.len()];
        crate::transform::decode_dense(dtype, &bytes, &mut back);
        (bytes, back)
    }

    fn view(data: &[u8], dtype: Dtype) -> TensorView<'_> {
        TensorView { name: "x", dtype, shape: &[], data, file: std::path::Path::new("x") }
    }

    /// Factors read a chunk's rows and an expert at a time give the bits of the product of
    /// the factors decoded whole, in the layout each module kind stores them, for chunks
    /// that start anywhere and cross experts, from f32 and bf16 files; and two deltas used
    /// in turn on one thread do not take each other's decoded `R`.
    #[test]
    fn factors_read_per_chunk_match_the_whole_product() {
        let (r, n, out, experts) = (3, 37, 10, 4);
        let mut next = crate::quant::test_values(5);
        for dtype in [Dtype::F32, Dtype::BF16] {
            for kind in [ModuleKind::Linear, ModuleKind::Switch, ModuleKind::Embedding] {
                let (shape, a_len, b_len) = match kind {
                    ModuleKind::Linear => (vec![out, n], n * r, r * out),
                    ModuleKind::Switch => (vec![experts, out, n], experts * r * n, experts * out * r),
                    ModuleKind::Embedding => (vec![out, n], out * r, r * n),
                };
                let (a_bytes, a) = stored(&(0..a_len).map(|_| next()).collect::<Vec<_>>(), dtype);
                let (b_bytes, b) = stored(&(0..b_len).map(|_| next()).collect::<Vec<_>>(), dtype);
                let d = Delta { a: "a".into(), b: "b".into(), m: None, scale: 1.7, rank: r, kind };
                let f =
                    LoraFactors::from_views(view(&a_bytes, dtype), view(&b_bytes, dtype), None, &d, &shape).unwrap();
                // The whole factors, as they were made before: L [rows, r] scaled, R per expert.
                let (mut left, right, per_expert) = match kind {
                    ModuleKind::Linear => (transpose(&b, r, out), transpose(&a, n, r), out),
                    ModuleKind::Switch => (b.clone(), a.clone(), out),
                    ModuleKind::Embedding => (a.clone(), b.clone(), out),
                };
                left.iter_mut().for_each(|x| *x *= d.scale);
                let rows = left.len() / r;
                let mut want = vec![0f32; rows * n];
                for (i, dst) in want.chunks_exact_mut(n).enumerate() {
                    let re = &right[i / per_expert * r * n..][..r * n];
                    reference(r, &left[i * r..(i + 1) * r], |p, j| re[p * n + j], dst, false, fused());
                }
                let other = LoraFactors::from_views(
                    view(&a_bytes, dtype),
                    view(&b_bytes, dtype),
                    None,
                    &Delta { scale: -2.0, ..d.clone() },
                    &shape,
                )
                .unwrap();
                for chunk in [1, 3, 7, rows] {
                    let mut got = vec![f32::NAN; rows * n];
                    for (c, dst) in got.chunks_mut(chunk * n).enumerate() {
                        let mut scratch = vec![0f32; dst.len()];
                        other.delta_rows(c * chunk, &mut scratch);
                        f.delta_rows(c * chunk, dst);
                    }
                    assert_eq!(bits(&got), bits(&want), "{kind:?} {dtype:?}, chunks of {chunk} rows");
                }
            }
        }
    }
}
