//! `fleetview serve`: the TCP and UDP listeners devices connect to, the database they are
//! stored in (SQLite, or PostgreSQL shared by several nodes), and the HTTP API and web UI that
//! show them.
//!
//! Tasks: one per TCP connection ([`listener`]), one UDP loop, one HTTP server ([`api`]), one
//! writer ([`storage`]) that commits everything in groups, and (SQLite) a thread that copies the
//! WAL into the database file meanwhile, or (PostgreSQL) the node's cluster tasks. A device is acked as soon as its records are
//! committed; live events and fuel monitoring ([`live`]) follow the ack. SIGINT/SIGTERM stop accepting, let every connection finish
//! the frame it is storing (and ack it), close the database cleanly and exit 0.

mod accept;
mod admission;
mod api;
mod forward;
mod fuel;
mod hub;
mod limits;
mod listener;
mod live;
mod metrics;
mod proxy;
mod query;
mod reports;
mod storage;
mod tls;

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fleetview::{DecodeOptions, Imei};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use self::hub::Hub;
use self::listener::Limits;
use self::query::Reader;
use self::storage::postgres::cluster::{Cluster, Node};
use self::storage::{Db, Store, Sync};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// TCP address devices connect to.
    #[arg(long, default_value = "0.0.0.0:5027")]
    tcp: SocketAddr,
    /// UDP address devices send datagrams to.
    #[arg(long, default_value = "0.0.0.0:5027")]
    udp: SocketAddr,
    /// TLS address for devices with "Encryption: TLS" (e.g. 0.0.0.0:5028), beside the plain
    /// port. Needs --tls-cert and --tls-key. TLS 1.2 and 1.3.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls: Option<SocketAddr>,
    /// PEM certificate chain of the TLS port, leaf first (signed by the CA loaded into the
    /// devices).
    #[arg(long, requires = "tls")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS certificate (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls")]
    tls_key: Option<PathBuf>,
    /// Every connection to the plain TCP port starts with a PROXY protocol header (v2 or v1),
    /// from HAProxy or stunnel terminating TLS in front of it: the address in the header is the
    /// one logged and counted per address. Connections without one are closed.
    #[arg(long)]
    proxy_protocol: bool,
    /// HTTP address of the API and web UI. Anything but a loopback address needs a token
    /// (--token-file, FLEETVIEW_TOKEN or --token).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The database: an SQLite file (created when missing), or PostgreSQL as
    /// postgres://USER@HOST:PORT/DB (schema created and migrated by the server) to run several
    /// nodes on one database behind a TCP load balancer.
    #[arg(long, default_value = "fleetview.db", value_parser = Db::from_str)]
    db: Db,
    /// This node's name in a PostgreSQL cluster (unique per running node). Default: the host
    /// name and the process id.
    #[arg(long)]
    node_id: Option<String>,
    /// Seconds a PostgreSQL node is taken for alive after renewing its lease (renewed every
    /// fifth of it). When it expires (the node died or lost the database), another node drops
    /// its sessions and marks its commands in flight unanswered.
    #[arg(long, default_value_t = 15.0)]
    lease: f64,
    /// IMEI allowlist: one IMEI per line, `#` comments. Without it every IMEI is accepted.
    #[arg(long)]
    allow: Option<PathBuf>,
    /// Directory of the built web UI. Default: web/dist when it exists.
    #[arg(long)]
    web: Option<PathBuf>,
    /// Device model for IO names, scaling and fuel ids (e.g. FMB920). Default: the common FMB
    /// definitions.
    #[arg(long)]
    model: Option<String>,
    /// Accept frames with CRC, length or count inconsistencies (each logged as a warning).
    #[arg(long)]
    lenient: bool,
    /// Largest data frame (TCP data field, UDP datagram) in bytes; larger ones close the
    /// connection. Devices send AVL packets of at most 1280 bytes (512 on FMB640) and camera
    /// chunks over Codec 12 of about 2,070 bytes: 4096 takes both with room to spare, and
    /// bounds what a connection may make the server buffer.
    #[arg(long, default_value_t = limits::MAX_FRAME)]
    max_frame: usize,
    /// Bytes a TCP connection may hold without a complete frame. Default and minimum:
    /// --max-frame + 12 (one frame of the largest size).
    #[arg(long)]
    max_buffered: Option<usize>,
    /// Bytes of partial frames all TCP connections may hold together; the connection whose
    /// frame would go beyond is closed. Bounds the memory a flood of half frames can take.
    #[arg(long, default_value_t = limits::BUFFERED_TOTAL)]
    max_buffered_total: usize,
    /// Seconds a logged-in TCP connection may stay silent (or not read what is written to it).
    #[arg(long, default_value_t = 600.0)]
    idle_timeout: f64,
    /// Seconds from connect to the IMEI login (TLS handshake and PROXY header included). A
    /// device sends its IMEI right after connecting: this leaves room for a few lost packets
    /// on a slow cellular link.
    #[arg(long, default_value_t = limits::LOGIN_TIMEOUT)]
    login_timeout: f64,
    /// Seconds from the first byte of a frame to its last. A device's frame arrives in one or
    /// a few TCP segments within a second or two; a frame trickling in slower is closed.
    #[arg(long, default_value_t = limits::FRAME_TIMEOUT)]
    frame_timeout: f64,
    /// TCP connections held at once. Default: what the open-files limit allows (raised to
    /// its hard limit at start), less 64 for the database and the listeners and
    /// --http-max-connections for the HTTP API. At the
    /// limit, the oldest connection that has not logged in makes room; logged-in devices
    /// are never pushed out.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections from one address that have not logged in yet; one more closes the oldest
    /// of them. Logged-in connections do not count: any number of devices behind one
    /// carrier NAT get in, as each logs in within a round trip.
    #[arg(long, default_value_t = limits::PENDING_PER_ADDRESS)]
    max_pending_per_address: usize,
    /// Seconds to wait for the answer to a command before marking it unanswered (not sent again;
    /// POST /api/commands/{id}/retry queues it again).
    #[arg(long, default_value_t = 60.0)]
    command_timeout: f64,
    /// Smallest fuel level change, in the sensor's unit (% or l), reported as a refuel or drain.
    #[arg(long, default_value_t = 10.0)]
    fuel_threshold: f64,
    /// Durability of each commit before the ack: full syncs the WAL to disk (survives a power
    /// cut), normal does not (survives a crash of the server). On PostgreSQL: full is
    /// synchronous_commit = on, normal is off. A tracker deletes what is acked, so full is the
    /// default; it costs no throughput here (one sync per group of frames) and gave a lower p99
    /// than normal in the load test (core/loadtest).
    #[arg(long, value_enum, default_value_t = Sync::Full)]
    sync: Sync,
    /// Forward every stored record and event to URL (repeatable): http(s)://… (a POST of a JSON
    /// array per batch) or mqtt://HOST:PORT/PREFIX (a message per record on PREFIX/IMEI, QoS
    /// 1). Delivered at least once, in order, from an outbox written with the records; in a
    /// PostgreSQL cluster give every node the same list.
    #[arg(long, value_name = "URL")]
    forward: Vec<String>,
    /// File holding the secret of the webhook signature (X-Fleetview-Signature: sha256=HMAC of
    /// the body). Default: $FLEETVIEW_FORWARD_SECRET when set; without either, not signed.
    #[arg(long, value_name = "PATH")]
    forward_secret_file: Option<PathBuf>,
    /// The HTTP API's token, names, limits and certificate.
    #[command(flatten)]
    api: api::HttpArgs,
    /// Log lines on stderr: text (for people) or json (one object per line: timestamp, level,
    /// fields, for a log collector).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Thresholds of trips and stops.
    #[command(flatten)]
    reports: reports::ReportArgs,
    /// Write the bound addresses as JSON to this file once listening (for scripts and tests).
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// What the listeners and the API share.
pub(crate) struct Ctx {
    store: Store,
    admission: Arc<admission::Admission>,
    /// Partial frames across connections (`--max-buffered-total`).
    buffered: limits::Budget,
    reader: Reader,
    hub: Arc<Hub>,
    /// This node's part in a cluster (PostgreSQL).
    cluster: Option<Arc<Cluster>>,
    /// The allowlist (`--allow`), read again on SIGHUP.
    allow: Option<std::sync::RwLock<Arc<HashSet<String>>>>,
    limits: Limits,
    decode: DecodeOptions,
    model: Option<String>,
    /// The model's fuel level ids (see [`fuel::FuelIds`]).
    fuel_ids: fuel::FuelIds,
    fuel_threshold: f64,
    /// Trips and stops (`--min-stop-duration` and the others).
    thresholds: reports::Thresholds,
    command_timeout: Duration,
    web: Option<PathBuf>,
    shutdown: watch::Receiver<bool>,
    /// This node's forwarders (`--forward`).
    forwarders: forward::Forwarders,
}

