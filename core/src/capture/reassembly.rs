//! One direction of a TCP connection put back in order: segments arrive as captured (out of
//! order, retransmitted, overlapping, with the 32-bit sequence number wrapping around) and the
//! stream comes out in order, with the bytes the capture missed reported as gaps.
//!
//! Positions are kept as 64-bit stream offsets; a segment's offset is found from its sequence
//! number's signed 32-bit distance to the next expected one, so wrapping past 2^32 is just one
//! more step forward. Bytes the capture missed are declared a gap when they can no longer come:
//! when the peer acknowledged beyond them (it received them; they will never be resent), when
//! the segments waiting behind the hole exceed [`MAX_PENDING`] bytes, or when the stream ends.

use alloc::vec::Vec;

use super::table::Table;

/// Bytes of out-of-order segments held per direction before the hole in front of them is
/// declared a gap (256 KiB: several times a TCP window of a device).
pub const MAX_PENDING: usize = 256 << 10;

/// What comes out, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Bytes at this stream offset.
    Data {
        /// Stream offset of the first byte.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
        /// Capture time of the segment that carried them.
        time_ns: u64,
        /// Its packet number in the file.
        frame: u64,
    },
    /// Bytes the capture does not have.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// How many.
        len: u64,
        /// Capture time of the packet that revealed the gap.
        time_ns: u64,
        /// Its packet number.
        frame: u64,
    },
}

#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    time_ns: u64,
    frame: u64,
}

/// Counters of what reassembly saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes delivered in order.
    pub bytes: u64,
    /// Segments (or parts) received again after their bytes were delivered.
    pub retransmitted: u64,
    /// Segments that arrived ahead of a hole and waited for it.
    pub out_of_order: u64,
    /// Bytes declared missing.
    pub missing: u64,
}

/// One direction's reassembly state.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of the next byte expected, once known.
    next_seq: Option<u32>,
    /// Stream offset of `next_seq`.
    offset: u64,
    held: Table<u64, Held>,
    held_bytes: usize,
    /// Stream offset (exclusive) up to which the peer acknowledged, as far as seen.
    acked: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    stats: StreamStats,
}

impl Reassembler {
    /// A direction whose first sequence number is not known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was seen so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Bytes held out of order.
    pub fn held(&self) -> usize {
        self.held_bytes
    }

    /// Stream offset of the next byte expected.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The stream offset of a sequence number, relative to the next expected byte.
    fn offset_of(&self, seq: u32, next: u32) -> i128 {
        i128::from(self.offset) + i128::from(seq.wrapping_sub(next) as i32)
    }

