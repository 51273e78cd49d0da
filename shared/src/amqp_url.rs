//! The `AMQP_URL` setting: its broker addresses and the TLS files of an
//! `amqps://` address. Read by the configuration (to check them at start)
//! and by the queue module (to connect), so it depends on neither.

use anyhow::{bail, Context};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};

/// The broker addresses of `AMQP_URL`: one URL, or several separated by
/// commas, tried in turn at every (re)connection.
pub fn broker_addresses(amqp_url: &str) -> impl Iterator<Item = &str> {
    amqp_url.split(',').map(str::trim).filter(|a| !a.is_empty())
}

/// TLS settings of an `amqps://` URL, from the query parameters RabbitMQ's
/// own clients read (<https://www.rabbitmq.com/docs/uri-query-parameters>):
/// `cacertfile` (PEM CA certificates trusted beside the system's),
/// `certfile` and `keyfile` (a PEM client certificate and its key).
pub fn tls_config(url: &str) -> anyhow::Result<OwnedTLSConfig> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(OwnedTLSConfig::default());
    };
    let parameter = |name: &str| {
        parsed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let read = |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
        parameter(name)
            .map(|path| {
                std::fs::read(&path).with_context(|| format!("its {name} {path:?} cannot be read"))
            })
            .transpose()
    };
    let cert_chain = read("cacertfile")?
        .map(|pem| String::from_utf8(pem).context("its cacertfile is not PEM text"))
        .transpose()?;
    let identity = match (read("certfile")?, read("keyfile")?) {
        (Some(pem), Some(key)) => Some(OwnedIdentity::PKCS8 { pem, key }),
        (None, None) => None,
        _ => bail!("it has one of certfile and keyfile without the other"),
    };
    Ok(OwnedTLSConfig {
        identity,
        cert_chain,
    })
}