impl Ctx {
    fn allowed(&self, imei: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|a| a.read().unwrap_or_else(|p| p.into_inner()).contains(imei))
    }

    /// Whether an allowlist is in force (then a device row is created at its login).
    fn has_allowlist(&self) -> bool {
        self.allow.is_some()
    }

    /// SIGHUP: read the allowlist file again. A file that cannot be read or has a bad line
    /// leaves the list in force unchanged (and says why). Connected devices stay connected; the
    /// new list applies to every login and datagram from now on.
    fn reload_allowlist(&self, path: &Path) {
        let Some(allow) = &self.allow else { return };
        match read_allowlist(path) {
            Ok(set) => {
                let n = set.len();
                let mut list = allow.write().unwrap_or_else(|p| p.into_inner());
                let added = set.difference(&list).count();
                let removed = list.difference(&set).count();
                *list = Arc::new(set);
                info!(
                    "allowlist {} reloaded: {n} IMEIs ({added} added, {removed} removed)",
                    path.display()
                );
            }
            Err(e) => error!("SIGHUP: {e}; the allowlist in force is kept"),
        }
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETVIEW_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match args.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetview serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetview serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The allowlist file: one IMEI per line; blank lines and `#` comments ignored.
fn read_allowlist(path: &Path) -> Result<HashSet<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the allowlist {}: {e}", path.display()))?;
    let mut set = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        if Imei::new(entry).is_none() {
            return Err(format!(
                "{}:{}: {entry:?} is not an IMEI (expected digits only)",
                path.display(),
                n + 1
            ));
        }
        set.insert(entry.to_string());
    }
    Ok(set)
}

