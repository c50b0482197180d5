//! The writer's jobs: what connections ask ([`Op`]), what they get back ([`Outcome`]), how a
//! writer collects a group of them, and what both engines share to apply them: [`Applied`]
//! (a job's result before the commit) and the SQL of the command statements (the same text on
//! both engines: `$N` parameters, numbered in order of first use, which SQLite binds by
//! position too).

use tokio::sync::{mpsc, oneshot};

use super::outbox::{Cursor, OutboxEvent};
use super::{Batch, Error, Queued, MAX_GROUP};

/// How a sent command ended.
#[derive(Debug)]
pub(crate) enum CommandEnd {
    /// The device answered (`response` is the MessageJson); `error` set for a nACK.
    Answered {
        response: String,
        error: Option<String>,
    },
    /// It could not be sent (`failed`).
    Failed(String),
    /// Sent, but no answer came (timeout, the connection dropped): `unanswered`, not sent again
    /// unless the API asks for it.
    Unanswered(String),
}

/// A job for the writer.
pub(crate) enum Op {
    Records(Batch),
    /// A device logged in: update its row (transport, address, time); create it only when
    /// `create` (with an allowlist: every row is for a known IMEI). Without it a row appears with
    /// the device's first committed data.
    Seen {
        imei: String,
        transport: &'static str,
        address: String,
        create: bool,
    },
    /// Queue a command; the device row is created if missing (a device connected without data).
    Queue {
        imei: String,
        codec: &'static str,
        text: Option<String>,
        payload: Vec<u8>,
    },
    Take {
        imei: String,
    },
    End {
        id: i64,
        end: CommandEnd,
    },
    /// Queue an `unanswered` or `failed` command again (the API's retry).
    Retry {
        id: i64,
    },
    /// Create a geofence (`geometry`: the JSON of core's `GeofenceGeometry`, validated).
    CreateGeofence {
        name: String,
        geometry: String,
    },
    /// Delete a geofence and its events.
    DeleteGeofence {
        id: i64,
    },
    /// Events for the forwarders, in a transaction of their own (see [`super::outbox`]).
    Events(Vec<OutboxEvent>),
    /// The forwarders this node runs: their rows are created (a new one starts before every
    /// entry) and marked as run now; `only`: the rows of any other forwarder are deleted (one
    /// node: its `--forward` list is the whole list).
    Register {
        names: Vec<String>,
        only: bool,
    },
    /// A forwarder has delivered every entry up to `at` (or is alive without news: the same
    /// position); `trim`: then delete the entries every forwarder has delivered.
    Delivered {
        name: String,
        at: Cursor,
        trim: bool,
    },
    /// Commit what is queued before it, then stop: later jobs fail, nobody is acked for them.
    Close,
}

/// What a job produced.
pub(crate) enum Outcome {
    /// The batch back, with the new row id of each record (`None` for a duplicate) and the
    /// device's row id.
    Records(Batch, Vec<Option<i64>>, i64),
    Device(Option<i64>),
    Id(i64),
    Taken(Option<Queued>),
    /// Retry: the device's IMEI when the command was queued again.
    Retried(Option<String>),
    /// DeleteGeofence: whether it existed.
    Deleted(bool),
    Done,
}

pub(crate) struct Job {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Outcome, Error>>,
}

/// Take what is queued, up to [`MAX_GROUP`] jobs.
pub(super) fn drain(rx: &mut mpsc::Receiver<Job>, group: &mut Vec<Job>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => group.push(job),
            Err(_) => break,
        }
    }
}

/// Cut a group at its `Close` job: true when there was one (the writer stops after this group).
/// Jobs queued after the close are dropped unanswered: their senders see an error.
pub(super) fn cut_at_close(group: &mut Vec<Job>) -> bool {
    match group.iter().position(|j| matches!(j.op, Op::Close)) {
        Some(at) => {
            group.truncate(at + 1);
            true
        }
        None => false,
    }
}

/// What applying a job produced: turned into the job's [`Outcome`] after the commit (a group
/// may be applied twice, so the job itself is kept until then).
pub(super) enum Applied {
    /// The new row id of each record (`None` for a duplicate), the device's row id and the
    /// geofence events stored with the records.
    Records {
        ids: Vec<Option<i64>>,
        device: i64,
        events: Vec<fleetview::api::EventJson>,
    },
    Device(Option<i64>),
    Id(i64),
    Taken(Option<Queued>),
    Retried(Option<String>),
    Deleted(bool),
    Done,
}

impl Applied {
    fn outcome(self, op: Op) -> Outcome {
        match (self, op) {
            (
                Applied::Records {
                    ids,
                    device,
                    events,
                },
                Op::Records(mut batch),
            ) => {
                batch.geofence_events = events;
                Outcome::Records(batch, ids, device)
            }
            (Applied::Device(id), _) => Outcome::Device(id),
            (Applied::Id(id), _) => Outcome::Id(id),
            (Applied::Taken(q), _) => Outcome::Taken(q),
            (Applied::Retried(imei), _) => Outcome::Retried(imei),
            (Applied::Deleted(found), _) => Outcome::Deleted(found),
            _ => Outcome::Done,
        }
    }
}

/// Each job's [`Outcome`] from what applying it produced (after the commit).
pub(super) fn outcomes(
    ops: Vec<Op>,
    applied: Vec<Result<Applied, Error>>,
) -> Vec<Result<Outcome, Error>> {
    ops.into_iter()
        .zip(applied)
        .map(|(op, r)| r.map(|a| a.outcome(op)))
        .collect()
}

/// A device logged in (without creating its row): `$1` now, `$2` transport, `$3` address,
/// `$4` IMEI; returns the row id.
pub(super) const SEEN_SQL: &str =
    "UPDATE devices SET last_seen_ms = $1, transport = $2, address = $3 WHERE imei = $4 RETURNING id";
/// A command's device row, created when missing: `$1` IMEI, `$2` now.
pub(super) const QUEUE_DEVICE_SQL: &str =
    "INSERT INTO devices (imei, first_seen_ms, last_seen_ms) VALUES ($1, $2, $2) ON CONFLICT (imei) DO NOTHING";
/// An answer: `$1` status ([`CommandEnd::answered_status`]), `$2` now, `$3` response, `$4`
/// error, `$5` id.
pub(super) const ANSWERED_SQL: &str =
    "UPDATE commands SET status = $1, answered_ms = $2, response = $3, error = $4 WHERE id = $5";
/// Not sent: `$1` error, `$2` id.
pub(super) const FAILED_SQL: &str =
    "UPDATE commands SET status = 'failed', error = $1 WHERE id = $2";
/// No answer (unless one came meanwhile): `$1` error, `$2` id.
pub(super) const UNANSWERED_SQL: &str =
    "UPDATE commands SET status = 'unanswered', error = $1 WHERE id = $2 AND status = 'sent'";
/// The API's retry: `$1` id; returns the device's IMEI when the command was queued again.
pub(super) const RETRY_SQL: &str =
    "UPDATE commands SET status = 'queued', sent_ms = NULL, answered_ms = NULL, response = NULL,
       error = NULL, node = NULL
     WHERE id = $1 AND status IN ('unanswered', 'failed')
     RETURNING (SELECT imei FROM devices d WHERE d.id = commands.device_id)";

impl CommandEnd {
    /// The status of an answered command: `failed` for a nACK.
    pub(crate) fn answered_status(error: &Option<String>) -> &'static str {
        if error.is_some() {
            "failed"
        } else {
            "answered"
        }
    }
}
