//! The contract between the orchestrator, the workers and the revisions:
//! configuration, the roles and revision ids, plans and task messages, the
//! execution context an executor gets ([`exec`]), the one owner of the
//! pipeline tables ([`store`]), and the database and queue helpers. No
//! role-specific logic lives here. See `ARCHITECTURE.md` for who depends on
//! whom.

pub mod amqp_url;
pub mod backoff;
pub mod catalogue;
pub mod config;
pub mod csv_chunks;
pub mod db;
pub mod exec;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod queue;
pub mod store;
pub mod table_names;
pub mod task;

pub use catalogue::Role;
pub use config::Config;
