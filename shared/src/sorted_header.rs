//! A safetensors file whose header lists its entries in name order, so that exporting the same
//! tensors twice writes the same bytes.
//!
//! The safetensors writers (Burn's store and the `safetensors` crate) take the file's metadata
//! as a `HashMap` and write it in that map's random order: every export of unchanged heads
//! rewrote every file. The header is JSON, and each tensor's place is given by its offsets into
//! the data that follows, so the entries can be reordered without touching the data.

use std::collections::BTreeMap;

use serde_json::Value;

/// `bytes` with its header's entries and metadata in name order, padded with spaces to a
/// multiple of 8 bytes as the format's writers do (so the data stays aligned); the data is
/// unchanged.
pub fn with_sorted_header(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let length_field = bytes
        .get(..8)
        .ok_or("shorter than a safetensors header's length field")?;
    let header_length = u64::from_le_bytes(length_field.try_into().expect("8 bytes"));
    let header_end = usize::try_from(header_length)
        .ok()
        .and_then(|length| length.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or("the header runs past the end of the file")?;
    let mut entries: BTreeMap<String, Value> = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| format!("the header is not a JSON object: {e}"))?;
    if let Some(metadata) = entries.get_mut("__metadata__") {
        let sorted: BTreeMap<String, Value> = serde_json::from_value(metadata.take())
            .map_err(|e| format!("the header's metadata is not an object: {e}"))?;
        *metadata = serde_json::to_value(sorted).expect("a map of JSON values");
    }
    let mut header = serde_json::to_vec(&entries).expect("a map of JSON values");
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut sorted = Vec::with_capacity(8 + header.len() + bytes.len() - header_end);
    sorted.extend_from_slice(&(header.len() as u64).to_le_bytes());
    sorted.extend_from_slice(&header);
    sorted.extend_from_slice(&bytes[header_end..]);
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use safetensors::{Dtype, SafeTensors};
    use std::collections::HashMap;

    fn file(metadata: &[(&str, &str)]) -> Vec<u8> {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let b = [9u8, 10, 11, 12];
        let views = [
            ("b", TensorView::new(Dtype::U8, vec![4], &b).unwrap()),
            ("a", TensorView::new(Dtype::U8, vec![2, 4], &a).unwrap()),
        ];
        let metadata: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(views, Some(metadata)).unwrap()
    }

    #[test]
    fn the_same_tensors_and_metadata_give_the_same_bytes_and_load_as_before() {
        let keys = [
            ("format", "pt"),
            ("version", "2"),
            ("producer", "x"),
            ("z", "1"),
        ];
        let mut reversed = keys;
        reversed.reverse();
        // Each HashMap has its own random order; many draws make a differing pair certain.
        let outputs: Vec<Vec<u8>> = (0..16)
            .map(|i| with_sorted_header(&file(if i % 2 == 0 { &keys } else { &reversed })).unwrap())
            .collect();
        assert!(outputs.windows(2).all(|pair| pair[0] == pair[1]));

        let sorted = SafeTensors::deserialize(&outputs[0]).unwrap();
        let original_bytes = file(&keys);
        let original = SafeTensors::deserialize(&original_bytes).unwrap();
        for name in ["a", "b"] {
            let (x, y) = (sorted.tensor(name).unwrap(), original.tensor(name).unwrap());
            assert_eq!(
                (x.dtype(), x.shape(), x.data()),
                (y.dtype(), y.shape(), y.data())
            );
        }
        let (header_length, header) = SafeTensors::read_metadata(&outputs[0]).unwrap();
        assert_eq!((8 + header_length) % 8, 0, "the data stays aligned");
        assert_eq!(header.metadata().as_ref().unwrap()["version"], "2");
    }

    #[test]
    fn a_file_cut_short_or_without_a_json_header_is_an_error() {
        let whole = file(&[("v", "1")]);
        assert!(with_sorted_header(&whole[..5]).is_err());
        assert!(with_sorted_header(&whole[..20]).is_err());
        let mut not_json = whole.clone();
        not_json[8] = b'#';
        assert!(with_sorted_header(&not_json).is_err());
    }
}
