//! One virtual tracker: its buffer of records, the TCP and UDP conversations with the server,
//! resends as a real device does them, and answers to commands.
//!
//! Every byte is built and read by the library: `Imei::login_frame`, `encode::avl_frame`,
//! `encode::avl_datagram`, `encode::command_frame`, `decode_frame`, `udp::decode_datagram`.
//! The device keeps its records as `AvlRecord`s until they are acked so that a short ack can be
//! answered by re-encoding exactly the records not accepted.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fleetview::{
    AvlData, AvlRecord, Codec, CommandMessage, CommandPacket, Content, DecodeOptions, Imei,
    IoValue, Status, UdpHeader,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::route::{Rng, Vehicle};
use super::stats::Stats;

/// Settings shared by every device of a run.
pub(crate) struct Config {
    pub(crate) server: SocketAddr,
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
        AvlData {
            codec: self.cfg.codec,
            records: self.backlog.range(..n).cloned().collect(),
        }
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
        self.backlog.drain(..n);
        self.front_sent -= n;
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

    /// Answer a command as an FMB device would, as a Codec 12 (or 14) response.
    fn answer(&mut self, packet: &CommandPacket) -> Option<CommandPacket> {
        let mut messages = Vec::new();
        for m in packet
            .messages
            .iter()
            .filter(|m| m.kind == CommandMessage::COMMAND)
        {
            let text = String::from_utf8_lossy(&m.payload);
            let reply = if packet.codec == Codec::Codec14 {
                let ours = self.imei.to_bcd().ok();
                if m.imei != ours {
                    // Codec 14: a command for another IMEI gets a nACK with an empty payload.
                    messages.push(CommandMessage {
                        kind: CommandMessage::NACK,
                        timestamp_s: None,
                        imei: ours,
                        payload: Vec::new(),
                    });
                    continue;
                }
                CommandMessage {
                    kind: CommandMessage::RESPONSE,
                    timestamp_s: None,
                    imei: ours,
                    payload: self.reply_text(text.trim()).into_bytes(),
                }
            } else {
                CommandMessage {
                    kind: CommandMessage::RESPONSE,
                    timestamp_s: None,
                    imei: None,
                    payload: self.reply_text(text.trim()).into_bytes(),
                }
            };
            messages.push(reply);
        }
        if messages.is_empty() {
            return None;
        }
        Stats::add(&self.stats.c.commands, messages.len() as u64);
        let codec = if packet.codec == Codec::Codec14 {
            Codec::Codec14
        } else {
            Codec::Codec12
        };
        Some(CommandPacket { codec, messages })
    }

