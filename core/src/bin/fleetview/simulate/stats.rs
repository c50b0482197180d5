//! Counters shared by every virtual device, and an ack-latency histogram.
//!
//! Devices only do relaxed atomic adds; the reporter reads snapshots. The histogram is HDR-style
//! (log-linear buckets, 32 per power of two, so any value is within ~3 % of its bucket) and
//! lock-free, so 10,000 devices record into it without contention worth measuring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

/// Sub-buckets per power of two: 2^5 = 32, ~3 % resolution.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below 2·SUB µs get a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Up to 2^40 µs (~12 days): plenty for an ack latency.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (LINEAR + (MAX_EXP as u64 - SUB_BITS as u64) * SUB) as usize;

/// A lock-free latency histogram in microseconds.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    fn index(us: u64) -> usize {
        if us < LINEAR {
            return us as usize;
        }
        let exp = (63 - us.leading_zeros()).min(MAX_EXP - 1);
        let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
        (LINEAR + u64::from(exp - SUB_BITS - 1) * SUB + sub) as usize
    }

    /// The largest value that falls in bucket `i`: percentiles are reported from the top of
    /// their bucket, so they are never understated.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < LINEAR {
            return i;
        }
        let exp = (i - LINEAR) / SUB + u64::from(SUB_BITS) + 1;
        let sub = (i - LINEAR) % SUB;
        let width = 1u64 << (exp - u64::from(SUB_BITS));
        ((SUB + sub) << (exp - u64::from(SUB_BITS))) + width - 1
    }

    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(us).min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    /// Percentiles of everything recorded so far.
    pub(crate) fn summary(&self) -> Latency {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        Latency::from_counts(&counts, self.max.load(Relaxed))
    }

    /// Percentiles of what was recorded since the last call, and start afresh.
    pub(crate) fn take(&self) -> Latency {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.swap(0, Relaxed)).collect();
        self.count.store(0, Relaxed);
        Latency::from_counts(&counts, self.max.swap(0, Relaxed))
    }
}

/// Ack latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    fn from_counts(counts: &[u64], max_us: u64) -> Self {
        let count: u64 = counts.iter().sum();
        let at = |q: f64| -> f64 {
            if count == 0 {
                return 0.0;
            }
            let rank = ((count as f64 * q).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Histogram::upper(i).min(max_us) as f64 / 1000.0;
                }
            }
            max_us as f64 / 1000.0
        };
        Self {
            count,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: max_us as f64 / 1000.0,
        }
    }
}

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Run-wide counters, updated by every device.
        #[derive(Default)]
        pub(crate) struct Counters {
            $($(#[doc = $doc])* pub(crate) $name: AtomicU64,)*
        }

        /// A copy of the counters at one instant.
        #[derive(Clone, Copy, Debug, Default, Serialize)]
        pub(crate) struct Snapshot {
            $($(#[doc = $doc])* pub(crate) $name: u64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Snapshot {
                Snapshot { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Devices with an open, logged-in TCP connection (UDP: devices running).
    connected,
    /// Most devices connected at once.
    peak_connected,
    /// Accepted logins (`01`), reconnections included.
    logins,
    /// Logins answered `00`: the device stops.
    rejected,
    /// Failed connection attempts (refused, timed out).
    connect_errors,
    /// Connections dropped and opened again (ack timeout, protocol error, server closed).
    reconnects,
    /// Frames whose ack did not come within the ack timeout.
    ack_timeouts,
    /// Records the vehicles produced.
    generated,
    /// Records put on the wire for the first time.
    sent,
    /// Records put on the wire again (not acked, or beyond a short ack).
    resent,
    /// Records the server acknowledged.
    acked,
    /// Data frames (TCP) or datagrams (UDP) sent, resends included.
    frames,
    /// Acks that covered fewer records than the frame carried.
    short_acks,
    /// Records not generated because the device's buffer was full (server too slow).
    dropped,
    /// Commands answered (Codec 12/14 responses sent).
    commands,
    /// Bytes from the server the device could not make sense of.
    protocol_errors,
    /// Devices that finished (`--records` reached, or rejected).
    finished,
    /// Bytes written.
    bytes_sent,
}

/// Everything the devices share.
pub(crate) struct Stats {
    pub(crate) c: Counters,
    /// Ack latency over the whole run.
    pub(crate) latency: Histogram,
    /// Ack latency since the last progress report.
    pub(crate) recent: Histogram,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            c: Counters::default(),
            latency: Histogram::new(),
            recent: Histogram::new(),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn connect(&self) {
        let now = self.c.connected.fetch_add(1, Relaxed) + 1;
        self.c.peak_connected.fetch_max(now, Relaxed);
    }

    pub(crate) fn disconnect(&self) {
        self.c.connected.fetch_sub(1, Relaxed);
    }

    pub(crate) fn ack_latency(&self, d: Duration) {
        self.latency.record(d);
        self.recent.record(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_within_three_percent() {
        let mut prev = 0;
        for i in 0..BUCKETS {
            let up = Histogram::upper(i);
            assert!(i == 0 || up > prev, "bucket {i} not increasing");
            prev = up;
        }
        for us in [
            0,
            1,
            63,
            64,
            65,
            100,
            1_000,
            12_345,
            99_999,
            1 << 30,
            (1 << 40) - 1,
        ] {
            let i = Histogram::index(us);
            let up = Histogram::upper(i);
            assert!(up >= us, "{us} above its bucket top {up}");
            assert!(
                i == 0 || Histogram::upper(i - 1) < us,
                "{us} in too high a bucket"
            );
            assert!((up - us) as f64 <= us as f64 * 0.032 + 1.0, "{us} → {up}");
        }
    }

    #[test]
    fn percentiles_from_sorted_samples() {
        let h = Histogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let l = h.summary();
        assert_eq!(l.count, 1000);
        assert!((l.p50_ms - 500.0).abs() / 500.0 < 0.035, "p50 {}", l.p50_ms);
        assert!((l.p99_ms - 990.0).abs() / 990.0 < 0.035, "p99 {}", l.p99_ms);
        assert_eq!(l.max_ms, 1000.0);
        assert_eq!(h.take().count, 1000);
        assert_eq!(h.take().count, 0);
    }
}
