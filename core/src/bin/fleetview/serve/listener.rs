//! The device side: a TCP task per connection driving core's [`Session`], and the UDP loop.
//!
//! A connection only moves bytes between its socket and its session, and asks the writer to
//! store what the session decoded. The order of one step is fixed: read, feed the session, store
//! each data frame and wait for the commit, ack it and write the ack at once, then announce the
//! records ([`super::live`]), and (with nothing unacked and no partial frame buffered) send the
//! next queued command. Each connection is its own task
//! with its own limits, so a garbage, slow or silent client only ever costs its own task.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use fleetview::api::DeviceEvent;
use fleetview::command::CommandMessage;
use fleetview::json::MessageJson;
use fleetview::{
    udp, CommandPacket, Content, DecodeError, DecodeOptions, Event, Imei, Packet, Session,
};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::{sleep_until, timeout, Instant};
use tracing::{debug, error, info, warn};

use super::admission::Ticket;
use super::metrics::metrics;
use super::storage::{now_ms, Batch, CommandEnd, RecordRow};
use super::{live, Ctx};
use crate::stream::Stream;

/// Per-connection and global limits, each a command-line flag.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Bytes a connection may hold undecoded (at least one frame of the largest size).
    pub(crate) max_buffered: usize,
    /// A connection silent this long (and a write blocked this long) is closed.
    pub(crate) idle: Duration,
    /// TCP connections held at once (see [`super::admission`]).
    pub(crate) max_connections: usize,
    /// From accept to the IMEI login (PROXY header and TLS handshake included).
    pub(crate) login_timeout: Duration,
    /// From the first byte of a frame to its last.
    pub(crate) frame_timeout: Duration,
    /// Datagrams being stored at once; beyond it the UDP loop waits (the kernel queues or drops).
    pub(crate) udp_in_flight: usize,
}

/// One device connection.
pub(crate) struct Connection {
    ctx: Arc<Ctx>,
    stream: Stream,
    peer: SocketAddr,
    session: Session,
    /// Its connection slot; the connection closes when it is taken to make room.
    ticket: Ticket,
    /// Until the login; then the idle timeout and the frame deadline apply.
    login_deadline: Instant,
    /// The last bytes received.
    last_read: Instant,
    /// The partial frame buffered: its stream offset and when its first bytes came.
    partial: Option<(usize, Instant)>,
    /// Bytes charged to the budget of partial frames ([`Ctx::buffered`]).
    charged: usize,
    /// `peer` as text, shared by every batch.
    address: Arc<str>,
    imei: Option<Arc<str>>,
    /// The device's row id, once logged in.
    device: Option<i64>,
    reg: Option<super::hub::Registration>,
    /// The command sent and awaiting its answer, with its deadline.
    in_flight: Option<(i64, Instant)>,
    /// A command that timed out here: its answer may still come, and nothing tells it from the
    /// answer to another command (the protocol has no command ids), so no other command goes
    /// out on this connection until that late answer has come (and been ignored).
    orphan: Option<i64>,
    /// Commands may go out: the device's first data is acked, it sent a keep-alive, or
    /// [`COMMAND_GRACE`] passed since the login with nothing from it.
    commands_ready: bool,
    logged_in_at: Option<Instant>,
}

/// How long after the login commands wait for the device's first data. A device connects to
/// send records and only takes commands once they are acked; one that sends nothing gets its
/// commands after this.
const COMMAND_GRACE: Duration = Duration::from_secs(3);

/// What woke the connection up.
enum Step {
    /// Bytes fed to the session (its verdict), or `None` at the end of the stream.
    Read(std::io::Result<Option<Result<usize, DecodeError>>>),
    /// The login, idle or frame deadline passed.
    Deadline(Limit),
    Evicted,
    Wake,
    Kicked,
    CommandTimeout,
    Grace,
    Shutdown,
}

/// The deadlines of the read side.
#[derive(Clone, Copy)]
enum Limit {
    Login,
    Idle,
    Frame,
}

/// Why the connection ends; logged once.
type Close = String;

/// Bytes read at once, into a buffer on the stack (see [`poll_feed`]).
const READ_CHUNK: usize = 16 * 1024;

