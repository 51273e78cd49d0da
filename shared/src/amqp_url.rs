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

/// The AMQP heartbeat asked for where an address sets none
/// (`?heartbeat=N`). RabbitMQ's own default, 60 s, lets the broker go on
/// handing messages (a task taken back from a lost lease, republished) for
/// about two minutes to a worker that the network has cut off; at 15 s it
/// gives up on it within about half a minute and requeues what it held.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 15;

/// `address` with `heartbeat=DEFAULT_HEARTBEAT_SECS` added when it sets no
/// heartbeat of its own (an address that does not parse is left as it is,
/// for the connection to report).
pub fn with_default_heartbeat(address: &str) -> std::borrow::Cow<'_, str> {
    match url::Url::parse(address) {
        Ok(url) if !url.query_pairs().any(|(key, _)| key == "heartbeat") => {
            let separator = if url.query().is_some() { '&' } else { '?' };
            format!("{address}{separator}heartbeat={DEFAULT_HEARTBEAT_SECS}").into()
        }
        _ => address.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_asked_for_unless_the_address_sets_one() {
        assert_eq!(
            with_default_heartbeat("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=15"
        );
        assert_eq!(
            with_default_heartbeat("amqps://h:5671/%2f?cacertfile=/ca.pem"),
            "amqps://h:5671/%2f?cacertfile=/ca.pem&heartbeat=15"
        );
        assert_eq!(
            with_default_heartbeat("amqp://h/%2f?heartbeat=30"),
            "amqp://h/%2f?heartbeat=30"
        );
        assert_eq!(with_default_heartbeat("not a url"), "not a url");
    }
}
