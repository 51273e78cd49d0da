//! The scratch room of a benchmark: a database of its own on the configured
//! server (and, through the caller's config, a queue prefix of its own), so
//! that real workers and data are never touched; [`remove`] takes it down.

use shared::Config;
use std::time::Duration;

/// Creates a benchmark's scratch database on the configured server; returns
/// a connection to the server's configured database (to drop it later with
/// [`remove`]) and the scratch database's URL.
pub async fn create(
    config: &Config,
    database: &str,
) -> anyhow::Result<(sqlx::PgConnection, String)> {
    use anyhow::Context as _;
    use sqlx::Connection as _;
    let url = shared::db::url_with_database(config.database_url.expose(), database)?;
    let mut admin = sqlx::PgConnection::connect(config.database_url.expose())
        .await
        .with_context(|| format!("connecting to {}", config.database_url))?;
    sqlx::Executor::execute(
        &mut admin,
        format!("CREATE DATABASE \"{database}\"").as_str(),
    )
    .await?;
    Ok((admin, url))
}

/// Removes what a benchmark made to work in: its queue prefix, its scratch
/// database (through `admin`, a connection to another database of the
/// server) and its generated data folder; with `keep`, only the queues.
pub async fn remove(
    config: &Config,
    mut admin: sqlx::PgConnection,
    database: &str,
    data_dir: &std::path::Path,
    keep: bool,
) {
    if let Ok(connection) = shared::queue::connect(config, "bench clean-up", Duration::ZERO).await {
        if let Ok(channel) = connection.create_channel().await {
            shared::queue::Topology::from_config(config)
                .delete(&channel)
                .await;
        }
        let _ = connection.close(200, "done".into()).await;
    }
    if keep {
        eprintln!("kept database {database} and {}", data_dir.display());
    } else {
        let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
        let _ = sqlx::Executor::execute(&mut admin, drop.as_str()).await;
        let _ = std::fs::remove_dir_all(data_dir);
    }
    let _ = sqlx::Connection::close(admin).await;
}