    /// A segment of this direction. `missing` payload bytes were cut off its end by the snap
    /// length. Pieces that become deliverable go to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        missing: usize,
        time_ns: u64,
        frame: u64,
        out: &mut impl FnMut(Piece<'_>),
    ) {
        let seq = if syn {
            if self.next_seq.is_none() {
                self.next_seq = Some(seq.wrapping_add(1));
            }
            seq.wrapping_add(1)
        } else {
            seq
        };
        let next = *self.next_seq.get_or_insert(seq);
        let start = self.offset_of(seq, next);
        let full = payload.len() + missing;
        if fin {
            let end = start + full as i128;
            if end >= 0 {
                self.fin = Some(end as u64);
            }
        }
        if full == 0 {
            return;
        }
        let end = start + full as i128;
        let here = i128::from(self.offset);
        if end <= here {
            self.stats.retransmitted += 1;
            return;
        }
        // Trim what was already delivered.
        let skip = (here - start).max(0) as usize;
        let start = (start + skip as i128) as u64;
        let (payload, missing) = if skip >= payload.len() {
            (&payload[..0], missing - (skip - payload.len()))
        } else {
            (&payload[skip..], missing)
        };
        if skip > 0 {
            self.stats.retransmitted += 1;
        }
        if start == self.offset {
            self.deliver(payload, missing, time_ns, frame, out);
            self.drain(out);
        } else {
            self.stats.out_of_order += 1;
            self.hold(start, payload, missing, time_ns, frame);
            if self.held_bytes > MAX_PENDING {
                self.skip_to_held(time_ns, frame, out);
            }
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it that are still missing will never be
    /// resent.
    pub fn acknowledged(
        &mut self,
        ack: u32,
        time_ns: u64,
        frame: u64,
        out: &mut impl FnMut(Piece<'_>),
    ) {
        let Some(next) = self.next_seq else { return };
        let at = self.offset_of(ack, next);
        if at <= i128::from(self.offset) {
            return;
        }
        let mut at = at as u64;
        // The FIN takes a sequence number but no byte.
        if let Some(fin) = self.fin {
            at = at.min(fin);
        }
        self.acked = self.acked.max(at);
        while let Some((&first, _)) = self.held.first() {
            if first > self.acked {
                break;
            }
            self.skip_to_held(time_ns, frame, out);
        }
    }

    /// The end of the stream (FIN or RST exchanged, or the end of the capture): what is held
    /// comes out after its gaps, and bytes acknowledged but never captured are one last gap.
    pub fn finish(&mut self, time_ns: u64, frame: u64, out: &mut impl FnMut(Piece<'_>)) {
        while !self.held.is_empty() {
            self.skip_to_held(time_ns, frame, out);
        }
        if self.acked > self.offset {
            let len = self.acked - self.offset;
            self.gap(len, time_ns, frame, out);
        }
    }

    fn deliver(
        &mut self,
        payload: &[u8],
        missing: usize,
        time_ns: u64,
        frame: u64,
        out: &mut impl FnMut(Piece<'_>),
    ) {
        if !payload.is_empty() {
            out(Piece::Data {
                offset: self.offset,
                bytes: payload,
                time_ns,
                frame,
            });
            self.advance(payload.len() as u64);
            self.stats.bytes += payload.len() as u64;
        }
        if missing > 0 {
            self.gap(missing as u64, time_ns, frame, out);
        }
    }

    fn gap(&mut self, len: u64, time_ns: u64, frame: u64, out: &mut impl FnMut(Piece<'_>)) {
        out(Piece::Gap {
            offset: self.offset,
            len,
            time_ns,
            frame,
        });
        self.stats.missing += len;
        self.advance(len);
    }

    fn advance(&mut self, by: u64) {
        self.offset += by;
        if let Some(n) = &mut self.next_seq {
            *n = n.wrapping_add(by as u32);
        }
    }

    fn hold(&mut self, start: u64, payload: &[u8], missing: usize, time_ns: u64, frame: u64) {
        // A snap-length cut in a held segment: keep what was captured; the hole after it is
        // found again when it is delivered.
        let _ = missing;
        match self.held.get(&start) {
            Some(h) if h.bytes.len() >= payload.len() => {
                self.stats.retransmitted += 1;
            }
            _ => {
                let held = Held {
                    bytes: payload.to_vec(),
                    time_ns,
                    frame,
                };
                if let (_, Some(old)) = self.held.insert(start, held) {
                    self.held_bytes -= old.bytes.len();
                }
                self.held_bytes += payload.len();
            }
        }
    }

    /// Deliver the held segments that now start at (or before) the next offset.
    fn drain(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        while let Some((&start, _)) = self.held.first() {
            if start > self.offset {
                break;
            }
            let (_, h) = self.held.pop_first().expect("first entry");
            self.held_bytes -= h.bytes.len();
            let end = start + h.bytes.len() as u64;
            if end <= self.offset {
                self.stats.retransmitted += 1;
                continue;
            }
            let skip = (self.offset - start) as usize;
            self.deliver(&h.bytes[skip..], 0, h.time_ns, h.frame, out);
        }
    }

    /// Declare the hole before the first held segment a gap, and deliver from there.
    fn skip_to_held(&mut self, time_ns: u64, frame: u64, out: &mut impl FnMut(Piece<'_>)) {
        if let Some((&first, _)) = self.held.first() {
            if first > self.offset {
                self.gap(first - self.offset, time_ns, frame, out);
            }
            self.drain(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Runs segments through a reassembler, returns the stream and the gaps.
    fn run(segments: &[(u32, &[u8])], first: u32) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut r = Reassembler::new();
        let mut data = Vec::new();
        let mut gaps = Vec::new();
        let mut out = |p: Piece<'_>| match p {
            Piece::Data { bytes, .. } => data.extend_from_slice(bytes),
            Piece::Gap { offset, len, .. } => gaps.push((offset, len)),
        };
        r.segment(first.wrapping_sub(1), true, false, &[], 0, 0, 0, &mut out);
        for (i, (seq, bytes)) in segments.iter().enumerate() {
            r.segment(*seq, false, false, bytes, 0, 0, i as u64, &mut out);
        }
        r.finish(0, 0, &mut out);
        (data, gaps)
    }

    #[test]
    fn in_order_reordered_and_retransmitted() {
        let (data, gaps) = run(
            &[
                (100, b"abc"),
                (106, b"ghi"),
                (103, b"def"),
                (103, b"def"),
                (101, b"bcdefg"),
            ],
            100,
        );
        assert_eq!(data, b"abcdefghi");
        assert!(gaps.is_empty());
    }

    #[test]
    fn sequence_wrap() {
        let first = u32::MAX - 2;
        let (data, gaps) = run(&[(first, b"abc"), (1, b"ef"), (0, b"d")], first);
        assert_eq!(data, b"abcdef");
        assert!(gaps.is_empty());
    }

    #[test]
    fn a_hole_is_a_gap_at_the_end() {
        let (data, gaps) = run(&[(10, b"ab"), (20, b"xy")], 10);
        assert_eq!(data, b"abxy");
        assert_eq!(gaps, vec![(2, 8)]);
    }

    #[test]
    fn the_peers_ack_declares_the_gap_at_once() {
        let mut r = Reassembler::new();
        let mut seen = Vec::new();
        let mut out = |p: Piece<'_>| seen.push(alloc::format!("{p:?}"));
        r.segment(0, false, false, b"ab", 0, 0, 1, &mut out);
        r.segment(5, false, false, b"fg", 0, 0, 2, &mut out);
        r.acknowledged(7, 0, 3, &mut out);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen[1].starts_with("Gap { offset: 2, len: 3"));
    }
}
