//! PostgreSQL's read side: the shared queries of [`crate::serve::query`] on the pool.

use std::collections::HashMap;

use super::super::outbox::{self, Cursor, ForwarderRow};
use super::super::{now_ms, Error};
use crate::serve::query::{self, Cols, FuelReading, MAX_LIMIT};

/// The pool the API reads with (the writer and the cluster tasks use it too).
#[derive(Clone)]
pub(crate) struct Pool(pub(super) deadpool_postgres::Pool);

impl Cols for tokio_postgres::Row {
    type Err = tokio_postgres::Error;
    fn int(&self, i: usize) -> Result<i64, Self::Err> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Err> {
        self.try_get(i)
    }
    fn float(&self, i: usize) -> Result<f64, Self::Err> {
        self.try_get(i)
    }
    fn opt_float(&self, i: usize) -> Result<Option<f64>, Self::Err> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, Self::Err> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Err> {
        self.try_get(i)
    }
    fn boolean(&self, i: usize) -> Result<bool, Self::Err> {
        self.try_get(i)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, Self::Err> {
        self.try_get(i)
    }
}

/// The devices list: the record count is counted (no counter to keep exact across nodes and
/// crashes), `connected` is a session on a node whose lease is live. `$1`: now.
const DEVICES_SQL: &str =
    "SELECT d.id, d.imei, d.first_seen_ms, d.last_seen_ms, d.transport, d.address,
       (SELECT count(*) FROM records r WHERE r.device_id = d.id),
       EXISTS (SELECT 1 FROM sessions s JOIN nodes n ON n.node = s.node
               WHERE s.imei = d.imei AND n.lease_until_ms > $1)
     FROM devices d ORDER BY d.imei";

impl Pool {
    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.0.get().await?)
    }

    pub(crate) async fn outbox(
        &self,
        after: Cursor,
        limit: i64,
        max_items: usize,
        model: Option<String>,
    ) -> Result<Vec<query::Delivery>, Error> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(outbox::READ_PG_SQL).await?;
        let mut entries = c
            .query(&stmt, &[&after.txid, &after.id, &limit])
            .await?
            .iter()
            .map(query::entry_value)
            .collect::<Result<Vec<_>, _>>()?;
        query::limit_items(&mut entries, max_items);
        let ids: Vec<i64> = query::record_ids(&entries).collect();
        let mut records = HashMap::new();
        if !ids.is_empty() {
            let stmt = c.prepare_cached(outbox::RECORDS_ANY_SQL).await?;
            for r in c.query(&stmt, &[&ids]).await? {
                let (id, imei, json) = query::forwarded_record(&r, model.as_deref())?;
                records.insert(id, (imei, json));
            }
        }
        Ok(query::deliveries(entries, records))
    }

    pub(crate) async fn outbox_lag(&self, after: Cursor) -> Result<(i64, Option<i64>), Error> {
        let c = self.client().await?;
        let r = c
            .query_one(outbox::LAG_PG_SQL, &[&after.txid, &after.id])
            .await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    pub(crate) async fn forwarders(&self) -> Result<Vec<ForwarderRow>, Error> {
        let c = self.client().await?;
        Ok(c.query(outbox::FORWARDERS_SQL, &[])
            .await?
            .iter()
            .map(query::forwarder_value)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// A connection of the pool for a forwarder's lock (PostgreSQL: an advisory lock is held
    /// by a session).
    pub(crate) async fn lock_client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.client().await
    }

    pub(crate) async fn devices(&self, model: Option<String>) -> Result<Vec<query::Device>, Error> {
        let c = self.client().await?;
        let last = c.prepare_cached(query::LAST_POSITION_SQL).await?;
        let rows = c.query(DEVICES_SQL, &[&now_ms()]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (id, mut device) = query::device_value(&r)?;
            device.last_position = match c.query_opt(&last, &[&id]).await? {
                Some(p) => Some(query::record_value(&p, model.as_deref())?),
                None => None,
            };
            device.connected = r.boolean(7)?;
            out.push(device);
        }
        Ok(out)
    }

    pub(crate) async fn device_exists(&self, imei: String) -> Result<bool, Error> {
        let c = self.client().await?;
        let q = c.prepare_cached(query::DEVICE_EXISTS_SQL).await?;
        Ok(c.query_opt(&q, &[&imei]).await?.is_some())
    }

    pub(crate) async fn positions(
        &self,
        imei: String,
        from: i64,
        to: i64,
        limit: i64,
        model: Option<String>,
    ) -> Result<Vec<query::Position>, Error> {
        let c = self.client().await?;
        let q = c.prepare_cached(query::POSITIONS_SQL).await?;
        let rows = c.query(&q, &[&imei, &from, &to, &limit]).await?;
        let mut out = rows
            .iter()
            .map(|r| query::record_value(r, model.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    pub(crate) async fn fuel_points(
        &self,
        imei: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<FuelReading>, Error> {
        let c = self.client().await?;
        let q = c.prepare_cached(query::FUEL_SQL).await?;
        let rows = c.query(&q, &[&imei, &from, &to, &MAX_LIMIT]).await?;
        Ok(rows
            .iter()
            .map(query::fuel_reading)
            .collect::<Result<Vec<_>, _>>()?)
    }

    pub(crate) async fn command(&self, id: i64) -> Result<Option<query::Command>, Error> {
        let c = self.client().await?;
        let q = c.prepare_cached(query::COMMAND_SQL).await?;
        match c.query_opt(&q, &[&id]).await? {
            Some(r) => Ok(Some(query::command_value(&r)?)),
            None => Ok(None),
        }
    }
}
