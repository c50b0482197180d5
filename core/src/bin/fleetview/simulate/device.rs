//! One virtual tracker: its buffer of records, the TCP and UDP conversations with the server,
//! resends as a real device does them, and answers to commands.
//!
//! Every byte is built and read by the library: `Imei::login_frame`, `encode::avl_frame`,
//! `encode::avl_datagram`, `encode::command_frame`, `decode_frame`, `udp::decode_datagram`.
//! The device keeps its records as `AvlRecord`s until they are acked so that a short ack can be
//! answered by re-encoding exactly the records not accepted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleetview::{AvlData, AvlRecord, Codec, CommandPacket, Content, DecodeOptions, Imei};
use tokio::time::Instant;

use super::acked_log::AckedLog;
use super::command;

mod tcp;
mod udp;

use super::route::{Rng, Vehicle};
use super::stats::Stats;
pub(crate) use tcp::run_tcp;
pub(crate) use udp::run_udp;

/// Settings shared by every device of a run.
pub(crate) struct Config {
    pub(crate) server: SocketAddr,
    /// Connect with TLS, trusting this client's CA.
    pub(crate) tls: Option<crate::stream::TlsClient>,
    pub(crate) codec: Codec,
    pub(crate) devices: u32,
    pub(crate) seed: u64,
    pub(crate) imei_base: u64,
    /// Wall time between two records of one device; `None`: idle devices that only hold their
    /// connection.
    pub(crate) period: Option<Duration>,
    /// Simulated seconds per record (period × speed-up).
    pub(crate) sim_step_s: f64,
    /// Records per frame in steady state.
    pub(crate) batch: usize,
    /// Most records in one frame when catching up after an outage.
    pub(crate) max_frame_records: usize,
    /// Most records a device buffers; beyond, new records are dropped and counted.
    pub(crate) max_buffered: usize,
    pub(crate) ack_timeout: Duration,
    /// First and longest reconnect waits ([`super::backoff::Backoff`]).
    pub(crate) backoff: Duration,
    pub(crate) backoff_max: Duration,
    /// Where acked records are listed (`--acked-log`).
    pub(crate) acked_log: Option<Arc<AckedLog>>,
    /// Records per device, then the device finishes.
    pub(crate) records: Option<u64>,
    /// When the run started.
    pub(crate) t0: Instant,
    /// Connection ramp: device i connects at `ramp × i / devices`.
    pub(crate) ramp: Duration,
    /// When data starts (after the ramp and the hold).
    pub(crate) data_start: Instant,
    /// Timestamp of the first record, milliseconds since 1970.
    pub(crate) data_start_ms: u64,
    pub(crate) decode: DecodeOptions,
    /// Log each device's connection problems to stderr (quiet in big runs: counters say it).
    pub(crate) verbose: bool,
}

/// The IMEI of device `index`: 14 digits from the base, then the Luhn check digit that real
/// IMEIs carry.
pub(crate) fn imei(base: u64, index: u32) -> Imei {
    let body = format!("{:014}", (base + u64::from(index)) % 100_000_000_000_000);
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    Imei::new(&format!("{body}{check}")).expect("15 digits")
}

/// A frame put on the wire and not acked yet.
struct InFlight {
    records: usize,
    sent_at: Instant,
}

/// Why a connection ended.
enum End {
    /// The run is over (duration reached or Ctrl-C).
    Stop,
    /// All records acked (`--records`).
    Done,
    /// Reconnect: ack timeout, protocol error, server closed.
    Retry(String),
    /// Login rejected: a real device would retry much later; the simulated one stops.
    Rejected,
}

/// The part of a device that does not depend on the transport.
pub(crate) struct Device {
    index: u32,
    cfg: Arc<Config>,
    stats: Arc<Stats>,
    imei: Imei,
    vehicle: Vehicle,
    /// Records not acked yet, oldest first; the first `front_sent` were sent at least once.
    backlog: VecDeque<AvlRecord>,
    front_sent: usize,
    in_flight: Option<InFlight>,
    generated: u64,
    /// Records the server acked.
    acked: u64,
    /// Time of the next record (wall) and its timestamp.
    next_record: Instant,
    next_ms: u64,
    first_ms: u64,
    last: Option<AvlRecord>,
    /// Jitter for reconnect back-off, apart from the vehicle's so routes stay reproducible.
    jitter: Rng,
    connected_at: Option<Instant>,
}

impl Device {
    /// Wait for this device's turn in the ramp (devices start spread over `--ramp`). False when
    /// the run stopped first.
    pub(crate) async fn wait_for_ramp(
        &self,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let start = self.cfg.t0
            + self
                .cfg
                .ramp
                .mul_f64(f64::from(self.index) / f64::from(self.cfg.devices.max(1)));
        tokio::select! {
            _ = tokio::time::sleep_until(start) => true,
            _ = stop.changed() => false,
        }
    }

    pub(crate) fn new(index: u32, cfg: Arc<Config>, stats: Arc<Stats>) -> Self {
        let vehicle = Vehicle::new(cfg.seed, u64::from(index), cfg.codec);
        // Spread the devices over one frame period so that they do not all send at once.
        let (offset, offset_ms) = match cfg.period {
            Some(p) => {
                let frame = p * cfg.batch as u32;
                let off = frame.mul_f64(f64::from(index) / f64::from(cfg.devices.max(1)));
                (off, off.as_millis() as u64)
            }
            None => (Duration::ZERO, 0),
        };
        Self {
            imei: imei(cfg.imei_base, index),
            vehicle,
            backlog: VecDeque::new(),
            front_sent: 0,
            in_flight: None,
            generated: 0,
            acked: 0,
            next_record: cfg.data_start + offset,
            next_ms: cfg.data_start_ms + offset_ms,
            first_ms: cfg.data_start_ms + offset_ms,
            last: None,
            jitter: Rng::new(cfg.seed.wrapping_add(0x5151) ^ u64::from(index) << 20),
            connected_at: None,
            index,
            cfg,
            stats,
        }
    }

