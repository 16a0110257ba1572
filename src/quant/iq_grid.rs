//! The lattice grids of the IQ1/IQ2/IQ3 types and their neighbour lists, built as ggml's
//! `iq2xs_init_impl` / `iq3xs_init_impl` build them (llama-quantize calls these before it
//! quantizes; the encoders depend on the exact neighbour order).
//!
//! A grid point has D elements, each a level l (2 bits for IQ1/IQ2, 3 for IQ3); the encoder
//! works with the odd values 2l+1. Every lattice index (levels packed, first element lowest)
//! maps either to its grid point or to the list of grid points nearest it: all points at the
//! `nwant` smallest squared distances, ordered by distance then grid index.

use std::sync::OnceLock;

use super::iq_grid_tables as tables;

/// One grid and its neighbour lists.
pub struct Grid<const D: usize> {
    /// Each point's encoder values 2l+1.
    pub points: Vec<[i8; D]>,
    /// Each point's levels packed (the `kgrid_*` entry).
    pub packed: &'static [u16],
    bits: u32,
    /// Lattice index → grid index (≥ 0) or −(offset of its neighbour list + 1).
    map: Vec<i32>,
    /// Per off-grid lattice index: the count, then that many grid indices.
    neighbours: Vec<u16>,
}

/// Where a lattice point lies: on the grid, or off it with its nearest grid points.
pub enum Lookup<'a> {
    On(u16),
    Off(&'a [u16]),
}

impl<const D: usize> Grid<D> {
    fn build(packed: &'static [u16], bits: u32, nwant: usize, map_size: usize) -> Grid<D> {
        let mask = (1u32 << bits) - 1;
        let point =
            |code: u32| -> [i8; D] { std::array::from_fn(|i| (2 * ((code >> (bits * i as u32)) & mask) + 1) as i8) };
        let points: Vec<[i8; D]> = packed.iter().map(|&k| point(k as u32)).collect();
        let mut map = vec![-1i32; map_size];
        for (j, &k) in packed.iter().enumerate() {
            map[k as usize] = j as i32;
        }
        let mut neighbours = Vec::new();
        let mut dist = vec![0u32; points.len()];
        for (i, slot) in map.iter_mut().enumerate() {
            if *slot >= 0 {
                continue;
            }
            let pos = point(i as u32);
            for (d, p) in dist.iter_mut().zip(&points) {
                *d = p.iter().zip(&pos).map(|(&a, &b)| ((a - b) as i32 * (a - b) as i32) as u32).sum();
            }
            *slot = -(neighbours.len() as i32 + 1);
            let count_at = neighbours.len();
            neighbours.push(0);
            // The nwant smallest distinct distances, each's points in grid order: the order
            // of qsort by (distance, index).
            let mut floor = None;
            for _ in 0..nwant {
                let Some(next) = dist.iter().copied().filter(|&d| floor.is_none_or(|f| d > f)).min() else { break };
                neighbours.extend((0..dist.len()).filter(|&j| dist[j] == next).map(|j| j as u16));
                floor = Some(next);
            }
            neighbours[count_at] = (neighbours.len() - count_at - 1) as u16;
        }
        Grid { points, packed, bits, map, neighbours }
    }

    /// The lattice index of levels `l` (each below 2^bits).
    pub fn index(&self, l: &[u8; D]) -> usize {
        l.iter().enumerate().map(|(k, &v)| (v as usize) << (self.bits as usize * k)).sum()
    }

    /// Whether levels `l` are a grid point, else their nearest grid points.
    pub fn lookup(&self, l: &[u8; D]) -> Lookup<'_> {
        let m = self.map[self.index(l)];
        if m >= 0 {
            return Lookup::On(m as u16);
        }
        let at = (-m - 1) as usize;
        let n = self.neighbours[at] as usize;
        Lookup::Off(&self.neighbours[at + 1..at + 1 + n])
    }

    /// ggml `iq2_find_best_neighbour` / `iq3_find_best_neighbour`: the candidate minimizing
    /// Σ w·(scale·q − x)² (the first on ties); writes its levels to `l`.
    pub fn best_neighbour(&self, candidates: &[u16], x: &[f32], w: &[f32], scale: f32, l: &mut [u8; D]) -> u16 {
        let mut best = f32::MAX;
        let mut best_j = candidates[0];
        for &j in candidates {
            let mut d2 = 0.0f32;
            for ((&q, &xv), &wv) in self.points[j as usize].iter().zip(x).zip(w) {
                let diff = scale * q as f32 - xv;
                d2 += wv * diff * diff;
            }
            if d2 < best {
                best = d2;
                best_j = j;
            }
        }
        for (li, &q) in l.iter_mut().zip(&self.points[best_j as usize]) {
            *li = ((q - 1) / 2) as u8;
        }
        best_j
    }

    /// The decoded values of point `j`: level l → `values[l]` (ggml-common.h's `*_grid`
    /// tables are these bytes).
    pub fn decoded(&self, j: usize, values: &[i8]) -> [i8; D] {
        let mask = (1u32 << self.bits) - 1;
        std::array::from_fn(|i| values[((self.packed[j] as u32 >> (self.bits * i as u32)) & mask) as usize])
    }
}

