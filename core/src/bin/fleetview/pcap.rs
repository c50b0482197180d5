//! `fleetview pcap`: a capture file in, its device sessions out (JSON or a text timeline). The
//! file is read in chunks and each session is printed as soon as its connection closes, so
//! memory follows the open connections, not the file.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::sync::mpsc;

use fleetview::capture::{Analyzer, CaptureError, CaptureStats, SessionReport};
use fleetview::json::JsonOptions;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `{"sessions":[…],"stats":{…}}`, one session per line.
    Json,
    /// A readable timeline per session.
    Text,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The capture: a .pcap or .pcapng file (`-`: stdin).
    file: PathBuf,
    /// The server's port: of each conversation, the side on this port is the server. Devices
    /// on other ports are recognized by their login or datagrams.
    #[arg(long, default_value_t = fleetview::capture::DEFAULT_PORT)]
    port: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Device model for IO names and scaling (e.g. FMB920).
    #[arg(long)]
    model: Option<String>,
    /// Print progress on stderr (default: only when stderr is a terminal).
    #[arg(long)]
    progress: bool,
}

/// Bytes read from the file at a time.
const CHUNK: usize = 256 << 10;

pub(crate) fn run(args: Args) -> ExitCode {
    let (mut input, size): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        match File::open(&args.file) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(f), size)
            }
            Err(e) => {
                let message = format!("cannot open {}: {e}", args.file.display());
                println!("{}", error_json("io", 0, &message));
                eprintln!("fleetview: {message}");
                return ExitCode::FAILURE;
            }
        }
    };
    let printer = Printer {
        format: args.format,
        json_opts: JsonOptions {
            model: args.model.clone(),
        },
        first: true,
        count: 0,
    };
    // Sessions are rendered and written on a thread of their own while this one reads and
    // analyzes the file: rendering JSON costs about as much as the analysis. The channel is
    // bounded, so a slow writer holds back the reader rather than piling up sessions.
    let (tx, rx) = mpsc::sync_channel::<Output>(64);
    let writer = std::thread::spawn(move || printer.run(rx));
    let progress = args.progress || io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_report = started;
    let mut analyzer = Analyzer::new(args.port);
    let mut buf = vec![0; CHUNK];
    let mut failure: Option<Failure> = None;
    let mut writing = true;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let at = analyzer.stats().bytes;
                failure = Some(("io", at, format!("read error at byte {at}: {e}")));
                break;
            }
        };
        let result = analyzer.handle_input(&buf[..n]);
        writing = writing && send_sessions(&mut analyzer, &tx);
        if let Err(e) = result {
            failure = Some(capture_failure(&e));
            break;
        }
        if !writing {
            break;
        }
        if progress && last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            report_progress(&analyzer, size, started);
        }
    }
    let end = analyzer.finish();
    if failure.is_none() {
        if let Err(e) = end {
            failure = Some(capture_failure(&e));
        }
    }
    writing = writing && send_sessions(&mut analyzer, &tx);
    let stats = analyzer.stats();
    writing = writing && tx.send(Output::End(stats, failure.clone())).is_ok();
    drop(tx);
    let written = writer.join().is_ok_and(|r| r.is_ok());
    if !(writing && written) {
        // stdout closed or failing (a pipe to `head`, a full disk).
        return ExitCode::from(2);
    }
    if progress {
        let secs = started.elapsed().as_secs_f64();
        let peak = peak_memory().map_or(String::new(), |kb| {
            format!(", peak memory {:.1} MB", kb as f64 / 1024.0)
        });
        eprintln!(
            "fleetview: {} bytes, {} packets, {} sessions in {secs:.2} s{peak}",
            stats.bytes, stats.frames, stats.sessions
        );
    }
    match failure {
        Some((_, _, message)) => {
            eprintln!("fleetview: {message}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// The process's peak resident memory in KiB (`VmHWM`, Linux; `None` elsewhere).
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What stopped the file: error kind, byte offset, message.
type Failure = (&'static str, u64, String);

/// What the writer thread is sent.
enum Output {
    Session(Box<SessionReport>),
    End(CaptureStats, Option<Failure>),
}

/// Hand the closed sessions to the writer; false when it has stopped.
fn send_sessions(a: &mut Analyzer, tx: &mpsc::SyncSender<Output>) -> bool {
    while let Some(s) = a.poll_session() {
        if tx.send(Output::Session(Box::new(s))).is_err() {
            return false;
        }
    }
    true
}

fn capture_failure(e: &CaptureError) -> Failure {
    (e.code(), e.offset, e.to_string())
}

fn error_json(kind: &str, offset: u64, message: &str) -> String {
    serde_json::json!({"error": {"kind": kind, "offset": offset, "message": message}}).to_string()
}

fn report_progress(a: &Analyzer, size: Option<u64>, started: Instant) {
    let s = a.stats();
    let mb = s.bytes as f64 / 1e6;
    let rate = mb / started.elapsed().as_secs_f64().max(1e-9);
    match size {
        Some(total) if total > 0 => eprintln!(
            "fleetview: {mb:.1} of {:.1} MB ({:.0} %), {} packets, {} sessions, {} open, {rate:.0} MB/s",
            total as f64 / 1e6,
            s.bytes as f64 * 100.0 / total as f64,
            s.frames,
            s.sessions,
            a.open_sessions()
        ),
        _ => eprintln!(
            "fleetview: {mb:.1} MB, {} packets, {} sessions, {} open, {rate:.0} MB/s",
            s.frames,
            s.sessions,
            a.open_sessions()
        ),
    }
}

struct Printer {
    format: Format,
    json_opts: JsonOptions,
    first: bool,
    count: usize,
}

impl Printer {
    fn start(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Json => write!(out, "{{\"sessions\":["),
            Format::Text => Ok(()),
        }
    }

    /// The writer thread: the document's start, each session, the end.
    fn run(mut self, rx: mpsc::Receiver<Output>) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        self.start(&mut out)?;
        for msg in rx {
            match msg {
                Output::Session(s) => self.session(&s, &mut out)?,
                Output::End(stats, failure) => self.end(&mut out, &stats, failure.as_ref())?,
            }
        }
        out.flush()
    }

    fn session(&mut self, s: &SessionReport, out: &mut impl Write) -> io::Result<()> {
        self.count += 1;
        match self.format {
            Format::Json => {
                if !self.first {
                    out.write_all(b",")?;
                }
                self.first = false;
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut *out, &s.to_json(&self.json_opts))
                    .map_err(io::Error::other)
            }
            Format::Text => {
                let mut text = String::new();
                s.write_text(&mut text);
                writeln!(out, "{text}")
            }
        }
    }

    fn end(
        &mut self,
        out: &mut impl Write,
        stats: &CaptureStats,
        failure: Option<&Failure>,
    ) -> io::Result<()> {
        match self.format {
            Format::Json => {
                write!(out, "\n],\"stats\":{}", serde_json::to_string(stats)?)?;
                if let Some((kind, offset, message)) = failure {
                    let e = serde_json::json!({"kind": kind, "offset": offset, "message": message});
                    write!(out, ",\"error\":{e}")?;
                }
                writeln!(out, "}}")
            }
            Format::Text => {
                writeln!(
                    out,
                    "{} sessions; {} packets in {} bytes ({}); skipped: {} not TCP/UDP, {} fragments, {} malformed, {} of other conversations",
                    self.count,
                    stats.frames,
                    stats.bytes,
                    stats.format.unwrap_or("unknown format"),
                    stats.not_tcp_or_udp,
                    stats.fragments,
                    stats.malformed,
                    stats.other_traffic
                )?;
                if let Some((_, _, message)) = failure {
                    writeln!(out, "error: {message}")?;
                }
                Ok(())
            }
        }
    }
}
