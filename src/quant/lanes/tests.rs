use super::*;

/// Every operation on both instruction sets, on lanes that probe the edge cases.
fn probe<S: Isa>() -> Vec<u32> {
    let a = F8::<S>::new([1.0, f32::NAN, -2.0, 3.0, -0.0, 0.0, f32::INFINITY, 1e30]);
    let b = F8::<S>::new([2.0, 1.0, f32::NAN, 3.0, 0.0, -0.0, -1.0, 3e9]);
    let mut out = Vec::new();
    // NaN bits from arithmetic are unspecified (and differ when the compiler folds them).
    let floats = |v: F8<S>| v.to_array().map(|x| if x.is_nan() { 0x7FC0_0000 } else { x.to_bits() });
    let mut f = |v: F8<S>| out.extend(floats(v));
    f(a + b);
    f(a - b);
    f(a * b);
    f(a / b);
    f(a.abs());
    f(a.fast_min(b));
    f(a.fast_max(b));
    for m in [a.gt(b), a.ge(b), a.lt(b), a.eq(b), a.is_nan(), !a.gt(b), a.gt(b) | a.lt(b), a.gt(b) & a.lt(b)] {
        f(m.select(a, b));
        f(m.and(a));
        f(m.to_i32().to_f32());
        f(F8::splat(m.bitmask() as f32));
        f(F8::splat(f32::from(u8::from(m.any()) * 2 + u8::from(m.all()))));
    }
    let base: Vec<f32> = (0..80).map(|i| i as f32 * 1.5 - 7.0).collect();
    let starts = [0, 72, 8, 3, 40, 16, 64, 9];
    for v in F8::<S>::columns::<8>(&base, starts) {
        f(v);
    }
    for v in F8::<S>::columns::<4>(&base, starts) {
        f(v);
    }
    for v in F8::<S>::columns::<3>(&base, starts) {
        f(v);
    }
    let i = I8::<S>::new([0, -1, 7, i32::MAX, i32::MIN, 255, 16, -300]);
    let j = I8::<S>::new([3, 5, -7, 1, 1, 0, 16, 2]);
    let mut g = |v: I8<S>| out.extend(v.to_array().map(|x| x as u32));
    g(i + j);
    g(i - j);
    g(i & j);
    g(i | j);
    g(-i);
    g(i.shl::<27>());
    g(i.max(j));
    g(i.min(j));
    g(i.eq(j).to_i32());
    g(i.eq(j).select_i(i, j));
    g(a.trunc());
    g(a.to_bits());
    g(nearest_int(a * F8::splat(0.37)));
    g(I8::splat(i.sign_bits() as i32));
    g(a.permute(I8::new([7, 0, 15, -1, 3, 2, 8, 1])).to_bits());
    let halves = [1.0f32 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0, 65519.0, 65520.0, 3e-8, -2.9e-8, 6.1e-5, f32::NAN, -0.0];
    out.extend(halves.map(|v| u32::from(S::f16_bits(v))));
    let k = I8::<S>::new([0, 1, 2, 3, 4, 5, 6, 255]);
    out.extend(k.low_bytes(I8::new([9, 10, 11, 12, 13, 14, 15, 128])).map(u32::from));
    out.extend(I8::<S>::from_bytes([0, 1, 127, 128, 200, 255, 7, 64]).to_array().map(|v| v as u32));
    out
}

#[test]
fn every_operation_is_the_same_on_every_instruction_set() {
    let portable = probe::<Portable>();
    // The baseline's reading of the probes, lane by lane, for the parts with a scalar meaning.
    let first = &portable[..8];
    let want: Vec<u32> =
        [3.0f32, f32::NAN, f32::NAN, 6.0, 0.0, 0.0, f32::INFINITY, 1e30 + 3e9].iter().map(|v| v.to_bits()).collect();
    assert_eq!(first, &want[..]);
    // Columns: lane k of column i is base[starts[k] + i].
    let col = |i: usize, k: usize| ([0, 72, 8, 3, 40, 16, 64, 9][k] + i) as f32 * 1.5 - 7.0;
    let columns: Vec<u32> = (0..8).flat_map(|i| (0..8).map(move |k| col(i, k).to_bits())).collect();
    assert!(portable.windows(64).any(|w| w == &columns[..]));
    // Bytes widen to lanes unsigned.
    assert_eq!(portable[portable.len() - 8..], [0, 1, 127, 128, 200, 255, 7, 64]);
    #[cfg(target_arch = "x86_64")]
    if crate::quant::cpu_has_avx2() {
        // SAFETY: the CPU has AVX2 and F16C.
        let avx2 = unsafe { probe_avx2() };
        assert_eq!(avx2, portable);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn probe_avx2() -> Vec<u32> {
    probe::<Avx2>()
}

/// Each lane of `permute` and `permute16` against its scalar meaning, indices out of range
/// included (masked: & 7, & 15).
fn check_permutes<S: Isa>() {
    let low: [f32; 8] = std::array::from_fn(|k| k as f32 + 0.5);
    let high: [f32; 8] = std::array::from_fn(|k| -(k as f32) - 8.25);
    let both: Vec<f32> = low.iter().chain(&high).copied().collect();
    for idx in [[7, 0, 15, -1, 3, 2, 8, 1], [9, 10, 11, 12, 13, 14, 16, 31], [4, 4, 4, 4, -16, -9, 23, 6]] {
        let i = I8::<S>::new(idx);
        let got = F8::<S>::new(low).permute(i).to_array();
        assert_eq!(got, idx.map(|k| low[(k & 7) as usize]), "permute {idx:?}");
        let got = F8::permute16(F8::<S>::new(low), F8::new(high), i).to_array();
        assert_eq!(got, idx.map(|k| both[(k & 15) as usize]), "permute16 {idx:?}");
    }
}

#[test]
fn permutes_pick_the_indexed_lane() {
    check_permutes::<Portable>();
    #[cfg(target_arch = "x86_64")]
    if crate::quant::cpu_has_avx2() {
        // SAFETY: the CPU has AVX2 and F16C.
        unsafe { check_permutes_avx2() };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn check_permutes_avx2() {
    check_permutes::<Avx2>()
}

#[test]
fn nearest_int_is_the_scalar_trick() {
    let a = [0.0f32, -0.0, 0.5, 1.5, 2.5, -2.5, 1e9, f32::NAN];
    let got = nearest_int(F8::<Portable>::new(a)).to_array();
    for k in 0..8 {
        assert_eq!(got[k], super::super::kquant::nearest_int(a[k]), "{}", a[k]);
    }
}
