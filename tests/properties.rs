//! Property tests: the GGUF writer/reader round trip, the reader on arbitrary bytes, and
//! per-type quantization error bounds.

use mlx2gguf::gguf::{Array, GgufFile, Value};
use mlx2gguf::quant::{decoder, encoder, GgmlType};
use mlx2gguf::sink::{GgufWriter, HeaderTensor};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i64>().prop_map(Value::I64),
        any::<f32>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()).prop_map(Value::F32),
        any::<bool>().prop_map(Value::Bool),
        ".{0,20}".prop_map(Value::String),
        prop::collection::vec(".{0,8}", 0..5).prop_map(|v| Value::Array(Array::String(v))),
        prop::collection::vec(any::<i32>(), 0..20).prop_map(|v| Value::Array(Array::I32(v))),
    ]
}

const TYPES: [GgmlType; 6] =
    [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Mxfp4, GgmlType::Q5_1];

fn tensor() -> impl Strategy<Value = (GgmlType, Vec<u64>)> {
    (0..TYPES.len(), 1u64..3, prop::collection::vec(1u64..4, 0..3)).prop_map(|(t, blocks, rest)| {
        let ty = TYPES[t];
        let mut ne = vec![blocks * ty.block_size() as u64];
        ne.extend(rest);
        (ty, ne)
    })
}

proptest! {
    #[test]
    fn writer_output_reads_back(kvs in prop::collection::btree_map("[a-z.]{1,12}", value(), 0..8),
                                tensors in prop::collection::vec(tensor(), 0..6), seed in any::<u8>()) {
        let kvs: Vec<(String, Value)> = kvs.into_iter().collect();
        let infos: Vec<HeaderTensor> = tensors.iter().enumerate()
            .map(|(i, (t, ne))| HeaderTensor { name: format!("t{i}"), ne: ne.clone(), ggml_type: *t }).collect();
        let mut w = GgufWriter::new(Vec::new(), &kvs, &infos).unwrap();
        let mut datas = Vec::new();
        for (i, (t, ne)) in tensors.iter().enumerate() {
            let n = mlx2gguf::gguf::tensor_nbytes(*t, ne).unwrap() as usize;
            let data: Vec<u8> = (0..n).map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed ^ i as u8)).collect();
            w.write(&data).unwrap();
            datas.push(data);
        }
        let bytes = w.finish().unwrap();
        let f = GgufFile::parse(bytes).unwrap();
        prop_assert_eq!(&f.metadata, &kvs);
        prop_assert_eq!(f.tensors.len(), infos.len());
        for ((t, h), d) in f.tensors.iter().zip(&infos).zip(&datas) {
            prop_assert_eq!(&t.name, &h.name);
            prop_assert_eq!(t.ggml_type, h.ggml_type);
            prop_assert_eq!(f.tensor_data(t), &d[..]);
        }
    }

    #[test]
    fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut b = b"GGUF\x03\0\0\0".to_vec();
        b.extend(bytes);
        let _ = GgufFile::parse(b);
    }

    /// Dequantize(quantize(x)) stays within a per-type bound relative to the block's
    /// largest magnitude.
    #[test]
    fn quantization_error_is_bounded(x in prop::collection::vec(-100.0f32..100.0, 256..257)) {
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (t, rel) in [(GgmlType::F16, 1e-3), (GgmlType::Bf16, 8e-3), (GgmlType::Q8_0, 1.0 / 127.0),
                         (GgmlType::Q6K, 0.05), (GgmlType::Q5_0, 1.0 / 15.0), (GgmlType::Q5K, 0.1),
                         (GgmlType::Q4_1, 0.2), (GgmlType::Q4K, 0.2), (GgmlType::Mxfp4, 0.34)] {
            let (mut q, mut back) = (Vec::new(), Vec::new());
            encoder(t).unwrap()(&x, &mut q);
            decoder(t).unwrap()(&q, &mut back);
            for (a, b) in x.iter().zip(&back) {
                prop_assert!((a - b).abs() <= rel * amax + 1e-6, "{t}: {a} → {b} (amax {amax})");
            }
        }
    }
}