/// Lattice size of the 2-bit grids: indices with every level ≤ 2 (`kmap_size` in ggml).
const MAP_2BIT: usize = 43692;
const MAP_3BIT: usize = 4096;

macro_rules! grid {
    ($(#[$doc:meta])* $name:ident, $d:literal, $table:ident, $bits:literal, $nwant:literal, $map:ident) => {
        $(#[$doc])*
        pub fn $name() -> &'static Grid<$d> {
            static G: OnceLock<Grid<$d>> = OnceLock::new();
            G.get_or_init(|| Grid::build(&tables::$table, $bits, $nwant, $map))
        }
    };
}

grid!(/// IQ2_XXS: 256 points, neighbours at the 2 nearest distances.
    iq2xxs, 8, KGRID_IQ2XXS, 2, 2, MAP_2BIT);
grid!(/// IQ2_XS: 512 points, 2 distances.
    iq2xs, 8, KGRID_IQ2XS, 2, 2, MAP_2BIT);
grid!(/// IQ2_S: 1024 points, the nearest distance only.
    iq2s, 8, KGRID_IQ2S, 2, 1, MAP_2BIT);
grid!(/// IQ1_S and IQ1_M: 2048 points, 3 distances.
    iq1s, 8, KGRID_IQ1S, 2, 3, MAP_2BIT);
grid!(/// IQ3_XXS: 256 points of 4, 2 distances.
    iq3xxs, 4, KGRID_IQ3XXS, 3, 2, MAP_3BIT);
grid!(/// IQ3_S: 512 points of 4, 3 distances.
    iq3s, 4, KGRID_IQ3S, 3, 3, MAP_3BIT);

/// ggml `ksigns_iq2xs[i]`: seven sign bits and an eighth that makes the count of set bits even.
pub fn ksigns(i: u8) -> u8 {
    let i = i & 127;
    i | (((i.count_ones() & 1) as u8) << 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_map_to_themselves() {
        let g = iq3s();
        for (j, p) in g.points.iter().enumerate() {
            let l: [u8; 4] = std::array::from_fn(|i| ((p[i] - 1) / 2) as u8);
            assert!(matches!(g.lookup(&l), Lookup::On(k) if k as usize == j));
        }
    }

    #[test]
    fn neighbour_lists_are_nearest_first_in_grid_order() {
        let g = iq2xxs();
        let l = [2u8, 2, 2, 2, 2, 2, 2, 2];
        let Lookup::Off(n) = g.lookup(&l) else { panic!("all-2 is not an IQ2_XXS point") };
        let pos = [5i8; 8];
        let d = |j: u16| g.points[j as usize].iter().zip(&pos).map(|(&a, &b)| ((a - b) as i32).pow(2)).sum::<i32>();
        assert!(!n.is_empty());
        assert!(n.windows(2).all(|w| (d(w[0]), w[0]) < (d(w[1]), w[1])));
        let distinct: std::collections::BTreeSet<i32> = n.iter().map(|&j| d(j)).collect();
        assert_eq!(distinct.len(), 2);
        // Nothing closer was left out.
        let min = (0..g.points.len() as u16).map(d).min().unwrap();
        assert_eq!(d(n[0]), min);
    }

    #[test]
    fn ksigns_have_even_parity() {
        assert_eq!(ksigns(0), 0);
        assert_eq!(ksigns(1), 129);
        assert_eq!(ksigns(3), 3);
        assert!((0..128u8).all(|i| ksigns(i).count_ones().is_multiple_of(2)));
    }
}
