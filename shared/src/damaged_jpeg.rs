//! Finding damaged JPEG files, which the decoder accepts.
//!
//! The image crate runs its JPEG decoder in lenient mode, as browsers do: a file that stops
//! part-way, or whose scan data lost bytes, decodes without error and the missing part comes out
//! as flat blocks. A training image like that teaches wrong pixels under right labels, and a
//! visitor's photo would be judged on them, so [`decode_image`](crate::preprocess::decode_image)
//! refuses it. Two walks find the damage:
//! - the marker structure (segment lengths, then the entropy-coded data up to the next real
//!   marker), which finds a file cut short or a marker broken inside the data;
//! - for sequential Huffman-coded frames (baseline and extended, nearly every photo), the scan
//!   data itself: every block's Huffman codes are read, without computing any pixel, and the
//!   walk checks that the data holds every block the frame's size calls for and no impossible
//!   code. That finds a scan cut short inside a file that still ends with its end-of-image
//!   marker, and most random damage.
//!
//! Progressive and arithmetic-coded frames get the structural walk only. Anything else that
//! looks malformed is left for the decoder to judge.

use std::fmt;

const MARKER_PREFIX: u8 = 0xFF;
const START_OF_IMAGE: u8 = 0xD8;
const END_OF_IMAGE: u8 = 0xD9;
const START_OF_SCAN: u8 = 0xDA;
const DEFINE_HUFFMAN_TABLES: u8 = 0xC4;
const DEFINE_RESTART_INTERVAL: u8 = 0xDD;
/// Baseline and extended sequential frames with Huffman coding: the ones whose scans are walked.
const SEQUENTIAL_HUFFMAN_FRAMES: [u8; 2] = [0xC0, 0xC1];
/// Every other start-of-frame code (progressive, lossless, hierarchical, arithmetic).
const OTHER_FRAMES: [u8; 11] = [
    0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF,
];
/// Restart markers RST0 to RST7 and TEM stand alone: no length, no payload.
const RESTART_MARKERS: std::ops::RangeInclusive<u8> = 0xD0..=0xD7;
const TEMPORARY: u8 = 0x01;
/// `FF 00` inside scan data is an escaped data byte, not a marker.
const STUFFED_ZERO: u8 = 0x00;
/// Coefficients per 8×8 block.
const BLOCK_COEFFICIENTS: usize = 64;

/// What is wrong with a damaged JPEG file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JpegDamage {
    /// The bytes end before the end-of-image marker.
    CutShort,
    /// The marker structure breaks inside the data, though the file ends with its end-of-image
    /// marker.
    BrokenMarkers,
    /// A scan's data stops before every block of the frame is coded: part of the photo is
    /// missing, although the file may still end with its end-of-image marker.
    ScanEndsEarly {
        blocks_read: u64,
        blocks_expected: u64,
    },
    /// A scan's data holds a bit pattern that its Huffman tables cannot code: bytes are damaged.
    ImpossibleCode { block: u64, blocks_expected: u64 },
}

impl fmt::Display for JpegDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JpegDamage::CutShort => {
                write!(
                    f,
                    "truncated JPEG: the data ends before the end-of-image marker"
                )
            }
            JpegDamage::BrokenMarkers => write!(
                f,
                "corrupt JPEG: its marker structure breaks inside the data, though the file ends \
                 with its end-of-image marker (damaged, not cut short)"
            ),
            JpegDamage::ScanEndsEarly {
                blocks_read,
                blocks_expected,
            } => write!(
                f,
                "corrupt JPEG: its image data stops after {blocks_read} of its \
                 {blocks_expected} blocks, so {:.0}% of the photo is missing (the data was cut \
                 or lost bytes, though the file still ends with its end-of-image marker)",
                100.0 * (blocks_expected - blocks_read) as f64 / *blocks_expected as f64
            ),
            JpegDamage::ImpossibleCode {
                block,
                blocks_expected,
            } => write!(
                f,
                "corrupt JPEG: its image data is damaged at block {} of {blocks_expected} (a bit \
                 pattern its Huffman tables cannot code)",
                block + 1
            ),
        }
    }
}

