//! `fleetview simulate`: virtual Teltonika trackers driving plausible routes, talking to a server
//! over TCP or UDP exactly as devices do (login, batches, acks, resends, command answers), with a
//! progress display and final statistics.
//!
//! One tokio runtime (one worker thread by default) drives every device; each device is a task
//! with a few hundred bytes of state plus its unacked records, so 10,000 of them leave the CPU
//! to the server under test.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleetview::{Codec, DecodeOptions};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

mod acked_log;
mod backoff;
mod command;
mod device;
mod route;
mod stats;

use acked_log::AckedLog;
use device::{Config, Device};
use stats::{Latency, Snapshot, Stats};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Number of virtual devices.
    #[arg(long, default_value_t = 1)]
    devices: u32,
    /// The server's TCP (or UDP) address.
    #[arg(long, value_name = "HOST:PORT")]
    server: String,
    /// Send datagrams over the UDP channel instead of TCP.
    #[arg(long)]
    udp: bool,
    /// Connect with TLS (the server's --tls port), as a device with "Encryption: TLS".
    #[arg(long, requires = "ca", conflicts_with = "udp")]
    tls: bool,
    /// PEM file of the CA that signed the server's certificate (the one uploaded to devices).
    /// The certificate must name the host of --server.
    #[arg(long, requires = "tls", value_name = "PEM")]
    ca: Option<PathBuf>,
    /// AVL codec of the data frames: 8, 8E or 16.
    #[arg(long, default_value = "8E", value_parser = parse_codec)]
    codec: Codec,
    /// Records per second each device produces (wall clock); 0 makes idle devices that log in
    /// and hold their connection.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Records per frame: a device sends when it has this many (and its last frame is acked).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Most records in one frame when a device catches up after an outage.
    #[arg(long, default_value_t = 50)]
    max_frame_records: usize,
    /// Most records a device buffers while the server does not ack; newer ones are dropped.
    #[arg(long, default_value_t = 10_000)]
    max_buffered: usize,
    /// Simulated seconds per wall second: vehicles drive this much faster (e.g. 20 to watch them
    /// move on the live map); record timestamps stay at the wall-clock pace.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// Each device stops after this many records, once all are acked.
    #[arg(long)]
    records: Option<u64>,
    /// Stop after this many seconds (default: run until Ctrl-C, or until `--records` are done).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Spread the connections evenly over this many seconds.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    ramp: f64,
    /// After the ramp, stay connected this many seconds before sending data (to measure idle
    /// connections).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    hold: f64,
    /// Reconnect (TCP) or resend (UDP) when a frame is not acked within this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    ack_timeout: f64,
    /// First wait before reconnecting after a dropped or refused connection (TCP); each failed
    /// attempt doubles it, up to `--backoff-max`, and every wait is jittered by ±50 %.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    backoff: f64,
    /// Longest wait between two connection attempts.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    backoff_max: f64,
    /// Write every record the server acked to FILE, one line each: IMEI, timestamp (ms) and the
    /// record encoded alone in its codec (hex), to check later that the server stored them all.
    #[arg(long, value_name = "FILE")]
    acked_log: Option<PathBuf>,
    /// Seed of the routes and sensor values: the same seed and start time give the same records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First 14 digits of device 0's IMEI; device i adds i, and a Luhn check digit completes it.
    #[arg(long, default_value_t = 35_209_308_000_000)]
    imei_base: u64,
    /// Timestamp of the first record, milliseconds since 1970 (default: now + ramp + hold).
    #[arg(long, value_name = "MS")]
    start_time: Option<u64>,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    report_every: f64,
    /// Print the final statistics as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Log every device's connection problems on stderr.
    #[arg(long)]
    verbose: bool,
    /// Runtime worker threads (keep it low next to the server under test).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    match Codec::from_name(s) {
        Some(c @ (Codec::Codec8 | Codec::Codec8Ext | Codec::Codec16)) => Ok(c),
        Some(c) => Err(format!("{c} does not carry records: use 8, 8E or 16")),
        None => Err(format!("unknown codec {s:?}: use 8, 8E or 16")),
    }
}

