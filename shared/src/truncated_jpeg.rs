//! Detecting JPEG files cut short, which the decoder accepts.
//!
//! The image crate runs its JPEG decoder in lenient mode: a file that stops part-way (an
//! interrupted download or copy) decodes without error and the missing part comes out grey. A
//! training image like that teaches wrong pixels under right labels, and a visitor's photo would be
//! judged on grey, so [`decode_image`](crate::preprocess::decode_image) refuses it. The
//! check walks the marker structure (segment lengths, then the entropy-coded scan data up to the
//! next real marker) and reports a file whose bytes run out before the end-of-image marker.
//! Anything else that looks malformed is left for the decoder to judge.

const MARKER_PREFIX: u8 = 0xFF;
const START_OF_IMAGE: u8 = 0xD8;
const END_OF_IMAGE: u8 = 0xD9;
const START_OF_SCAN: u8 = 0xDA;
/// Restart markers RST0 to RST7 and TEM stand alone: no length, no payload.
const STANDALONE: [u8; 9] = [0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0x01];
/// `FF 00` inside scan data is an escaped data byte, not a marker.
const STUFFED_ZERO: u8 = 0x00;

/// Whether `bytes` start like a JPEG but end before its end-of-image marker. Bytes that are not
/// a JPEG give `false`.
pub fn is_truncated_jpeg(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[MARKER_PREFIX, START_OF_IMAGE]) {
        return false;
    }
    let mut position = 2;
    loop {
        // Between segments: optional fill bytes (FF), then FF and the marker code.
        if position >= bytes.len() {
            return true;
        }
        if bytes[position] != MARKER_PREFIX {
            return false;
        }
        while bytes.get(position) == Some(&MARKER_PREFIX) {
            position += 1;
        }
        let Some(&marker) = bytes.get(position) else {
            return true;
        };
        position += 1;
        match marker {
            END_OF_IMAGE => return false,
            STUFFED_ZERO => return false,
            code if STANDALONE.contains(&code) => continue,
            _ => {}
        }
        let Some(length) = bytes.get(position..position + 2) else {
            return true;
        };
        let length = u16::from_be_bytes([length[0], length[1]]) as usize;
        if length < 2 {
            return false;
        }
        position += length;
        if position > bytes.len() {
            return true;
        }
        if marker == START_OF_SCAN {
            match end_of_scan_data(bytes, position) {
                Some(marker_position) => position = marker_position,
                None => return true,
            }
        }
    }
}

/// Position of the first real marker at or after `start` in entropy-coded data, or `None` if the
/// data runs to the end of the bytes.
fn end_of_scan_data(bytes: &[u8], start: usize) -> Option<usize> {
    let mut position = start;
    loop {
        let prefix = position + bytes[position..].iter().position(|&b| b == MARKER_PREFIX)?;
        match *bytes.get(prefix + 1)? {
            STUFFED_ZERO => position = prefix + 2,
            code if STANDALONE.contains(&code) => position = prefix + 2,
            // A fill byte: the marker follows.
            MARKER_PREFIX => position = prefix + 1,
            _ => return Some(prefix),
        }
    }
}
