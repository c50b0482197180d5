//! The TCP conversation: connect, log in, send frames, read 4-byte acks and command frames,
//! reconnect with back-off ([`Backoff`]) when the connection drops, is refused, or an ack does
//! not come; the records not acked go again on the next connection.

use std::io;
use std::time::Duration;

use fleetview::{Codec, CommandPacket, Content, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::{far_future, kind, Device, End};
use crate::simulate::backoff::Backoff;
use crate::simulate::stats::Stats;
use crate::stream::Stream;

/// Run one device over TCP until the run stops, it finishes, or its login is rejected.
pub(crate) async fn run_tcp(mut dev: Device, mut stop: watch::Receiver<bool>) {
    if !dev.wait_for_ramp(&mut stop).await {
        return;
    }
    if dev.cfg.verbose {
        eprintln!(
            "device {} ({}): driving in {}",
            dev.index,
            dev.imei,
            dev.vehicle.city()
        );
    }
    let mut backoff = Backoff::new(dev.cfg.backoff, dev.cfg.backoff_max);
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
                dev.stats.connect();
                let since = Instant::now();
                dev.connected_at = Some(since);
                let acked = dev.acked;
                let end = tcp_session(&mut dev, stream, &mut stop).await;
                dev.stats.disconnect();
                // A session that got records acked (or, for an idle device, lasted) was a real
                // one: back off from the start again. A server that takes logins but drops
                // every connection (its database is down) keeps the back-off growing.
                if dev.acked > acked || since.elapsed() >= dev.cfg.backoff_max {
                    backoff.reset();
                }
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
                let wait = backoff.next_wait(&mut dev.jitter);
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
async fn connect(dev: &Device) -> Result<(Stream, Vec<u8>), Refused> {
    let t = dev.cfg.ack_timeout;
    let addr = dev.cfg.server;
    let tcp = match timeout(t, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect to {addr}: {e}").into()),
        Err(_) => return Err(format!("connect to {addr}: no answer within {t:?}").into()),
    };
    // Frames are small and latency is measured: do not let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    let mut stream = match &dev.cfg.tls {
        None => Stream::Plain(tcp),
        Some(tls) => match timeout(t, tls.connect(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("TLS handshake with {addr}: {e}").into()),
            Err(_) => {
                return Err(format!("TLS handshake with {addr}: no answer within {t:?}").into())
            }
        },
    };
    let login = dev.imei.login_frame();
    let mut buf = Vec::new();
    let answer = async {
        stream.write_all(&login).await?;
        stream.flush().await?;
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
    (mut stream, mut rbuf): (Stream, Vec<u8>),
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

async fn write(dev: &Device, stream: &mut Stream, bytes: &[u8]) -> Result<(), String> {
    let sent = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match timeout(dev.cfg.ack_timeout, sent).await {
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