    fn limit_reached(&self) -> bool {
        self.cfg.records.is_some_and(|n| self.generated >= n)
    }

    fn finished(&self) -> bool {
        self.limit_reached() && self.backlog.is_empty()
    }

    /// When the device next has something to do besides waiting for the server.
    fn next_wake(&self) -> Option<Instant> {
        if self.cfg.period.is_none() || self.limit_reached() {
            return None;
        }
        // Wake once per batch, not once per record: a tenth of the timer work.
        let missing = self.cfg.batch.saturating_sub(self.backlog.len()).max(1) as u32;
        let period = self.cfg.period?;
        Some(self.next_record + period * (missing - 1))
    }

    /// Take the records that are due by now.
    fn generate_due(&mut self, now: Instant) {
        let Some(period) = self.cfg.period else {
            return;
        };
        let period_ms = period.as_secs_f64() * 1000.0;
        while self.next_record <= now && !self.limit_reached() {
            let record = self.vehicle.step(self.cfg.sim_step_s, self.next_ms);
            self.generated += 1;
            Stats::add(&self.stats.c.generated, 1);
            if self.backlog.len() < self.cfg.max_buffered {
                self.last = Some(record.clone());
                self.backlog.push_back(record);
            } else {
                Stats::add(&self.stats.c.dropped, 1);
            }
            self.next_record += period;
            // From the first timestamp, not by adding: no drift over millions of records.
            self.next_ms = self.first_ms + (self.generated as f64 * period_ms) as u64;
        }
    }

    /// Whether a frame should go out now: records the server did not accept are resent at once,
    /// new ones when a batch is full (or the last records of a `--records` run).
    fn should_send(&self) -> bool {
        self.in_flight.is_none()
            && !self.backlog.is_empty()
            && (self.front_sent > 0 || self.backlog.len() >= self.cfg.batch || self.limit_reached())
    }

    /// The next frame's records: up to `max_frame_records` from the front of the buffer.
    fn take_frame(&mut self) -> AvlData {
        let n = self.backlog.len().min(self.cfg.max_frame_records);
        let again = n.min(self.front_sent);
        Stats::add(&self.stats.c.resent, again as u64);
        Stats::add(&self.stats.c.sent, (n - again) as u64);
        Stats::add(&self.stats.c.frames, 1);
        self.front_sent = self.front_sent.max(n);
        self.in_flight = Some(InFlight {
            records: n,
            sent_at: Instant::now(),
        });
        AvlData::new(self.cfg.codec, self.backlog.range(..n).cloned().collect())
    }

    /// The server accepted `n` records of the frame in flight; the rest are resent.
    fn on_ack(&mut self, n: u64) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        self.stats.ack_latency(f.sent_at.elapsed());
        if n > f.records as u64 {
            self.protocol_error(&format!("ack for {n} records, {} sent", f.records));
        }
        let n = (n as usize).min(f.records);
        if n < f.records {
            Stats::add(&self.stats.c.short_acks, 1);
        }
        if let Some(log) = &self.cfg.acked_log {
            log.acked(&self.imei, self.cfg.codec, self.backlog.range(..n));
        }
        self.backlog.drain(..n);
        self.front_sent -= n;
        self.acked += n as u64;
        Stats::add(&self.stats.c.acked, n as u64);
    }

    fn protocol_error(&self, what: &str) {
        Stats::add(&self.stats.c.protocol_errors, 1);
        if self.cfg.verbose {
            eprintln!("device {} ({}): {what}", self.index, self.imei);
        }
    }

    fn ack_deadline(&self) -> Option<Instant> {
        self.in_flight
            .as_ref()
            .map(|f| f.sent_at + self.cfg.ack_timeout)
    }

    /// Answer a command packet (see [`command::answer`]).
    fn answer(&mut self, packet: &CommandPacket) -> Option<CommandPacket> {
        let last = self.last.clone().unwrap_or_default();
        let facts = command::Facts {
            imei: &self.imei,
            index: self.index,
            last: &last,
            start_ms: self.cfg.data_start_ms,
            uptime_s: self.connected_at.map_or(0, |t| t.elapsed().as_secs()),
            buffered: self.backlog.len(),
            generated: self.generated,
        };
        let out = command::answer(packet, &facts)?;
        Stats::add(&self.stats.c.commands, out.messages.len() as u64);
        Some(out)
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn kind(c: &Content) -> &'static str {
    match c {
        Content::Imei(_) => "IMEI login",
        Content::KeepAlive => "keep-alive",
        Content::Avl(_) => "AVL frame",
        Content::Command(_) => "command frame",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imeis_carry_a_luhn_check_digit() {
        // 49015420323751 → check digit 8 (the textbook example).
        assert_eq!(imei(49_015_420_323_751, 0).as_str(), "490154203237518");
        assert_eq!(imei(35_209_308_000_000, 7).as_str().len(), 15);
        assert_ne!(imei(1, 0), imei(1, 1));
    }
}
