//! The PostgreSQL engine: several `fleetview serve` nodes on one database.
//!
//! The writer ([`writer`]) commits each node's groups with `synchronous_commit = on`; the API
//! reads from a pool ([`read`]); [`cluster`] keeps the node's lease and its sessions, and
//! relays commands, kicks and live events between nodes with LISTEN/NOTIFY.

pub(crate) mod cluster;
pub(crate) mod read;
mod reports;
mod schema;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

use super::{Error, Job, Pending, Sync, Writer};
use crate::serve::query::Reader;

/// NOTIFY channel: a command was queued (payload: the IMEI).
pub(crate) const COMMAND_CHANNEL: &str = "fleetview_command";
/// Connections in the pool: the writer's, the cluster's, and the API's readers.
const POOL_SIZE: usize = 12;
/// How long a query waits for a free connection (or a new one) before it fails.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Connect, migrate, register the node and start the writer.
pub(super) async fn open(
    url: &str,
    sync: Sync,
    node: &cluster::Node,
    rx: mpsc::Receiver<Job>,
    pending: Arc<Pending>,
    outbox: bool,
) -> Result<(Writer, Reader, Arc<cluster::Cluster>), Error> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Error::open(format!("--db {url}: not a PostgreSQL URL"), e))?;
    if config.get_application_name().is_none() {
        config.application_name(format!("fleetview {}", node.name));
    }
    config.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(POOL_WAIT))
        .build()
        .map_err(|e| Error::open("cannot set up the PostgreSQL pool", e))?;
    let mut client = pool.get().await.map_err(|e| {
        Error::open(
            format!("cannot connect to {}", super::Db::Postgres(url.into())),
            Error::from(e),
        )
    })?;
    schema::migrate(&mut client).await.map_err(|e| match e {
        Error::TooNew { .. } => e,
        e => Error::open("cannot migrate the PostgreSQL schema", e),
    })?;
    for r in client
        .query(
            "SELECT DISTINCT d.imei FROM commands c JOIN devices d ON d.id = c.device_id WHERE c.status = 'queued'",
            &[],
        )
        .await?
    {
        pending.set(r.try_get(0)?, true);
    }
    drop(client);
    let cluster = cluster::Cluster::join(config, pool.clone(), node, pending.clone()).await?;
    let writer = tokio::spawn(writer::run(
        pool.clone(),
        sync,
        rx,
        pending,
        node.name.clone(),
        outbox,
    ));
    Ok((
        Writer::Task(writer),
        Reader::Postgres(read::Pool(pool)),
        cluster,
    ))
}
