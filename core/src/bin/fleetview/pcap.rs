//! `fleetview pcap`: a capture file in, its device sessions out (JSON or a text timeline). The
//! file is read in chunks and each session is printed as soon as its connection closes, so
//! memory follows the open connections, not the file.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::sync::{mpsc, Arc, Mutex};

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
        first: true,
        count: 0,
    };
    let json_opts = JsonOptions {
        model: args.model.clone(),
    };
    // While this thread reads and analyzes the file, closed sessions are rendered by
    // RENDERERS threads (rendering JSON costs more than the analysis) and written in order by
    // one more. Every channel is bounded, so slow output holds back the reader rather than
    // piling up sessions.
    let tx = Pipeline::start(printer, args.format, &json_opts);
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
    writing = writing && tx.end(stats, failure.clone());
    let written = tx.finish();
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

/// Threads rendering sessions.
const RENDERERS: usize = 2;

/// What the writer thread is sent, in output order.
enum Output {
    /// A session's rendering, once a renderer has made it.
    Session(mpsc::Receiver<Vec<u8>>),
    End(CaptureStats, Option<Failure>),
}

/// A session to render, and where its rendering goes.
struct Job {
    session: SessionReport,
    done: mpsc::SyncSender<Vec<u8>>,
}

/// The renderers and the writer.
struct Pipeline {
    jobs: mpsc::SyncSender<Job>,
    output: mpsc::SyncSender<Output>,
    threads: Vec<std::thread::JoinHandle<io::Result<()>>>,
}

impl Pipeline {
    fn start(printer: Printer, format: Format, json_opts: &JsonOptions) -> Self {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(32);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut threads = Vec::new();
        for _ in 0..RENDERERS {
            let job_rx = Arc::clone(&job_rx);
            let opts = json_opts.clone();
            threads.push(std::thread::spawn(move || {
                loop {
                    let job = job_rx
                        .lock()
                        .map_err(|_| io::Error::other("poisoned"))?
                        .recv();
                    let Ok(job) = job else { return Ok(()) };
                    // The writer may have stopped (stdout closed): nothing to do then.
                    let _ = job.done.send(render(&job.session, format, &opts)?);
                }
            }));
        }
        let (output, output_rx) = mpsc::sync_channel::<Output>(64);
        threads.push(std::thread::spawn(move || printer.run(output_rx)));
        Self {
            jobs,
            output,
            threads,
        }
    }

    /// Queue a session for rendering and writing; false when the writer has stopped.
    fn send(&self, session: SessionReport) -> bool {
        let (done, rendered) = mpsc::sync_channel(1);
        self.jobs.send(Job { session, done }).is_ok()
            && self.output.send(Output::Session(rendered)).is_ok()
    }

    /// The end of the document; false when the writer has stopped.
    fn end(&self, stats: CaptureStats, failure: Option<Failure>) -> bool {
        self.output.send(Output::End(stats, failure)).is_ok()
    }

    /// Wait for every thread; whether all went well.
    fn finish(self) -> bool {
        drop(self.jobs);
        drop(self.output);
        let mut ok = true;
        for t in self.threads {
            ok &= t.join().is_ok_and(|r| r.is_ok());
        }
        ok
    }
}

/// A session as the output format shows it.
fn render(s: &SessionReport, format: Format, opts: &JsonOptions) -> io::Result<Vec<u8>> {
    match format {
        Format::Json => serde_json::to_vec(&s.to_json(opts)).map_err(io::Error::other),
        Format::Text => {
            let mut text = String::new();
            s.write_text(&mut text);
            text.push('\n');
            Ok(text.into_bytes())
        }
    }
}

/// Hand the closed sessions to the pipeline; false when the writer has stopped.
fn send_sessions(a: &mut Analyzer, tx: &Pipeline) -> bool {
    while let Some(s) = a.poll_session() {
        if !tx.send(s) {
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
                Output::Session(rendered) => {
                    // A renderer that failed leaves nothing: stop with an error.
                    let bytes = rendered
                        .recv()
                        .map_err(|_| io::Error::other("a session could not be rendered"))?;
                    self.session(&bytes, &mut out)?;
                }
                Output::End(stats, failure) => self.end(&mut out, &stats, failure.as_ref())?,
            }
        }
        out.flush()
    }

    fn session(&mut self, rendered: &[u8], out: &mut impl Write) -> io::Result<()> {
        self.count += 1;
        if self.format == Format::Json {
            out.write_all(if self.first { b"\n" } else { b",\n" })?;
            self.first = false;
        }
        out.write_all(rendered)
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
