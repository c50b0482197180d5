//! SQLite's read side: read-only connections (WAL lets them read while the writer commits),
//! each query run on a blocking thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::super::outbox::{self, ForwarderRow};
use super::super::Error;
use crate::serve::query::{self, Cols, FuelReading, MAX_LIMIT};

/// Read-only connections for the API.
#[derive(Clone)]
pub(crate) struct Pool {
    conns: Arc<Vec<Mutex<Connection>>>,
    /// One per connection: queries beyond them wait here rather than each holding a blocking
    /// thread (a burst of them, as when many devices seed their fuel state at once).
    permits: Arc<tokio::sync::Semaphore>,
}

impl Cols for rusqlite::Row<'_> {
    type Err = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn float(&self, i: usize) -> rusqlite::Result<f64> {
        self.get(i)
    }
    fn opt_float(&self, i: usize) -> rusqlite::Result<Option<f64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn boolean(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
    fn bytes(&self, i: usize) -> rusqlite::Result<Vec<u8>> {
        self.get(i)
    }
}

impl Pool {
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let conns = (0..3)
            .map(|_| {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| {
                    Error::open(format!("cannot open {} for reading", path.display()), e)
                })?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            permits: Arc::new(tokio::sync::Semaphore::new(conns.len())),
            conns: Arc::new(conns),
        })
    }

    /// Run `f` on a free connection, on a blocking thread.
    pub(super) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let conns = self.conns.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let guard = conns
                .iter()
                .find_map(|m| m.try_lock().ok())
                .unwrap_or_else(|| conns[0].lock().unwrap_or_else(|p| p.into_inner()));
            f(&guard).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    pub(crate) async fn devices(&self, model: Option<String>) -> Result<Vec<query::Device>, Error> {
        self.with(move |c| {
            let mut list = c.prepare_cached(query::DEVICES_SQL)?;
            let mut last = c.prepare_cached(query::LAST_POSITION_SQL)?;
            let rows = list
                .query_map([], |r| query::device_value(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, mut device) in rows {
                device.last_position = last
                    .query_row([id], |r| query::record_value(r, model.as_deref()))
                    .optional()?;
                out.push(device);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn device_exists(&self, imei: String) -> Result<bool, Error> {
        self.with(move |c| {
            c.prepare_cached(query::DEVICE_EXISTS_SQL)?
                .query_row([imei], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
        })
        .await
    }

    pub(crate) async fn positions(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
        model: Option<String>,
    ) -> Result<Vec<query::Position>, Error> {
        self.with(move |c| {
            let mut q = c.prepare_cached(query::POSITIONS_SQL)?;
            let mut rows = q
                .query_map(params![imei, from, to, limit], |r| {
                    query::record_value(r, model.as_deref())
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    pub(crate) async fn fuel_points(
        &self,
        imei: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<FuelReading>, Error> {
        self.with(move |c| {
            let mut q = c.prepare_cached(query::FUEL_SQL)?;
            let rows = q.query_map(params![imei, from, to, MAX_LIMIT], |r| {
                query::fuel_reading(r)
            })?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn outbox(
        &self,
        after: i64,
        limit: i64,
        max_items: usize,
        model: Option<String>,
    ) -> Result<Vec<query::Delivery>, Error> {
        self.with(move |c| {
            let mut entries = c
                .prepare_cached(outbox::READ_SQL)?
                .query_map(params![after, limit], |r| query::entry_value(r))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            query::limit_items(&mut entries, max_items);
            let ids = query::record_ids(&entries);
            let (lo, hi) = ids.fold((i64::MAX, i64::MIN), |(lo, hi), id| {
                (lo.min(id), hi.max(id))
            });
            let mut records = HashMap::new();
            if lo <= hi {
                let mut q = c.prepare_cached(outbox::RECORDS_RANGE_SQL)?;
                let rows = q.query_map(params![lo, hi], |r| {
                    query::forwarded_record(r, model.as_deref())
                })?;
                for row in rows {
                    let (id, imei, json) = row?;
                    records.insert(id, (imei, json));
                }
            }
            Ok(query::deliveries(entries, records))
        })
        .await
    }

    pub(crate) async fn outbox_lag(&self, after: i64) -> Result<(i64, Option<i64>), Error> {
        self.with(move |c| {
            c.prepare_cached(outbox::LAG_SQL)?
                .query_row([after], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    pub(crate) async fn forwarders(&self) -> Result<Vec<ForwarderRow>, Error> {
        self.with(move |c| {
            c.prepare_cached(outbox::FORWARDERS_SQL)?
                .query_map([], |r| query::forwarder_value(r))?
                .collect()
        })
        .await
    }

    pub(crate) async fn command(&self, id: i64) -> Result<Option<query::Command>, Error> {
        self.with(move |c| {
            c.prepare_cached(query::COMMAND_SQL)?
                .query_row([id], |r| query::command_value(r))
                .optional()
        })
        .await
    }
}