/// What is wrong with `bytes` if they start like a JPEG and are damaged. Bytes that are not a
/// JPEG give `None`, as do JPEG files whose damage this walk cannot see.
pub fn find_damage(bytes: &[u8]) -> Option<JpegDamage> {
    if !bytes.starts_with(&[MARKER_PREFIX, START_OF_IMAGE]) {
        return None;
    }
    let mut coding = Coding::default();
    let mut position = 2;
    loop {
        // Between segments: optional fill bytes (FF), then FF and the marker code.
        if position >= bytes.len() {
            return Some(JpegDamage::CutShort);
        }
        if bytes[position] != MARKER_PREFIX {
            return None;
        }
        while bytes.get(position) == Some(&MARKER_PREFIX) {
            position += 1;
        }
        let Some(&marker) = bytes.get(position) else {
            return Some(JpegDamage::CutShort);
        };
        position += 1;
        match marker {
            END_OF_IMAGE | STUFFED_ZERO => return None,
            code if RESTART_MARKERS.contains(&code) || code == TEMPORARY => continue,
            _ => {}
        }
        let Some(length) = bytes.get(position..position + 2) else {
            return Some(JpegDamage::CutShort);
        };
        let length = u16::from_be_bytes([length[0], length[1]]) as usize;
        if length < 2 {
            return None;
        }
        let segment_end = position + length;
        if segment_end > bytes.len() {
            return Some(JpegDamage::CutShort);
        }
        let payload = &bytes[position + 2..segment_end];
        position = segment_end;
        match marker {
            code if SEQUENTIAL_HUFFMAN_FRAMES.contains(&code) => {
                coding.frame = Frame::parse(payload)
            }
            code if OTHER_FRAMES.contains(&code) => coding.frame = None,
            DEFINE_HUFFMAN_TABLES => coding.define_tables(payload),
            DEFINE_RESTART_INTERVAL if payload.len() >= 2 => {
                coding.restart_interval = u16::from_be_bytes([payload[0], payload[1]]) as u64
            }
            START_OF_SCAN => {
                let Some(data_end) = end_of_scan_data(bytes, position) else {
                    return Some(JpegDamage::CutShort);
                };
                if let Some(damage) = coding.walk_scan(payload, &bytes[position..data_end]) {
                    return Some(damage);
                }
                position = data_end;
            }
            _ => {}
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
            code if RESTART_MARKERS.contains(&code) || code == TEMPORARY => position = prefix + 2,
            // A fill byte: the marker follows.
            MARKER_PREFIX => position = prefix + 1,
            _ => return Some(prefix),
        }
    }
}

/// A frame component's id and sampling factors.
#[derive(Debug, Clone, Copy)]
struct Component {
    id: u8,
    horizontal: u64,
    vertical: u64,
}

/// The size and components of a sequential frame.
#[derive(Debug, Clone)]
struct Frame {
    width: u64,
    height: u64,
    components: Vec<Component>,
}