    /// The text an FMB firmware answers to the common SMS/GPRS commands.
    fn reply_text(&self, command: &str) -> String {
        let last = self.last.clone().unwrap_or_default();
        let now_ms = last.timestamp_ms.max(self.cfg.data_start_ms);
        let time = fleetview::time::iso8601(now_ms);
        let (date, clock) = (&time[..10], &time[11..19]);
        let uptime = self.connected_at.map_or(0, |t| t.elapsed().as_secs());
        let io = |id| last.io(id).and_then(IoValue::raw).unwrap_or(0);
        let mut words = command.split_whitespace();
        let name = words.next().unwrap_or("").to_ascii_lowercase();
        match name.as_str() {
            "getinfo" => format!(
                "RTC:{} {} Init:{} {} UpTime:{uptime}s PWR:PwrVoltage RST:0 GPS:3 SAT:{} TTFF:14 TTLL:2 NOGPS:0:0 SR:0 FG:0 FL:0 SMS:0 REC:{} MD:{} DB:0",
                date.replace('-', "/"),
                &clock[..5],
                date.replace('-', "/"),
                &clock[..5],
                last.gps.satellites,
                self.backlog.len(),
                io(240),
            ),
            "getver" => format!(
                "Ver:03.29.00_Rev:00 GPS:AXN_5.1.9 Hw:FMB920 Mod:13 IMEI:{} Init:{date} {} Uptime:{uptime} MAC:0000{:08X} SPEC:1 Code:0 BL:1.10",
                self.imei,
                &clock[..5],
                self.index
            ),
            "getgps" => format!(
                "GPS:1 Sat:{} Lat:{:.6} Long:{:.6} Alt:{} Speed:{} Dir:{} Date: {} Time: {clock}",
                last.gps.satellites,
                last.gps.latitude_deg(),
                last.gps.longitude_deg(),
                last.gps.altitude,
                last.gps.speed,
                last.gps.angle,
                date.replace('-', "/"),
            ),
            "getstatus" => format!(
                "Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: {} NewSMS: 0 Roaming: 0 SMSFull: 0 LAC: 1 Cell ID: {} NetType: 1 FwUpd:-1",
                io(21),
                3000 + self.index % 1000
            ),
            "getio" => format!(
                "DI1:0 DI2:0 DI3:0 AIN1:0 DOUT1:0 DOUT2:0 IGN:{} MOV:{} FUEL:{}% ODO:{}m EXT:{}mV",
                io(239),
                io(240),
                io(89),
                io(16),
                io(66)
            ),
            "readio" => match words.next().and_then(|w| w.parse::<u16>().ok()) {
                Some(id) => match last.io(id).and_then(IoValue::raw) {
                    Some(v) => format!("IO ID:{id} Value:{v}"),
                    None => format!("IO ID:{id} not found"),
                },
                None => "Param ID missing".to_string(),
            },
            "getrecord" => format!("Records:{} Unsent:{}", self.generated, self.backlog.len()),
            "cpureset" => "Reseting device".to_string(),
            "setdigout" => {
                let bits = words.next().unwrap_or("00");
                let d = |i| bits.as_bytes().get(i).map_or('0', |&b| b as char);
                format!("DOUT1:{} DOUT2:{} Timeout:INFINITY", d(0), d(1))
            }
            _ => format!("Unknown command: {command}"),
        }
    }
}

