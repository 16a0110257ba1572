//! Fusing a LoRA/DoRA update into row chunks of a weight, with the rank-r products on a
//! GEMM kernel (the `gemm` crate).

use crate::plan::{Delta, ModuleKind};
use crate::source::{TensorStore, TensorView};

/// A delta's factors in f32, laid out for `ΔW[rows of expert e] = L[rows] · R_e`.
pub struct LoraFactors {
    rank: usize,
    in_dim: usize,
    rows_per_expert: usize,
    /// `[rows, r]`, already multiplied by the scale.
    left: Vec<f32>,
    /// `[E, r, in]`.
    right: Vec<f32>,
    /// DoRA magnitudes, one per row of a 2-D weight.
    magnitude: Option<Vec<f32>>,
}

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

impl LoraFactors {
    /// `shape` is the weight's logical shape; the plan has checked every adapter shape.
    pub fn new(store: &TensorStore, d: &Delta, shape: &[usize]) -> Option<LoraFactors> {
        let a = store.get(&d.a)?;
        let b = store.get(&d.b)?;
        let (a, b, r) = (to_f32(&a), to_f32(&b), d.rank);
        let in_dim = *shape.last()?;
        let (mut left, right, rows_per_expert) = match d.kind {
            // lora_a [in, r], lora_b [r, out]: L = Bᵀ [out, r], R = Aᵀ [r, in].
            ModuleKind::Linear => (transpose(&b, r, shape[0]), transpose(&a, in_dim, r), shape[0]),
            // lora_a [E, r, in], lora_b [E, out, r]: L = B (all experts' rows), R = A.
            ModuleKind::Switch => (b, a, shape[1]),
            // lora_a [vocab, r], lora_b [r, dims]: L = A, R = B.
            ModuleKind::Embedding => (a, b, shape[0]),
        };
        left.iter_mut().for_each(|x| *x *= d.scale);
        let magnitude = match &d.m {
            Some(m) => Some(to_f32(&store.get(m)?)),
            None => None,
        };
        Some(LoraFactors { rank: r, in_dim, rows_per_expert, left, right, magnitude })
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
        let mut done = 0;
        while done < n {
            let row = first + done;
            let e = row / self.rows_per_expert;
            // Rows up to the end of this expert.
            let seg = (self.rows_per_expert - row % self.rows_per_expert).min(n - done);
            let lhs = &self.left[row * r..(row + seg) * r];
            let rhs = &self.right[e * r * n_in..(e + 1) * r * n_in];
            matmul(seg, n_in, r, lhs, rhs, &mut dst[done * n_in..(done + seg) * n_in], accumulate);
            done += seg;
        }
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

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, or `dst += lhs · rhs` if `accumulate`, all row-major.
/// Single-threaded: parallelism is over row chunks, and a fixed kernel per shape keeps the
/// output independent of thread count.
fn matmul(m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32], dst: &mut [f32], accumulate: bool) {
    assert!(lhs.len() == m * k && rhs.len() == k * n && dst.len() == m * n, "matmul operand sizes");
    // SAFETY: the three slices are exactly m×k, k×n and m×n with the strides given.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_matches_naive() {
        let (m, n, k) = (5, 7, 3);
        let lhs: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut dst = vec![0f32; m * n];
        matmul(m, n, k, &lhs, &rhs, &mut dst, false);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| lhs[i * k + p] * rhs[p * n + j]).sum();
                assert!((dst[i * n + j] - want).abs() < 1e-6);
            }
        }
    }

    /// Accumulating into W gives the bits of W + ΔW computed apart, over shapes that take
    /// every edge of the kernel's tiles (and values of mixed signs and magnitudes).
    #[test]
    fn accumulated_product_is_the_sum_of_parts() {
        let mut next = crate::quant::test_values(17);
        for (m, n, k) in [(1, 1, 1), (5, 7, 3), (17, 45, 16), (91, 2880, 16), (6, 33, 64)] {
            let lhs: Vec<f32> = (0..m * k).map(|_| next() * 0.1).collect();
            let rhs: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let w: Vec<f32> = (0..m * n).map(|i| next() * [1e-3, 1.0, 40.0][i % 3]).collect();
            let mut delta = vec![0f32; m * n];
            matmul(m, n, k, &lhs, &rhs, &mut delta, false);
            let mut fused = w.clone();
            matmul(m, n, k, &lhs, &rhs, &mut fused, true);
            for (i, ((f, w), d)) in fused.iter().zip(&w).zip(&delta).enumerate() {
                assert_eq!(f.to_bits(), (w + d).to_bits(), "{m}×{n}×{k} at {i}");
            }
        }
    }
}