fn seconds(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} {v}: expected a positive number of seconds"))
}

async fn serve(args: Args) -> Result<(), String> {
    let http_setup = api::HttpSetup::new(&args.api, args.http)?;
    let max_buffered = args.max_buffered.unwrap_or(args.max_frame + 12);
    if max_buffered < args.max_frame + 12 {
        return Err(format!(
            "--max-buffered {max_buffered} is below --max-frame {} + 12: a frame of the largest size would not fit",
            args.max_frame
        ));
    }
    if !(args.fuel_threshold.is_finite() && args.fuel_threshold > 0.0) {
        return Err(format!(
            "--fuel-threshold {}: expected a positive number",
            args.fuel_threshold
        ));
    }
    let thresholds = args.reports.thresholds()?;
    let idle = seconds("idle-timeout", args.idle_timeout)?;
    let login_timeout = seconds("login-timeout", args.login_timeout)?;
    let frame_timeout = seconds("frame-timeout", args.frame_timeout)?;
    if args.max_pending_per_address == 0 {
        return Err("--max-pending-per-address must be at least 1".into());
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(tls::acceptor(cert, key).map_err(|e| format!("--tls-cert/--tls-key: {e}"))?)
        }
        _ => None,
    };
    let max_connections =
        limits::connections(args.max_connections, http_setup.server.max_connections)?;
    info!(
        "partial frames take at most {} MiB ({max_connections} connections x {max_buffered} bytes, --max-buffered-total {})",
        (max_connections.saturating_mul(max_buffered) >> 20).min(args.max_buffered_total >> 20),
        args.max_buffered_total
    );
    let command_timeout = seconds("command-timeout", args.command_timeout)?;
    if let Some(m) = &args.model {
        if !fleetview::io_catalog::is_known_model(m) {
            warn!("unknown model {m:?}: IO names fall back to the common FMB definitions");
        }
    }
    let allow = match &args.allow {
        Some(path) => {
            let set = read_allowlist(path)?;
            info!("allowlist {}: {} IMEIs", path.display(), set.len());
            Some(set)
        }
        None => {
            warn!("no --allow file: every IMEI is accepted");
            None
        }
    };
    let web = match args.web {
        Some(dir) if dir.join("index.html").is_file() => Some(dir),
        Some(dir) => return Err(format!("--web {}: no index.html there", dir.display())),
        None => Some(PathBuf::from("web/dist")).filter(|d| d.join("index.html").is_file()),
    };
    match &web {
        Some(dir) => info!("web UI from {}", dir.display()),
        None => {
            warn!("no web UI (web/dist not built: npm --prefix web run build); the API is served")
        }
    }

    let node = Node {
        name: args.node_id.clone().unwrap_or_else(default_node_id),
        lease: seconds("lease", args.lease)?,
    };
    if node.name.is_empty() || node.name.contains('\t') {
        return Err("--node-id: expected a non-empty name without tabs".into());
    }
    let targets = args
        .forward
        .iter()
        .map(|s| forward::Target::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = forward::secret(args.forward_secret_file.as_deref())?;
    let opened = storage::open(&args.db, args.sync, &node, !targets.is_empty())
        .await
        .map_err(|e| e.to_string())?;
    let (store, writer, reader, cluster) =
        (opened.store, opened.writer, opened.reader, opened.cluster);
    info!("database: {}", args.db);
    let bind_err = |what: &str, addr: SocketAddr, e: std::io::Error| {
        format!("cannot listen on {what} {addr}: {e}")
    };
    let tcp = TcpListener::bind(args.tcp)
        .await
        .map_err(|e| bind_err("TCP", args.tcp, e))?;
    let udp = UdpSocket::bind(args.udp)
        .await
        .map_err(|e| bind_err("UDP", args.udp, e))?;
    let tls_listener = match (args.tls, tls) {
        (Some(addr), Some(acceptor)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_err("TLS", addr, e))?;
            let bound = l.local_addr().map_err(|e| e.to_string())?;
            Some((l, acceptor, bound))
        }
        _ => None,
    };
    let http = TcpListener::bind(args.http)
        .await
        .map_err(|e| bind_err("HTTP", args.http, e))?;
    let addrs = (
        tcp.local_addr().map_err(|e| e.to_string())?,
        udp.local_addr().map_err(|e| e.to_string())?,
        http.local_addr().map_err(|e| e.to_string())?,
    );

    let (stop, shutdown) = watch::channel(false);
    let hub = Arc::new(Hub::new());
    if let Some(c) = &cluster {
        c.start(hub.clone(), shutdown.clone()).await;
        info!("cluster node {}", c.node());
    }
    let lock = match &reader {
        Reader::Postgres(p) => Some(p.clone()),
        Reader::Sqlite(_) => None,
    };
    let (forwarders, forward_tasks) = forward::start(
        targets,
        secret,
        store.clone(),
        reader.clone(),
        args.model.clone(),
        lock,
        shutdown.clone(),
    )
    .await?;
    let ctx = Arc::new(Ctx {
        forwarders,
        store,
        admission: admission::Admission::new(max_connections, args.max_pending_per_address),
        buffered: limits::Budget::new(args.max_buffered_total),
        reader,
        hub,
        cluster,
        allow: allow.map(|a| std::sync::RwLock::new(Arc::new(a))),
        limits: Limits {
            max_buffered,
            idle,
            max_connections,
            login_timeout,
            frame_timeout,
            udp_in_flight: 1024,
        },
        decode: DecodeOptions {
            lenient: args.lenient,
            max_frame_len: args.max_frame,
        },
        fuel_ids: fuel::FuelIds::new(args.model.as_deref()),
        model: args.model,
        fuel_threshold: args.fuel_threshold,
        thresholds,
        command_timeout,
        web,
        shutdown: shutdown.clone(),
    });

    // Every connection and datagram task holds a clone; all gone = all finished.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let plain = if args.proxy_protocol {
        accept::Port::Proxy
    } else {
        accept::Port::Plain
    };
    let tcp_task = tokio::spawn(accept::tcp(tcp, plain, ctx.clone(), alive.clone()));
    let tls_addr = tls_listener.as_ref().map(|(_, _, a)| *a);
    let tls_task = tls_listener.map(|(l, acceptor, _)| {
        tokio::spawn(accept::tcp(
            l,
            accept::Port::Tls(acceptor),
            ctx.clone(),
            alive.clone(),
        ))
    });
    let udp_task = tokio::spawn(listener::udp(udp, ctx.clone(), alive.clone()));
    drop(alive);
    let app = api::router(
        ctx.clone(),
        http_setup.token.clone(),
        http_setup.guard(addrs.2)?,
    );
    let http_task = tokio::spawn(api::serve(
        http,
        app,
        http_setup.server.clone(),
        shutdown.clone(),
        Duration::from_secs(5),
    ));

    // Handlers first: a signal right after the ready line must shut down gracefully too.
    let signal = shutdown_signal()?;
    let hup_task = tokio::spawn(reload_on_hangup(
        ctx.clone(),
        args.allow.clone(),
        shutdown.clone(),
    )?);
    let mut ready = serde_json::json!({"tcp": addrs.0.to_string(), "udp": addrs.1.to_string(), "http": addrs.2.to_string()});
    if let Some(a) = tls_addr {
        ready["tls"] = a.to_string().into();
        info!("TLS for devices on {a}");
    }
    if let Some(path) = &args.ready_file {
        std::fs::write(path, ready.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    info!(
        "listening: TCP {}, UDP {}, web UI and API at {}://{}/",
        addrs.0,
        addrs.1,
        http_setup.scheme(),
        addrs.2
    );
    // One line on stdout for scripts: the addresses actually bound (port 0 picks a free one).
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "fleetview serve ready {ready}");
    let _ = out.flush();
    drop(out);

    let signal = signal.await;
    info!("{signal}: shutting down (finishing the frames being stored)");
    let _ = stop.send(true);
    let _ = hup_task.await;
    let _ = tcp_task.await;
    if let Some(t) = tls_task {
        let _ = t.await;
    }
    let _ = udp_task.await;
    if tokio::time::timeout(Duration::from_secs(10), all_done.recv())
        .await
        .is_err()
    {
        warn!("connections still busy after 10 s: exiting without them");
    }
    // The HTTP loop gives its connections 5 s; a little more for it to notice.
    if tokio::time::timeout(Duration::from_secs(6), http_task)
        .await
        .is_err()
    {
        warn!("HTTP requests still running after 5 s: exiting without them");
    }
    for t in forward_tasks {
        let _ = t.await;
    }
    // Everything stored so far is committed; then the WAL is folded into the database file.
    if let Err(e) = ctx.store.close().await {
        warn!("closing the database: {e}");
    }
    writer.join().await;
    if let Some(c) = &ctx.cluster {
        c.leave().await;
    }
    info!("database closed");
    Ok(())
}

/// A node name unique among running nodes: the host name and the process id.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "fleetview".into());
    format!("{host}-{}", std::process::id())
}

/// Reload the allowlist at each SIGHUP until shutdown (the handler is set up before the
/// server says it is ready).
fn reload_on_hangup(
    ctx: Arc<Ctx>,
    path: Option<PathBuf>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<impl std::future::Future<Output = ()>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup =
            signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
        Ok(async move {
            loop {
                tokio::select! {
                    _ = hup.recv() => match &path {
                        Some(path) => ctx.reload_allowlist(path),
                        None => info!("SIGHUP: no --allow file to reload"),
                    },
                    _ = shutdown.wait_for(|&s| s) => return,
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (ctx, path);
        Ok(async move {
            let _ = shutdown.wait_for(|&s| s).await;
        })
    }
}

/// Listen for SIGINT and SIGTERM (Ctrl-C elsewhere); the future resolves with the signal's name.
fn shutdown_signal() -> Result<impl std::future::Future<Output = &'static str>, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        })
    }
}