impl Frame {
    /// `None` for a frame this walk does not check: zero height (set later by a DNL marker),
    /// zero width, or sampling factors outside 1 to 4.
    fn parse(payload: &[u8]) -> Option<Frame> {
        let height = u16::from_be_bytes([*payload.get(1)?, *payload.get(2)?]) as u64;
        let width = u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]) as u64;
        let count = *payload.get(5)? as usize;
        let components = (0..count)
            .map(|i| {
                let entry = payload.get(6 + 3 * i..9 + 3 * i)?;
                let (horizontal, vertical) = ((entry[1] >> 4) as u64, (entry[1] & 0x0F) as u64);
                let valid = (1..=4).contains(&horizontal) && (1..=4).contains(&vertical);
                valid.then_some(Component {
                    id: entry[0],
                    horizontal,
                    vertical,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        (width > 0 && height > 0 && !components.is_empty()).then_some(Frame {
            width,
            height,
            components,
        })
    }

    fn max_sampling(&self) -> (u64, u64) {
        let horizontal = self.components.iter().map(|c| c.horizontal).max();
        let vertical = self.components.iter().map(|c| c.vertical).max();
        (horizontal.unwrap_or(1), vertical.unwrap_or(1))
    }
}

/// Bits looked up at once when decoding a Huffman code: most codes are this short.
const LOOKUP_BITS: u32 = 9;

/// A Huffman table in canonical form, with a lookup of the short codes.
#[derive(Debug, Clone)]
struct HuffmanTable {
    /// Per code length 1 to 16: the first code of that length, how many there are, and the
    /// index of the first one's symbol.
    first_code: [u32; 16],
    counts: [u32; 16],
    first_symbol: [usize; 16],
    symbols: Vec<u8>,
    /// For every `LOOKUP_BITS`-bit prefix, the length and symbol of the code it starts with,
    /// or 0 when that code is longer.
    lookup: Vec<u16>,
}

impl HuffmanTable {
    fn new(counts: [u8; 16], symbols: Vec<u8>) -> Self {
        let mut table = HuffmanTable {
            first_code: [0; 16],
            counts: counts.map(u32::from),
            first_symbol: [0; 16],
            symbols,
            lookup: vec![0; 1 << LOOKUP_BITS],
        };
        let (mut code, mut index) = (0u32, 0usize);
        for length in 0..16 {
            table.first_code[length] = code;
            table.first_symbol[length] = index;
            let bits = length as u32 + 1;
            for offset in 0..table.counts[length] {
                if bits <= LOOKUP_BITS {
                    let Some(&symbol) = table.symbols.get(index + offset as usize) else {
                        break;
                    };
                    let shift = LOOKUP_BITS - bits;
                    let first = ((code + offset) << shift) as usize;
                    let entry = (bits as u16) << 8 | symbol as u16;
                    for slot in table.lookup.iter_mut().skip(first).take(1 << shift) {
                        *slot = entry;
                    }
                }
            }
            code = (code + table.counts[length]) << 1;
            index += table.counts[length] as usize;
        }
        table
    }

    /// The next symbol, or `Err` at a code the table does not hold, or `Ok(None)` when the bits
    /// run out.
    fn decode(&self, bits: &mut ScanBits) -> Result<Option<u8>, ImpossibleCode> {
        bits.refill();
        let entry = self.lookup[bits.peek(LOOKUP_BITS) as usize];
        if entry != 0 {
            let length = (entry >> 8) as u32;
            return Ok(bits.consume(length).then_some(entry as u8));
        }
        for length in 1..=16u32 {
            if length > bits.available {
                return Ok(None);
            }
            let slot = length as usize - 1;
            let offset = bits.peek(length).wrapping_sub(self.first_code[slot]);
            if offset < self.counts[slot] {
                bits.consume(length);
                let symbol = self.symbols.get(self.first_symbol[slot] + offset as usize);
                return symbol.copied().map(Some).ok_or(ImpossibleCode);
            }
        }
        Err(ImpossibleCode)
    }
}

/// A bit pattern that no code of the table matches.
struct ImpossibleCode;

/// The coding state that the segments before a scan set.
#[derive(Debug, Default)]
struct Coding {
    /// `None` until a sequential Huffman frame, and for every other kind of frame.
    frame: Option<Frame>,
    dc_tables: [Option<HuffmanTable>; 4],
    ac_tables: [Option<HuffmanTable>; 4],
    restart_interval: u64,
}

/// One component of a scan: its frame component and its tables.
struct ScanComponent<'a> {
    component: Component,
    dc: &'a HuffmanTable,
    ac: &'a HuffmanTable,
}

/// How a scan's blocks group into coding units, restart intervals count these.
struct ScanLayout {
    units: u64,
    /// Per unit, the index into the scan's components of each block, in coding order.
    unit_blocks: Vec<usize>,
}

impl Coding {
    fn define_tables(&mut self, mut payload: &[u8]) {
        while payload.len() >= 17 {
            let (class, id) = (payload[0] >> 4, (payload[0] & 0x0F) as usize);
            let mut counts = [0u8; 16];
            counts.copy_from_slice(&payload[1..17]);
            let total = counts.iter().map(|&c| c as usize).sum::<usize>();
            let Some(symbols) = payload.get(17..17 + total) else {
                return;
            };
            let table = HuffmanTable::new(counts, symbols.to_vec());
            match (class, id) {
                (0, 0..=3) => self.dc_tables[id] = Some(table),
                (1, 0..=3) => self.ac_tables[id] = Some(table),
                _ => {}
            }
            payload = &payload[17 + total..];
        }
    }

    /// Damage in one scan's entropy-coded `data`, or `None` when every block reads, and when
    /// the scan is of a kind this walk does not check.
    fn walk_scan(&self, header: &[u8], data: &[u8]) -> Option<JpegDamage> {
        let frame = self.frame.as_ref()?;
        let components = self.scan_components(frame, header)?;
        let layout = scan_layout(frame, &components);
        let blocks_expected = layout.units * layout.unit_blocks.len() as u64;
        let mut bits = ScanBits::new(data);
        let mut blocks_read = 0u64;
        for unit in 0..layout.units {
            if self.restart_interval > 0 && unit > 0 && unit % self.restart_interval == 0 {
                bits.restart();
            }
            for &component in &layout.unit_blocks {
                match read_block(&components[component], &mut bits) {
                    Ok(true) => blocks_read += 1,
                    Ok(false) => {
                        return Some(JpegDamage::ScanEndsEarly {
                            blocks_read,
                            blocks_expected,
                        });
                    }
                    Err(ImpossibleCode) => {
                        return Some(JpegDamage::ImpossibleCode {
                            block: blocks_read,
                            blocks_expected,
                        });
                    }
                }
            }
        }
        None
    }

    /// The scan's components with their tables; `None` for a scan this walk does not check
    /// (a missing table, as Motion-JPEG frames have, or a spectral selection of a
    /// progressive scan).
    fn scan_components<'a>(
        &'a self,
        frame: &Frame,
        header: &[u8],
    ) -> Option<Vec<ScanComponent<'a>>> {
        let count = *header.first()? as usize;
        let selection = header.get(1 + 2 * count..4 + 2 * count)?;
        if selection[0] != 0 || selection[1] != 63 {
            return None;
        }
        (0..count)
            .map(|i| {
                let id = *header.get(1 + 2 * i)?;
                let tables = *header.get(2 + 2 * i)?;
                let component = *frame.components.iter().find(|c| c.id == id)?;
                Some(ScanComponent {
                    component,
                    dc: self.dc_tables.get((tables >> 4) as usize)?.as_ref()?,
                    ac: self.ac_tables.get((tables & 0x0F) as usize)?.as_ref()?,
                })
            })
            .collect()
    }
}