impl Args {
    fn check(&self) -> Result<(), String> {
        let secs = [
            ("--rate", self.rate),
            ("--speedup", self.speedup),
            ("--ramp", self.ramp),
            ("--hold", self.hold),
            ("--ack-timeout", self.ack_timeout),
            ("--backoff", self.backoff),
            ("--backoff-max", self.backoff_max),
            ("--report-every", self.report_every),
            ("--duration", self.duration.unwrap_or(0.0)),
        ];
        for (name, v) in secs {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a non-negative number, got {v}"));
            }
        }
        if self.ack_timeout == 0.0 || self.report_every == 0.0 || self.backoff == 0.0 {
            return Err("--ack-timeout, --report-every and --backoff must be above zero".into());
        }
        if self.backoff_max < self.backoff {
            return Err(format!(
                "--backoff-max {} is below --backoff {}",
                self.backoff_max, self.backoff
            ));
        }
        if self.devices == 0 {
            return Err("--devices must be at least 1".into());
        }
        if self.batch == 0
            || self.batch > 255
            || self.max_frame_records == 0
            || self.max_frame_records > 255
        {
            return Err("--batch and --max-frame-records must be 1..=255 (a frame counts its records in one byte)".into());
        }
        if self.rate > 1000.0 {
            return Err(format!(
                "--rate {} is above 1000 records/s per device",
                self.rate
            ));
        }
        if self.imei_base >= 100_000_000_000_000 {
            return Err(format!(
                "--imei-base {} has more than 14 digits",
                self.imei_base
            ));
        }
        Ok(())
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    if let Err(e) = args.check() {
        eprintln!("fleetview simulate: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetview simulate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(simulate(args))
}

async fn simulate(args: Args) -> ExitCode {
    let server = match resolve(&args.server).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fleetview simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let acked_log = match args.acked_log.as_deref().map(AckedLog::create).transpose() {
        Ok(log) => log.map(Arc::new),
        Err(e) => {
            eprintln!("fleetview simulate: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match &args.ca {
        Some(ca) => {
            let host = args
                .server
                .rsplit_once(':')
                .map_or(args.server.as_str(), |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match crate::stream::TlsClient::new(ca, host) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("fleetview simulate: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let t0 = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp);
    let data_delay = Duration::from_secs_f64(args.ramp + args.hold);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let cfg = Arc::new(Config {
        server,
        tls,
        codec: args.codec,
        devices: args.devices,
        seed: args.seed,
        imei_base: args.imei_base,
        period,
        sim_step_s: period.map_or(0.0, |p| p.as_secs_f64() * args.speedup),
        batch: args.batch,
        max_frame_records: args.max_frame_records.max(args.batch),
        max_buffered: args.max_buffered.max(args.max_frame_records),
        ack_timeout: Duration::from_secs_f64(args.ack_timeout),
        backoff: Duration::from_secs_f64(args.backoff),
        backoff_max: Duration::from_secs_f64(args.backoff_max),
        acked_log: acked_log.clone(),
        records: args.records,
        t0,
        ramp,
        data_start: t0 + data_delay,
        data_start_ms: args
            .start_time
            .unwrap_or(now_ms + data_delay.as_millis() as u64),
        decode: DecodeOptions::default(),
        verbose: args.verbose,
    });
    let stats = Arc::new(Stats::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.devices {
        let dev = Device::new(i, cfg.clone(), stats.clone());
        let stop = stop_rx.clone();
        if args.udp {
            tasks.spawn(device::run_udp(dev, stop));
        } else {
            tasks.spawn(device::run_tcp(dev, stop));
        }
    }
    drop(stop_rx);
    let transport = if args.udp { "udp" } else { "tcp" };
    eprintln!(
        "fleetview simulate: {} devices → {server} ({transport}, Codec {}), {} records/s each in batches of {}",
        args.devices,
        args.codec.name(),
        args.rate,
        args.batch
    );

    let mut progress = Progress::new(&args, stats.clone(), t0, cfg.data_start, acked_log.clone());
    let deadline = args.duration.map(|d| t0 + Duration::from_secs_f64(d));
    let mut tick = tokio::time::interval(progress.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interrupted = false;
    loop {
        tokio::select! {
            done = tasks.join_next() => match done {
                None => break,
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(_) => {}
            },
            _ = tick.tick() => progress.report(),
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| t0 + Duration::from_secs(1 << 40))), if deadline.is_some() => {
                let _ = stop_tx.send(true);
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                let _ = stop_tx.send(true);
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    // The devices stop at once; give them a moment to close their sockets.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    })
    .await;
    progress.finish();
    let acked_log = acked_log.map(|log| log.finish());
    let mut summary = Summary::new(&args, transport, &stats, t0, cfg.data_start, interrupted);
    match acked_log {
        Some(Ok(lines)) => summary.acked_log_lines = Some(lines),
        Some(Err(e)) => {
            eprintln!("fleetview simulate: {e}");
            summary.acked_log_failed = true;
        }
        None => {}
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        summary.print();
    }
    summary.exit_code()
}

async fn resolve(server: &str) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host(server)
        .await
        .map_err(|e| format!("--server {server:?}: {e} (expected HOST:PORT)"))?;
    addrs
        .next()
        .ok_or_else(|| format!("--server {server:?}: the name has no address"))
}

/// The live view: an indicatif line on a terminal, plain `key=value` lines otherwise (easy to
/// read for people and for the load test script).
struct Progress {
    stats: Arc<Stats>,
    t0: Instant,
    data_start: Instant,
    bar: Option<indicatif::ProgressBar>,
    every: Duration,
    last: Snapshot,
    last_at: Instant,
    devices: u32,
    acked_log: Option<Arc<AckedLog>>,
}

impl Progress {
    fn new(
        args: &Args,
        stats: Arc<Stats>,
        t0: Instant,
        data_start: Instant,
        acked_log: Option<Arc<AckedLog>>,
    ) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let every = if bar.is_some() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs_f64(args.report_every)
        };
        Self {
            stats,
            t0,
            data_start,
            bar,
            every,
            last: Snapshot::default(),
            last_at: t0,
            devices: args.devices,
            acked_log,
        }
    }

    fn report(&mut self) {
        if let Some(log) = &self.acked_log {
            log.flush();
        }
        let now = Instant::now();
        let s = self.stats.c.snapshot();
        let dt = (now - self.last_at).as_secs_f64().max(1e-3);
        let rate = (s.acked - self.last.acked) as f64 / dt;
        let lat = self.stats.recent.take();
        let phase = if now < self.data_start {
            "connecting"
        } else {
            "data"
        };
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{phase} · connected {}/{} · sent {} · acked {} ({:.0}/s) · resent {} · ack p50 {:.1} ms p99 {:.1} ms · errors {}",
                s.connected,
                self.devices,
                s.sent,
                s.acked,
                rate,
                s.resent,
                lat.p50_ms,
                lat.p99_ms,
                s.connect_errors + s.protocol_errors + s.ack_timeouts
            ));
        } else {
            eprintln!(
                "t={:.1}s phase={phase} connected={} sent={} acked={} rate={rate:.0}/s resent={} acks={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} reconnects={} timeouts={} connect_errors={} dropped={}",
                (now - self.t0).as_secs_f64(),
                s.connected,
                s.sent,
                s.acked,
                s.resent,
                lat.count,
                lat.p50_ms,
                lat.p99_ms,
                lat.max_ms,
                s.reconnects,
                s.ack_timeouts,
                s.connect_errors,
                s.dropped,
            );
        }
        self.last = s;
        self.last_at = now;
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The final statistics.
#[derive(Serialize)]
struct Summary {
    devices: u32,
    transport: &'static str,
    codec: &'static str,
    seconds: f64,
    data_seconds: f64,
    /// Records acked per second of the data phase.
    acked_per_s: f64,
    counters: Snapshot,
    ack_latency: Latency,
    /// Records generated and not acked at the end.
    unacked: u64,
    records_per_device: Option<u64>,
    interrupted: bool,
    /// Lines written to `--acked-log` (one per acked record).
    acked_log_lines: Option<u64>,
    #[serde(skip)]
    acked_log_failed: bool,
}

impl Summary {
    fn new(
        args: &Args,
        transport: &'static str,
        stats: &Stats,
        t0: Instant,
        data_start: Instant,
        interrupted: bool,
    ) -> Self {
        let counters = stats.c.snapshot();
        let now = Instant::now();
        let data_seconds = now.saturating_duration_since(data_start).as_secs_f64();
        Self {
            devices: args.devices,
            transport,
            codec: args.codec.name(),
            seconds: (now - t0).as_secs_f64(),
            data_seconds,
            acked_per_s: if data_seconds > 0.0 {
                counters.acked as f64 / data_seconds
            } else {
                0.0
            },
            counters,
            ack_latency: stats.latency.summary(),
            unacked: (counters.generated - counters.dropped).saturating_sub(counters.acked),
            records_per_device: args.records,
            interrupted,
            acked_log_lines: None,
            acked_log_failed: false,
        }
    }

    fn print(&self) {
        let c = &self.counters;
        let l = &self.ack_latency;
        println!(
            "fleetview simulate: {} devices, {}, Codec {}, {:.1} s",
            self.devices, self.transport, self.codec, self.seconds
        );
        println!(
            "  connections   peak {}, logins {}, rejected {}, reconnects {}, connect errors {}",
            c.peak_connected, c.logins, c.rejected, c.reconnects, c.connect_errors
        );
        println!(
            "  records       generated {}, sent {}, acked {}, resent {}, unacked {}, dropped {}",
            c.generated, c.sent, c.acked, c.resent, self.unacked, c.dropped
        );
        println!(
            "  frames        {} sent ({} bytes), {} short acks, {} ack timeouts",
            c.frames, c.bytes_sent, c.short_acks, c.ack_timeouts
        );
        println!(
            "  throughput    {:.0} records/s acked over {:.1} s of data",
            self.acked_per_s, self.data_seconds
        );
        println!(
            "  ack latency   p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} acks)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
        );
        println!(
            "  commands      {} answered, {} protocol errors",
            c.commands, c.protocol_errors
        );
        if let Some(lines) = self.acked_log_lines {
            println!("  acked log     {lines} records");
        }
    }

    /// Success unless nothing got through, a `--records` run ended with records unacked, or the
    /// acked log could not be written.
    fn exit_code(&self) -> ExitCode {
        let c = &self.counters;
        if self.acked_log_failed {
            return ExitCode::FAILURE;
        }
        if c.logins == 0 && self.transport == "tcp" {
            eprintln!("fleetview simulate: no device could log in");
            return ExitCode::FAILURE;
        }
        if self.records_per_device.is_some() && !self.interrupted && self.unacked > 0 {
            eprintln!(
                "fleetview simulate: {} records were not acked before the end",
                self.unacked
            );
            return ExitCode::FAILURE;
        }
        ExitCode::SUCCESS
    }
}
