//! GIF's LZW compression of 8-bit palette indices, for [`crate::io`]'s animations: codes of 9
//! to 12 bits, least significant bit first, a clear code first and whenever the table is full.
//!
//! The `gif` crate compresses with `weezl`, whose general encoder (any code size, a tree of
//! table entries) took a quarter of the CPU time of a 227-step run: an optimisation's frames
//! are mostly noise to LZW, which then adds a table entry every byte or two. This one knows
//! the code size (8) and keeps the table in an open-addressed hash of 16384 slots, one `u32`
//! each (64 KiB): about 4.7× faster than `weezl` on a 512 × 1024 frame of noise (`cargo bench
//! --bench primitives -- gif_lzw`), and its output no larger. Any GIF decoder reads it; the
//! tests decode it with `weezl`'s decoder.

/// Bits of a palette index, the GIF's "minimum code size".
const LITERAL_BITS: u32 = 8;
/// The code that empties the table.
const CLEAR: u32 = 1 << LITERAL_BITS;
/// The code that ends the data.
const END: u32 = CLEAR + 1;
/// The first code the table assigns to a string.
const FIRST: u32 = CLEAR + 2;
/// Codes are at most 12 bits wide, so the table holds at most 4096 of them.
const WIDEST: u32 = 12;
/// Hash slots: four times the most entries a table holds, so probes stay short. Half as many
/// (32 KiB, which fits the L1 cache) was 11–35% slower on noise: a string not in a table that
/// is half full takes 2.3 probes on average, and the branch on each is a coin toss.
const SLOTS: usize = 1 << 14;

/// The data compressed, as `gif::Frame::make_lzw_pre_encoded` leaves a frame's buffer: the
/// minimum code size (8), then the code stream (not yet cut into the GIF's sub-blocks).
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Codes::new(data.len());
    out.put(CLEAR);
    let Some((&first, rest)) = data.split_first() else {
        out.put(END);
        return out.finish();
    };
    // slot: 0 if empty, else (prefix code << 8 | byte) << 12 | the string's code (≥ FIRST)
    let mut table = vec![0u32; SLOTS];
    let mut prefix = u32::from(first);
    for &byte in rest {
        let key = (prefix << 8) | u32::from(byte);
        match find(&table, key) {
            Ok(code) => prefix = code, // the string goes on
            Err(slot) => {
                out.put(prefix);
                table[slot] = (key << WIDEST) | out.next;
                out.count_entry();
                if out.next == 1 << WIDEST {
                    // the table is full
                    out.put(CLEAR);
                    table.fill(0);
                    out.restart();
                }
                prefix = u32::from(byte);
            }
        }
    }
    out.put(prefix);
    // the decoder adds an entry as it reads that code, which can widen the end code
    out.count_entry();
    out.put(END);
    out.finish()
}

/// The code of the string `key` (its prefix's code and last byte), or the empty slot to put it
/// in.
#[inline]
fn find(table: &[u32], key: u32) -> Result<u32, usize> {
    let mut slot = (key.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS.trailing_zeros())) as usize;
    loop {
        match table[slot] {
            0 => return Err(slot),
            s if s >> WIDEST == key => return Ok(s & ((1 << WIDEST) - 1)),
            _ => slot = (slot + 1) % SLOTS,
        }
    }
}

/// The code stream being written: codes packed into bytes least significant bit first, and
/// the state that sets their width (`next`, the code the table assigns next).
struct Codes {
    bytes: Vec<u8>,
    bits: u64,
    pending: u32,
    next: u32,
    width: u32,
}

impl Codes {
    fn new(len: usize) -> Self {
        let mut bytes = Vec::with_capacity(len / 2 + 16);
        bytes.push(LITERAL_BITS as u8);
        Codes {
            bytes,
            bits: 0,
            pending: 0,
            next: FIRST,
            width: LITERAL_BITS + 1,
        }
    }

    /// Writes one code at the current width.
    fn put(&mut self, code: u32) {
        self.bits |= u64::from(code) << self.pending;
        self.pending += self.width;
        if self.pending >= 32 {
            self.bytes
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.pending -= 32;
        }
    }

    /// One more entry in the table: the decoder, one entry behind the encoder, reads the next
    /// code at the width of the largest code it could be (`next − 1`, after this entry).
    fn count_entry(&mut self) {
        self.next += 1;
        if self.next - 1 == 1 << self.width && self.width < WIDEST {
            self.width += 1;
        }
    }

    /// After a clear code: an empty table.
    fn restart(&mut self) {
        self.next = FIRST;
        self.width = LITERAL_BITS + 1;
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        let tail = self.bits.to_le_bytes();
        self.bytes
            .extend_from_slice(&tail[..self.pending.div_ceil(8) as usize]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::encode;

    /// Decoded by `weezl`, an independent implementation (the one the `gif` crate reads with).
    fn decode(stream: &[u8]) -> Vec<u8> {
        assert_eq!(stream[0], 8, "minimum code size");
        let mut d = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, 8);
        d.decode(&stream[1..]).expect("a valid LZW stream")
    }

    /// xorshift bytes, `levels` values (2 gives long repeats, 256 noise).
    fn noise(len: usize, levels: u32, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 32) as u32 % levels) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_through_an_independent_decoder() {
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![7],
            vec![255, 255],
            vec![0; 100_000], // one string growing: the KwKwK case every code
            (0..=255).cycle().take(300_000).collect(),
        ];
        for (levels, len) in [(256, 500_000), (2, 200_000), (16, 123_457), (256, 3)] {
            cases.push(noise(len, levels, len as u64));
        }
        // noise of every length up to past the first clear (about one new entry a byte), so
        // the end code meets each width change and the clear
        let long = noise(4_400, 256, 5);
        cases.extend((0..long.len()).map(|n| long[..n].to_vec()));
        for data in &cases {
            assert_eq!(decode(&encode(data)), *data, "{} bytes", data.len());
        }
    }

    /// As small as a general encoder's output: `weezl`'s, on noise and on runs.
    #[test]
    fn compresses_as_well_as_weezl() {
        for data in [
            noise(300_000, 256, 9),
            noise(300_000, 4, 3),
            vec![9; 50_000],
        ] {
            let mut w = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8);
            let theirs = w.encode(&data).expect("weezl compresses").len();
            let ours = encode(&data).len() - 1;
            assert!(ours <= theirs + theirs / 100, "{ours} vs {theirs} bytes");
        }
    }
}