/// Units and blocks per unit: one block per unit for a scan of one component, else the
/// interleaved minimum coded unit of every component's sampling factors.
fn scan_layout(frame: &Frame, components: &[ScanComponent]) -> ScanLayout {
    let (max_horizontal, max_vertical) = frame.max_sampling();
    if let [only] = components {
        let width = (frame.width * only.component.horizontal).div_ceil(max_horizontal);
        let height = (frame.height * only.component.vertical).div_ceil(max_vertical);
        return ScanLayout {
            units: width.div_ceil(8) * height.div_ceil(8),
            unit_blocks: vec![0],
        };
    }
    let columns = frame.width.div_ceil(8 * max_horizontal);
    let rows = frame.height.div_ceil(8 * max_vertical);
    let unit_blocks = components
        .iter()
        .enumerate()
        .flat_map(|(index, c)| {
            std::iter::repeat_n(
                index,
                (c.component.horizontal * c.component.vertical) as usize,
            )
        })
        .collect();
    ScanLayout {
        units: columns * rows,
        unit_blocks,
    }
}

/// Reads one block's codes: `Ok(false)` when the data runs out first.
fn read_block(component: &ScanComponent, bits: &mut ScanBits) -> Result<bool, ImpossibleCode> {
    let Some(size) = component.dc.decode(bits)? else {
        return Ok(false);
    };
    if !bits.skip(size as u32) {
        return Ok(false);
    }
    let mut coefficient = 1;
    while coefficient < BLOCK_COEFFICIENTS {
        let Some(run_size) = component.ac.decode(bits)? else {
            return Ok(false);
        };
        let (run, size) = ((run_size >> 4) as usize, run_size & 0x0F);
        if size == 0 {
            match run {
                // Sixteen zeros.
                15 => coefficient += 16,
                // End of block.
                _ => break,
            }
            continue;
        }
        coefficient += run;
        if coefficient >= BLOCK_COEFFICIENTS {
            return Err(ImpossibleCode);
        }
        if !bits.skip(size as u32) {
            return Ok(false);
        }
        coefficient += 1;
    }
    if coefficient > BLOCK_COEFFICIENTS {
        return Err(ImpossibleCode);
    }
    Ok(true)
}