/// Run one device over TCP until the run stops, it finishes, or its login is rejected.
pub(crate) async fn run_tcp(mut dev: Device, mut stop: watch::Receiver<bool>) {
    let start = dev.cfg.t0
        + dev
            .cfg
            .ramp
            .mul_f64(f64::from(dev.index) / f64::from(dev.cfg.devices.max(1)));
    tokio::select! {
        _ = sleep_until(start) => {}
        _ = stop.changed() => return,
    }
    if dev.cfg.verbose {
        eprintln!(
            "device {} ({}): driving in {}",
            dev.index,
            dev.imei,
            dev.vehicle.city()
        );
    }
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        if !first {
            Stats::add(&dev.stats.c.reconnects, 1);
        }
        first = false;
        let attempt = tokio::select! {
            r = connect(&dev) => r,
            _ = stop.changed() => return,
        };
        let end = match attempt {
            Ok(stream) => {
                backoff = Duration::from_secs(1);
                dev.stats.connect();
                dev.connected_at = Some(Instant::now());
                let end = tcp_session(&mut dev, stream, &mut stop).await;
                dev.stats.disconnect();
                end
            }
            Err(Refused::Rejected) => End::Rejected,
            Err(Refused::Failed(e)) => {
                Stats::add(&dev.stats.c.connect_errors, 1);
                End::Retry(e)
            }
        };
        match end {
            End::Stop => return,
            End::Done | End::Rejected => {
                Stats::add(&dev.stats.c.finished, 1);
                if matches!(end, End::Rejected) {
                    Stats::add(&dev.stats.c.rejected, 1);
                    // Hold on to the ack-pending records so the summary shows them as unacked.
                    let _ = stop.changed().await;
                }
                return;
            }
            End::Retry(why) => {
                if dev.cfg.verbose {
                    eprintln!("device {} ({}): {why}; reconnecting", dev.index, dev.imei);
                }
                // Frames in flight are lost with the connection: resend them on the next one.
                dev.in_flight = None;
                let wait = backoff.mul_f64(dev.jitter.range(0.5, 1.5));
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Why a connection attempt gave no session.
enum Refused {
    /// The server answered the login with `00`.
    Rejected,
    /// Anything else: retry later.
    Failed(String),
}

impl From<String> for Refused {
    fn from(s: String) -> Self {
        Self::Failed(s)
    }
}

/// Connect and log in. Returns the stream, and any bytes that came after the `01`, once the
/// server accepted the IMEI.
async fn connect(dev: &Device) -> Result<(TcpStream, Vec<u8>), Refused> {
    let t = dev.cfg.ack_timeout;
    let addr = dev.cfg.server;
    let mut stream = match timeout(t, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect to {addr}: {e}").into()),
        Err(_) => return Err(format!("connect to {addr}: no answer within {t:?}").into()),
    };
    // Frames are small and latency is measured: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let login = dev.imei.login_frame();
    let mut buf = Vec::new();
    let answer = async {
        stream.write_all(&login).await?;
        let n = stream.read_buf(&mut buf).await?;
        Ok::<usize, io::Error>(n)
    };
    match timeout(t, answer).await {
        Ok(Ok(0)) => Err(String::from("server closed the connection after the login").into()),
        Ok(Ok(_)) => {
            Stats::add(&dev.stats.c.bytes_sent, login.len() as u64);
            match buf[0] {
                1 => {
                    buf.remove(0);
                    Stats::add(&dev.stats.c.logins, 1);
                    Ok((stream, buf))
                }
                0 => {
                    eprintln!(
                        "device {} ({}): login rejected by the server",
                        dev.index, dev.imei
                    );
                    Err(Refused::Rejected)
                }
                b => Err(format!("login answered 0x{b:02x}, expected 01 or 00").into()),
            }
        }
        Ok(Err(e)) => Err(format!("login: {e}").into()),
        Err(_) => Err(format!("no login answer within {t:?}").into()),
    }
}

/// How long an ambiguous `00000000` (an ack of zero, or the preamble of a command frame) may
/// wait for more bytes before it counts as an ack of zero.
const AMBIGUOUS_GRACE: Duration = Duration::from_millis(100);

async fn tcp_session(
    dev: &mut Device,
    (mut stream, mut rbuf): (TcpStream, Vec<u8>),
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut ambiguous_since: Option<Instant> = None;
    loop {
        match parse_server_bytes(dev, &mut rbuf, &mut ambiguous_since) {
            Ok(replies) => {
                for r in replies {
                    if let Err(e) = write(dev, &mut stream, &r).await {
                        return End::Retry(e);
                    }
                }
            }
            Err(e) => {
                dev.protocol_error(&e);
                return End::Retry(e);
            }
        }
        if dev.should_send() {
            let data = dev.take_frame();
            let frame = match fleetview::encode::avl_frame(&data) {
                Ok(f) => f,
                Err(e) => panic!("the simulator built an unencodable frame: {e}"),
            };
            if let Err(e) = write(dev, &mut stream, &frame).await {
                return End::Retry(e);
            }
            continue;
        }
        if dev.finished() && dev.in_flight.is_none() {
            return End::Done;
        }
        let wake = dev.next_wake();
        let deadline = dev.ack_deadline();
        let grace = ambiguous_since.map(|t| t + AMBIGUOUS_GRACE);
        tokio::select! {
            _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                dev.generate_due(Instant::now());
            }
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                Stats::add(&dev.stats.c.ack_timeouts, 1);
                return End::Retry(format!("no ack within {:?}", dev.cfg.ack_timeout));
            }
            _ = sleep_until(grace.unwrap_or_else(far_future)), if grace.is_some() => {
                // Nothing followed the four zero bytes: an ack of zero records.
                rbuf.drain(..4);
                ambiguous_since = None;
                dev.on_ack(0);
            }
            r = stream.read_buf(&mut rbuf) => match r {
                Ok(0) => return End::Retry("server closed the connection".into()),
                Ok(_) => {}
                Err(e) => return End::Retry(format!("read: {e}")),
            },
            _ = stop.changed() => return End::Stop,
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

async fn write(dev: &Device, stream: &mut TcpStream, bytes: &[u8]) -> Result<(), String> {
    match timeout(dev.cfg.ack_timeout, stream.write_all(bytes)).await {
        Ok(Ok(())) => {
            Stats::add(&dev.stats.c.bytes_sent, bytes.len() as u64);
            Ok(())
        }
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err(format!("write blocked for {:?}", dev.cfg.ack_timeout)),
    }
}

/// Take acks and command frames off the front of `rbuf`. Returns the frames to send back.
///
/// While a data frame waits for its ack, the next four bytes are the ack: a big-endian record
/// count. Four zero bytes are either an ack of zero or the preamble of a command frame the
/// server sent right after the previous ack; the bytes that follow decide, and when none come
/// within [`AMBIGUOUS_GRACE`] it is an ack of zero.
fn parse_server_bytes(
    dev: &mut Device,
    rbuf: &mut Vec<u8>,
    ambiguous_since: &mut Option<Instant>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut replies = Vec::new();
    let mut used = 0;
    let result = loop {
        let rest = &rbuf[used..];
        if rest.is_empty() {
            break Ok(());
        }
        if dev.in_flight.is_some() {
            if rest.len() < 4 {
                break Ok(());
            }
            if rest[..4] != [0, 0, 0, 0] {
                let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                used += 4;
                dev.on_ack(n.into());
                continue;
            }
            // Four zero bytes.
            match fleetview::decode_frame(rest, &dev.cfg.decode) {
                Ok(Status::Complete(p, len)) if matches!(p.content, Content::Command(_)) => {
                    used += len;
                    if let Content::Command(c) = &p.content {
                        replies.extend(command_reply(dev, c));
                    }
                }
                Ok(Status::Partial { .. }) if rest.len() < 9 || is_command_codec(rest[8]) => {
                    if rest.len() == 4 && ambiguous_since.is_none() {
                        *ambiguous_since = Some(Instant::now());
                    }
                    break Ok(());
                }
                _ => {
                    used += 4;
                    dev.on_ack(0);
                }
            }
            *ambiguous_since = None;
            continue;
        }
        match fleetview::decode_frame(rest, &dev.cfg.decode) {
            Ok(Status::Complete(p, len)) => {
                used += len;
                match &p.content {
                    Content::Command(c) => replies.extend(command_reply(dev, c)),
                    other => {
                        break Err(format!(
                            "unexpected {} from the server at stream offset {}",
                            kind(other),
                            used - len
                        ))
                    }
                }
            }
            Ok(Status::Partial { .. }) => break Ok(()),
            Err(e) => {
                break Err(format!(
                    "server sent bytes that are not a command frame: {e}"
                ))
            }
        }
    };
    rbuf.drain(..used);
    result.map(|()| replies)
}

fn kind(c: &Content) -> &'static str {
    match c {
        Content::Imei(_) => "IMEI login",
        Content::KeepAlive => "keep-alive",
        Content::Avl(_) => "AVL frame",
        Content::Command(_) => "command frame",
    }
}

fn is_command_codec(id: u8) -> bool {
    Codec::from_id(id).is_some_and(Codec::is_command)
}

fn command_reply(dev: &mut Device, c: &CommandPacket) -> Option<Vec<u8>> {
    let answer = dev.answer(c)?;
    match fleetview::encode::command_frame(&answer) {
        Ok(f) => Some(f),
        Err(e) => {
            dev.protocol_error(&format!("cannot encode the command response: {e}"));
            None
        }
    }
}

/// Run one device over UDP: each datagram carries the IMEI; an unacked datagram is sent again
/// after the ack timeout, a short ack makes the rest go in the next datagram.
pub(crate) async fn run_udp(mut dev: Device, mut stop: watch::Receiver<bool>) {
    let start = dev.cfg.t0
        + dev
            .cfg
            .ramp
            .mul_f64(f64::from(dev.index) / f64::from(dev.cfg.devices.max(1)));
    tokio::select! {
        _ = sleep_until(start) => {}
        _ = stop.changed() => return,
    }
    let bind: SocketAddr = if dev.cfg.server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            Stats::add(&dev.stats.c.connect_errors, 1);
            eprintln!("device {}: cannot open a UDP socket: {e}", dev.index);
            return;
        }
    };
    if let Err(e) = socket.connect(dev.cfg.server).await {
        Stats::add(&dev.stats.c.connect_errors, 1);
        eprintln!(
            "device {}: UDP connect to {}: {e}",
            dev.index, dev.cfg.server
        );
        return;
    }
    dev.stats.connect();
    dev.connected_at = Some(Instant::now());
    let mut packet_id: u16 = (dev.jitter.next_u64() & 0xFFFF) as u16;
    let mut avl_packet_id: u8 = 0;
    let mut datagram: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let end = loop {
        if dev.should_send() {
            packet_id = packet_id.wrapping_add(1);
            avl_packet_id = avl_packet_id.wrapping_add(1);
            let data = dev.take_frame();
            datagram = fleetview::encode::avl_datagram(&dev.imei, packet_id, avl_packet_id, &data)
                .unwrap_or_else(|e| panic!("the simulator built an unencodable datagram: {e}"));
            if let Err(e) = socket.send(&datagram).await {
                dev.protocol_error(&format!("send: {e}"));
            } else {
                Stats::add(&dev.stats.c.bytes_sent, datagram.len() as u64);
            }
            continue;
        }
        if dev.finished() && dev.in_flight.is_none() {
            break End::Done;
        }
        let wake = dev.next_wake();
        let deadline = dev.ack_deadline();
        tokio::select! {
            _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                dev.generate_due(Instant::now());
            }
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                // No ack: the same datagram again, as devices do.
                Stats::add(&dev.stats.c.ack_timeouts, 1);
                if let Some(f) = dev.in_flight.as_mut() {
                    f.sent_at = Instant::now();
                    Stats::add(&dev.stats.c.resent, f.records as u64);
                    Stats::add(&dev.stats.c.frames, 1);
                }
                if socket.send(&datagram).await.is_ok() {
                    Stats::add(&dev.stats.c.bytes_sent, datagram.len() as u64);
                }
            }
            r = socket.recv(&mut buf) => match r {
                Ok(n) => {
                    if let Some(reply) = udp_input(&mut dev, &buf[..n], packet_id, avl_packet_id) {
                        if socket.send(&reply).await.is_ok() {
                            Stats::add(&dev.stats.c.bytes_sent, reply.len() as u64);
                        }
                    }
                }
                // ICMP port unreachable and the like: the server is not there yet; the ack
                // timeout resends.
                Err(e) => dev.protocol_error(&format!("recv: {e}")),
            },
            _ = stop.changed() => break End::Stop,
        }
    };
    dev.stats.disconnect();
    if matches!(end, End::Done) {
        Stats::add(&dev.stats.c.finished, 1);
    }
}