/// Read what the socket has and feed it to the session through a buffer on the stack: an idle
/// connection then holds no read buffer of its own (a 16 KiB buffer each was most of an idle
/// connection's memory), and the session keeps only an unfinished frame.
fn poll_feed(
    stream: &mut Stream,
    session: &mut Session,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<Option<Result<usize, DecodeError>>>> {
    let mut buf = [0u8; READ_CHUNK];
    let mut read = ReadBuf::new(&mut buf);
    ready!(Pin::new(stream).poll_read(cx, &mut read))?;
    let data = read.filled();
    Poll::Ready(Ok((!data.is_empty()).then(|| session.handle_input(data))))
}

impl Connection {
    /// A connection admitted with `ticket`; it must log in by `login_deadline`.
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        stream: Stream,
        peer: SocketAddr,
        ticket: Ticket,
        login_deadline: Instant,
    ) -> Self {
        Self {
            session: Session::new(ctx.decode.clone()),
            ctx,
            stream,
            peer,
            ticket,
            login_deadline,
            last_read: Instant::now(),
            partial: None,
            charged: 0,
            address: peer.to_string().into(),
            imei: None,
            device: None,
            reg: None,
            in_flight: None,
            orphan: None,
            commands_ready: false,
            logged_in_at: None,
        }
    }

    fn imei(&self) -> &str {
        self.imei.as_deref().unwrap_or("-")
    }

    /// Serve the connection until it ends; `early` are bytes already read (after a PROXY
    /// header).
    pub(crate) async fn run(mut self, early: Vec<u8>, _alive: mpsc::Sender<()>) {
        debug!(peer = %self.peer, "connection opened");
        let reason = if early.is_empty() {
            self.serve().await
        } else {
            let fed = self.session.handle_input(&early);
            drop(early);
            match Box::pin(self.input(fed)).await {
                Ok(()) => self.serve().await,
                Err(reason) => reason,
            }
        };
        // Whatever is still queued (acks of what was stored, the reject byte) goes out if it can.
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        let _ = self
            .ctx
            .buffered
            .charge(std::mem::take(&mut self.charged), 0);
        if let Some((id, _)) = self.in_flight.take() {
            // It may have run on the device: never sent again unless the API asks for it.
            warn!(imei = %self.imei(), command = id, "connection closed before the device answered the command: marked unanswered");
            let end = CommandEnd::Unanswered(format!(
                "the connection closed before the device answered ({reason})"
            ));
            self.end_command(id, end).await;
        }
        if let (Some(imei), Some(reg)) = (self.imei.clone(), self.reg.take()) {
            if let Some(cluster) = &self.ctx.cluster {
                cluster.logout(&imei, reg.id).await;
            }
            if self.ctx.hub.unregister(&imei, reg.id) {
                self.ctx
                    .hub
                    .publish("device", &DeviceEvent::disconnect(&imei));
            }
        }
        if self.imei.is_some() {
            info!(imei = %self.imei(), peer = %self.peer, offset = self.session.offset(), "connection closed: {reason}");
        } else {
            // Sockets that never log in come in floods: not a line each at the default level.
            debug!(peer = %self.peer, offset = self.session.offset(), "connection closed: {reason}");
        }
    }

    /// The next deadline of the read side: the login deadline until the login, then the idle
    /// timeout, or the frame deadline while a frame is half received.
    fn read_deadline(&self) -> (Instant, Limit) {
        let limits = &self.ctx.limits;
        if self.reg.is_none() {
            return (self.login_deadline, Limit::Login);
        }
        let idle = self.last_read + limits.idle;
        match self.partial {
            Some((_, since)) if since + limits.frame_timeout < idle => {
                (since + limits.frame_timeout, Limit::Frame)
            }
            _ => (idle, Limit::Idle),
        }
    }

    /// Why the connection closes when `limit` passed.
    fn expired(&self, limit: Limit) -> Close {
        let limits = &self.ctx.limits;
        match limit {
            Limit::Login => format!("no login within {} s", limits.login_timeout.as_secs_f64()),
            Limit::Idle => format!("idle for {} s", limits.idle.as_secs_f64()),
            Limit::Frame => format!(
                "frame at byte {} not complete within {} s ({} bytes received)",
                self.session.offset(),
                limits.frame_timeout.as_secs_f64(),
                self.session.buffered()
            ),
        }
    }

    async fn serve(&mut self) -> Close {
        let mut shutdown = self.ctx.shutdown.clone();
        let evicted = self.ticket.evicted.clone();
        // Waited on only once registered; a stand-in until then.
        let unregistered = Arc::new(Notify::new());
        loop {
            let (wake, kick) = match &self.reg {
                Some(r) => (r.wake.clone(), r.kick.clone()),
                None => (unregistered.clone(), unregistered.clone()),
            };
            let deadline = self.in_flight.map(|(_, d)| d);
            let grace = self
                .logged_in_at
                .filter(|_| !self.commands_ready)
                .map(|t| t + COMMAND_GRACE);
            let registered = self.reg.is_some();
            let (read_deadline, limit) = self.read_deadline();
            let (stream, session) = (&mut self.stream, &mut self.session);
            let step = tokio::select! {
                r = poll_fn(|cx| poll_feed(stream, session, cx)) => Step::Read(r),
                _ = sleep_until(read_deadline) => Step::Deadline(limit),
                _ = evicted.notified(), if !registered => Step::Evicted,
                _ = wake.notified(), if registered => Step::Wake,
                _ = kick.notified(), if registered => Step::Kicked,
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => Step::CommandTimeout,
                _ = sleep_until(grace.unwrap_or_else(Instant::now)), if grace.is_some() => Step::Grace,
                _ = shutdown.wait_for(|&s| s) => Step::Shutdown,
            };
            match step {
                Step::Read(Err(e)) => return format!("read error: {e}"),
                Step::Read(Ok(None)) => return "closed by the device".into(),
                Step::Read(Ok(Some(fed))) => {
                    self.last_read = Instant::now();
                    // Boxed, like the other steps taken after a wake-up: an idle connection's
                    // task then holds only what it waits on, not the largest step's state.
                    if let Err(reason) = Box::pin(self.input(fed)).await {
                        return reason;
                    }
                }
                Step::Deadline(limit) => return self.expired(limit),
                Step::Evicted => return "closed to make room: not logged in".into(),
                Step::Wake => {}
                Step::Grace => self.commands_ready = true,
                Step::Kicked => return "the device logged in on a newer connection".into(),
                Step::CommandTimeout => {
                    if let Some((id, _)) = self.in_flight.take() {
                        let secs = self.ctx.command_timeout.as_secs_f64();
                        warn!(imei = %self.imei(), command = id, "no answer to the command within {secs} s: marked unanswered; no other command goes out on this connection until its late answer comes");
                        let end = CommandEnd::Unanswered(format!(
                            "no answer from the device within {secs} s"
                        ));
                        self.orphan = Some(id);
                        Box::pin(self.end_command(id, end)).await;
                    }
                }
                Step::Shutdown => return "server shutting down".into(),
            }
            if let Err(e) = self.flush().await {
                return format!("write failed: {e}");
            }
            if let Err(reason) = Box::pin(self.next_command()).await {
                return reason;
            }
        }
    }

    /// Bytes were fed to the session (`fed` is its verdict): act on its events, then check
    /// what it buffers.
    async fn input(&mut self, fed: Result<usize, DecodeError>) -> Result<(), Close> {
        // Frames decoded before an error are still stored and acked.
        self.events().await?;
        if let Err(e) = fed {
            metrics().decode_error(e.code());
            warn!(imei = %self.imei(), peer = %self.peer, offset = e.offset, kind = e.code(), "rejected input: {e}");
            return Err(format!("cannot resynchronise after: {e}"));
        }
        if self.session.is_closed() {
            return Err("login rejected".into());
        }
        let buffered = self.session.buffered();
        let offset = self.session.offset();
        if buffered > self.ctx.limits.max_buffered {
            let max = self.ctx.limits.max_buffered;
            warn!(imei = %self.imei(), peer = %self.peer, offset, buffered, max, "too many bytes buffered without a complete frame");
            return Err(format!(
                "buffer limit: {buffered} bytes undecoded at byte {offset}, limit {max}"
            ));
        }
        let charged = std::mem::replace(&mut self.charged, buffered);
        if let Err(total) = self.ctx.buffered.charge(charged, buffered) {
            let max = self.ctx.buffered.max();
            warn!(imei = %self.imei(), peer = %self.peer, offset, buffered, total, max, "partial frames of all connections over --max-buffered-total");
            return Err(format!(
                "partial frames of all connections take {total} bytes, limit {max}: closed at byte {offset}"
            ));
        }
        self.partial = match self.partial {
            _ if buffered == 0 => None,
            Some((at, since)) if at == offset => Some((at, since)),
            _ => Some((offset, Instant::now())),
        };
        if buffered == 0 {
            // A large frame must not leave a frame-sized buffer behind on an idle connection.
            self.session.shrink();
        }
        Ok(())
    }

    async fn events(&mut self) -> Result<(), Close> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Login(imei) => self.login(imei).await?,
                Event::Records(packet) => self.records(packet).await?,
                Event::Message(packet) => self.message(packet).await,
                Event::KeepAlive { offset } => {
                    debug!(imei = %self.imei(), offset, "keep-alive");
                    self.commands_ready = self.reg.is_some();
                }
                Event::Invalid(e) => {
                    metrics().decode_error(e.code());
                    warn!(imei = %self.imei(), peer = %self.peer, offset = e.offset, kind = e.code(), "frame skipped, not acked: {e}");
                }
            }
        }
        Ok(())
    }

    async fn login(&mut self, imei: Imei) -> Result<(), Close> {
        let digits = imei.as_str().to_string();
        let allowed = self.ctx.allowed(&digits);
        if allowed && !self.ticket.logged_in() {
            return Err("closed to make room before the login".into());
        }
        self.session.accept_imei(allowed);
        metrics().login(allowed);
        if !allowed {
            warn!(imei = %digits, peer = %self.peer, offset = 0, "login rejected: IMEI not in the allowlist");
            self.imei = Some(digits.into());
            return Ok(());
        }
        // Without an allowlist a device gets its row with its first committed data: an IMEI
        // that logs in and sends nothing leaves no trace in the database.
        let create = self.ctx.has_allowlist();
        match self
            .ctx
            .store
            .seen(&digits, "tcp", self.peer.to_string(), create)
            .await
        {
            Ok(id) => self.device = id,
            Err(e) => {
                error!(imei = %digits, "cannot record the login: {e}");
                return Err(format!("database: {e}"));
            }
        }
        info!(imei = %digits, peer = %self.peer, "device logged in");
        let address = self.peer.to_string();
        let (reg, old) = self.ctx.hub.register(&digits, &address);
        if let Some(old) = old {
            // The protocol has no device authentication: either may be an impostor.
            warn!(imei = %digits, old = %old, new = %address, "second connection with an IMEI already connected: closing the older one");
        }
        if let Some(cluster) = &self.ctx.cluster {
            match cluster.login(&digits, reg.id, &address).await {
                Ok(Some((node, old))) => {
                    warn!(imei = %digits, old = %old, node = %node, new = %address, "second connection with an IMEI connected to another node: that node closes its connection");
                }
                Ok(None) => {}
                Err(e) => warn!(imei = %digits, "cannot record the session: {e}"),
            }
            // A command queued while the device was away (or whose NOTIFY was missed).
            self.ctx.store.may_have_pending(&digits);
        }
        self.reg = Some(reg);
        self.logged_in_at = Some(Instant::now());
        self.ctx.hub.publish(
            "device",
            &DeviceEvent::login(&digits, "tcp", address, now_ms()),
        );
        self.imei = Some(digits.into());
        Ok(())
    }

    async fn records(&mut self, packet: Packet) -> Result<(), Close> {
        let Content::Avl(data) = packet.content else {
            return Ok(());
        };
        let arrived = Instant::now();
        let imei = self.imei.clone().unwrap_or_default();
        let ctx = &self.ctx;
        let model = ctx.model.as_deref();
        let codec = data.codec;
        let batch = Batch {
            imei: imei.clone(),
            device: self.device,
            transport: "tcp",
            codec: codec.name(),
            address: self.address.clone(),
            received_ms: now_ms(),
            rows: data
                .records
                .into_iter()
                .map(|r| RecordRow::new(r, codec, &ctx.fuel_ids, model))
                .collect(),
            events: Vec::new(),
            geofence_events: Vec::new(),
        };
        let n = batch.rows.len();
        match self.ctx.store.records(batch).await {
            Ok((batch, ids, device)) => {
                self.device = Some(device);
                self.session.ack(n as u32);
                self.commands_ready = true;
                // The ack goes out now; announcing the records is not the device's business.
                self.flush()
                    .await
                    .map_err(|e| format!("write failed: {e}"))?;
                metrics().ack("tcp", arrived.elapsed());
                debug!(imei = %imei, offset = packet.offset, records = n, new = ids.iter().flatten().count(), "stored, acked");
                live::after_commit(&self.ctx, &batch, &ids).await;
                Ok(())
            }
            Err(e) => {
                error!(imei = %imei, offset = packet.offset, records = n, "not stored, not acked: {e}");
                Err(format!("database: {e}"))
            }
        }
    }

    async fn message(&mut self, packet: Packet) {
        let Content::Command(cmd) = &packet.content else {
            return;
        };
        let Some(first) = cmd.messages.first() else {
            return;
        };
        if let Some(imei) = first.imei {
            // Codec 14: the answer names the device it comes from, which must be this one.
            let own = Imei::new(self.imei()).and_then(|i| i.to_bcd().ok());
            if own != Some(imei) {
                warn!(imei = %self.imei(), peer = %self.peer, offset = packet.offset, answer_imei = %fleetview::hex::encode(&imei),
                    "Codec 14 answer carrying another IMEI than the session's: ignored");
                return;
            }
        }
        let Some((id, _)) = self.in_flight.take() else {
            if let Some(late) = self.orphan.take() {
                warn!(imei = %self.imei(), command = late, offset = packet.offset, text = first.text().unwrap_or(""),
                    "late answer to a command that timed out: logged only (it stays unanswered); commands resume");
                return;
            }
            info!(imei = %self.imei(), offset = packet.offset, codec = cmd.codec.name(), text = first.text().unwrap_or(""),
                "message from the device with no command awaiting an answer: logged only");
            return;
        };
        let response = serde_json::to_string(&MessageJson::new(first)).unwrap_or_default();
        let error = (first.kind == CommandMessage::NACK).then(|| {
            "nACK: the device answered that the command's IMEI is not its own (Codec 14)"
                .to_string()
        });
        info!(imei = %self.imei(), command = id, text = first.text().unwrap_or(""), "command answered");
        self.end_command(id, CommandEnd::Answered { response, error })
            .await;
    }

    async fn end_command(&mut self, id: i64, end: CommandEnd) {
        if let Err(e) = self.ctx.store.end(id, end).await {
            error!(imei = %self.imei(), command = id, "cannot store the command's outcome: {e}");
        }
        publish_command(&self.ctx, id).await;
    }

    /// Send the next queued command when the device is logged in and ready for it, nothing
    /// awaits an answer, and no frame is half received (everything it sent is acked).
    async fn next_command(&mut self) -> Result<(), Close> {
        if !self.commands_ready
            || self.in_flight.is_some()
            || self.orphan.is_some()
            || self.reg.is_none()
            || self.session.buffered() > 0
            || self.session.is_closed()
        {
            return Ok(());
        }
        let imei = self.imei.clone().unwrap_or_default();
        if !self.ctx.store.has_pending(&imei) {
            return Ok(());
        }
        let queued = match self.ctx.store.take(&imei).await {
            Ok(Some(q)) => q,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("database: {e}")),
        };
        let packet = command_packet(&queued.codec, &imei, queued.payload);
        let sent = packet
            .map_err(|e| e.to_string())
            .and_then(|p| self.session.send_command(&p).map_err(|e| e.to_string()));
        match sent {
            Ok(()) => {
                info!(imei = %imei, command = queued.id, codec = %queued.codec, "command sent");
                self.in_flight = Some((queued.id, Instant::now() + self.ctx.command_timeout));
                publish_command(&self.ctx, queued.id).await;
                self.flush().await.map_err(|e| format!("write failed: {e}"))
            }
            Err(e) => {
                warn!(imei = %imei, command = queued.id, "cannot encode the command: {e}");
                self.end_command(queued.id, CommandEnd::Failed(format!("cannot encode: {e}")))
                    .await;
                Ok(())
            }
        }
    }

    /// Write what the session has to send, within the idle timeout (a client that does not read
    /// is dropped rather than holding its task forever).
    async fn flush(&mut self) -> std::io::Result<()> {
        let mut out = Vec::new();
        while let Some(bytes) = self.session.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        if out.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&out).await?;
            // TLS: push the records out.
            self.stream.flush().await
        };
        match timeout(self.ctx.limits.idle, write).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the device does not read",
            )),
        }
    }
}