/// The bits of entropy-coded data, with stuffed zeros removed, stopping at any marker.
struct ScanBits<'a> {
    data: &'a [u8],
    position: usize,
    /// Buffered bits, the next one highest.
    buffer: u64,
    available: u32,
}

impl<'a> ScanBits<'a> {
    fn new(data: &'a [u8]) -> Self {
        ScanBits {
            data,
            position: 0,
            buffer: 0,
            available: 0,
        }
    }

    /// Buffers whole bytes up to the next marker, which only a restart moves past.
    fn refill(&mut self) {
        while self.available <= 56 {
            let Some(&byte) = self.data.get(self.position) else {
                return;
            };
            if byte == MARKER_PREFIX {
                // Inside the data a marker can only be a restart marker (or fill before one).
                if self.data.get(self.position + 1) != Some(&STUFFED_ZERO) {
                    return;
                }
                self.position += 1;
            }
            self.position += 1;
            self.buffer |= (byte as u64) << (56 - self.available);
            self.available += 8;
        }
    }

    /// The next `count` bits (1 to 16), zero-padded past the buffered ones.
    fn peek(&self, count: u32) -> u32 {
        (self.buffer >> (64 - count)) as u32
    }

    /// Drops `count` bits; `false` when fewer are left.
    fn consume(&mut self, count: u32) -> bool {
        if count > self.available {
            return false;
        }
        self.buffer = self.buffer.checked_shl(count).unwrap_or(0);
        self.available -= count;
        true
    }

    /// Skips `count` bits; `false` when the data runs out first.
    fn skip(&mut self, count: u32) -> bool {
        self.refill();
        self.consume(count)
    }

    /// Drops the rest of the current byte and moves past the next restart marker, if it is
    /// the next thing in the data. A missing marker is left for the following reads to find.
    fn restart(&mut self) {
        // Whole buffered bytes go back: only the padding bits of the current byte are dropped.
        let whole_bytes = self.available / 8;
        self.position = self.rewind(whole_bytes);
        self.buffer = 0;
        self.available = 0;
        let mut position = self.position;
        while self.data.get(position) == Some(&MARKER_PREFIX)
            && self.data.get(position + 1) == Some(&MARKER_PREFIX)
        {
            position += 1;
        }
        if self.data.get(position) == Some(&MARKER_PREFIX)
            && self
                .data
                .get(position + 1)
                .is_some_and(|code| RESTART_MARKERS.contains(code))
        {
            self.position = position + 2;
        }
    }

    /// The position `bytes` data bytes back, counting a stuffed `FF 00` as one.
    fn rewind(&self, bytes: u32) -> usize {
        let mut position = self.position;
        for _ in 0..bytes {
            position -= 1;
            if position > 0
                && self.data[position] == STUFFED_ZERO
                && self.data[position - 1] == MARKER_PREFIX
            {
                position -= 1;
            }
        }
        position
    }
}