/// One datagram from the server: an ack (7 bytes) or a command datagram. Returns the answer.
fn udp_input(dev: &mut Device, bytes: &[u8], packet_id: u16, avl_packet_id: u8) -> Option<Vec<u8>> {
    if bytes.len() == 7 && bytes[..2] == [0, 5] {
        let expected = fleetview::udp::ack(packet_id, avl_packet_id, bytes[6]);
        if bytes == expected && dev.in_flight.is_some() {
            dev.on_ack(bytes[6].into());
        } else {
            // An ack for an older datagram (its resend was already answered) or garbage:
            // devices match both ids and ignore the rest.
            dev.protocol_error(&format!(
                "ignored ack {} (waiting for packet {packet_id:04x}/{avl_packet_id:02x})",
                fleetview::hex::encode(bytes)
            ));
        }
        return None;
    }
    match fleetview::udp::decode_datagram(bytes, &dev.cfg.decode) {
        Ok(p) => match &p.content {
            Content::Command(c) => {
                let answer = dev.answer(c)?;
                let header = UdpHeader {
                    length: 0,
                    packet_id: p.udp.as_ref().map_or(0, |u| u.packet_id),
                    packet_type: 1,
                    avl_packet_id: p.udp.as_ref().map_or(0, |u| u.avl_packet_id),
                    imei: dev.imei.clone(),
                };
                fleetview::encode::encode_datagram(&header, &Content::Command(answer)).ok()
            }
            other => {
                dev.protocol_error(&format!(
                    "unexpected {} datagram from the server",
                    kind(other)
                ));
                None
            }
        },
        Err(e) => {
            dev.protocol_error(&format!("undecodable datagram from the server: {e}"));
            None
        }
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