/// The command frame for a queued command: Codec 12 as is, Codec 14 addressed to the device.
fn command_packet(
    codec: &str,
    imei: &str,
    payload: Vec<u8>,
) -> Result<CommandPacket, fleetview::EncodeError> {
    let codec = if codec == "14" {
        fleetview::Codec::Codec14
    } else {
        fleetview::Codec::Codec12
    };
    CommandPacket::new(
        codec,
        payload,
        (codec == fleetview::Codec::Codec14).then_some(imei),
    )
}

/// Announce a command's current state to live subscribers.
async fn publish_command(ctx: &Arc<Ctx>, id: i64) {
    if let Ok(Some(v)) = ctx.reader.command(id).await {
        ctx.hub.publish("command", &v);
    }
}

/// Receive datagrams until shutdown. Each datagram is stored by its own task (bounded by
/// [`Limits::udp_in_flight`]) and acked once committed.
pub(crate) async fn udp(socket: UdpSocket, ctx: Arc<Ctx>, alive: mpsc::Sender<()>) {
    let socket = Arc::new(socket);
    let permits = Arc::new(Semaphore::new(ctx.limits.udp_in_flight));
    let mut shutdown = ctx.shutdown.clone();
    let mut buf = vec![0u8; 65_536];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = shutdown.wait_for(|&s| s) => break,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from an earlier send, and the like: not fatal.
                debug!("UDP receive: {e}");
                continue;
            }
        };
        let bytes = &buf[..n];
        let packet = match udp::decode_datagram(bytes, &ctx.decode) {
            Ok(p) => p,
            Err(e) => {
                let imei = sniff_imei(bytes).unwrap_or_else(|| "-".into());
                warn!(imei = %imei, peer = %peer, offset = e.offset, kind = e.code(), len = n, "datagram rejected, not acked: {e}");
                continue;
            }
        };
        let header = packet.header.clone();
        let imei = header.imei.as_str().to_string();
        if !ctx.allowed(&imei) {
            warn!(imei = %imei, peer = %peer, offset = 8, "datagram rejected, not acked: IMEI not in the allowlist");
            continue;
        }
        let Content::Avl(data) = packet.content else {
            info!(imei = %imei, peer = %peer, "command codec over UDP: not supported, ignored");
            continue;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let arrived = Instant::now();
        let model = ctx.model.as_deref();
        let codec = data.codec;
        let batch = Batch {
            imei: imei.as_str().into(),
            device: None,
            transport: "udp",
            codec: codec.name(),
            address: peer.to_string().into(),
            received_ms: now_ms(),
            rows: data
                .records
                .into_iter()
                .map(|r| RecordRow::new(r, codec, &ctx.fuel_ids, model))
                .collect(),
            events: Vec::new(),
            geofence_events: Vec::new(),
        };
        let (ctx, socket, alive) = (ctx.clone(), socket.clone(), alive.clone());
        tokio::spawn(async move {
            let n = batch.rows.len();
            match ctx.store.records(batch).await {
                Ok((batch, ids, _)) => {
                    // Online and announced before the ack, as a TCP device is before its 01.
                    let now = now_ms();
                    if ctx
                        .hub
                        .udp_seen(&imei, now, ctx.limits.idle.as_millis() as i64)
                    {
                        ctx.hub.publish(
                            "device",
                            &DeviceEvent::login(&imei, "udp", peer.to_string(), now),
                        );
                    }
                    let accepted = u8::try_from(n).unwrap_or(u8::MAX);
                    match socket.send_to(&header.ack(accepted), peer).await {
                        Ok(_) => metrics().ack("udp", arrived.elapsed()),
                        Err(e) => warn!(imei = %imei, peer = %peer, "cannot send the ack: {e}"),
                    }
                    debug!(imei = %imei, packet_id = header.packet_id, records = n, "datagram stored, acked");
                    live::after_commit(&ctx, &batch, &ids).await;
                }
                Err(e) => {
                    error!(imei = %imei, peer = %peer, records = n, "datagram not stored, not acked: {e}")
                }
            }
            drop((permit, alive));
        });
    }
    debug!("UDP listener stopped");
}

/// The IMEI of a datagram that failed to decode, for the log line, when lenient decoding gets
/// as far as the IMEI.
fn sniff_imei(bytes: &[u8]) -> Option<String> {
    let lenient = DecodeOptions::lenient();
    udp::decode_datagram(bytes, &lenient)
        .ok()
        .and_then(|p| p.imei().map(|i| i.as_str().to_string()))
}
