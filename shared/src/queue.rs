//! The RabbitMQ side of the contract: names, topology, connecting with
//! patience, and publishing with confirms.
//!
//! Topology, for a prefix `P` and each role `R`:
//! - exchange `P.tasks` (direct, durable): routing key = role;
//! - queue `P.R` (quorum): the work queue; a message rejected without requeue
//!   (poison) or redelivered more than [`DELIVERY_LIMIT`] times is
//!   dead-lettered through exchange `P.dead` into queue `P.R.dead` (quorum);
//! - queues `P.R.retry.<ms>` (classic, durable, one per back-off step): a
//!   failed task waits there for the queue's TTL, then is dead-lettered back
//!   to `P.tasks` with routing key R. One queue per delay, because a classic
//!   queue only expires messages at its head.
//!
//! Every declaration is idempotent, so both sides declare on every connect.

use crate::amqp_url::{broker_addresses, tls_config, with_default_heartbeat};
use crate::backoff::{Backoff, Verdict};
use crate::catalogue::Role;
use crate::config::{redact_url, Config, DEFAULT_QUEUE_PREFIX};
use crate::task::TaskMessage;
use anyhow::{bail, Context};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// Deliveries of one message before the broker dead-letters it: a message
/// that crashes every worker that takes it must not loop forever.
pub const DELIVERY_LIMIT: i64 = 20;

/// Back-off before attempt 2, 3, 4, ... of a failed task (the last step
/// repeats).
pub const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(20),
    Duration::from_secs(60),
];

#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Self {
        Topology {
            prefix: prefix.to_string(),
        }
    }

    /// The topology of the database whose identity (`pipeline.identity`) is
    /// `database`: `QUEUE_PREFIX` when set, else `agenticshop-<database>`,
    /// so that two databases on one broker never share a queue unless told
    /// to. The orchestrator and the workers both name their queues so.
    pub fn for_database(config: &Config, database: uuid::Uuid) -> Self {
        Topology::explicit(config)
            .unwrap_or_else(|| Topology::new(&format!("{DEFAULT_QUEUE_PREFIX}-{database}")))
    }

    /// The topology `QUEUE_PREFIX` names, if it is set (then no database
    /// identity is needed to know it).
    pub fn explicit(config: &Config) -> Option<Self> {
        config.queue_prefix.as_deref().map(Topology::new)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn exchange(&self) -> String {
        format!("{}.tasks", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    pub fn work_queue(&self, role: Role) -> String {
        format!("{}.{}", self.prefix, role)
    }

    pub fn dead_queue(&self, role: Role) -> String {
        format!("{}.{}.dead", self.prefix, role)
    }

    pub fn retry_queue(&self, role: Role, delay: Duration) -> String {
        format!("{}.{}.retry.{}ms", self.prefix, role, delay.as_millis())
    }

    /// The delay before the next attempt, after `attempts` failed ones.
    pub fn retry_delay(attempts: i32) -> Duration {
        let step = (attempts.max(1) - 1) as usize;
        RETRY_DELAYS[step.min(RETRY_DELAYS.len() - 1)]
    }

    /// The delay queue for a check-back after about `after`: the longest
    /// delay not above it (the shortest when all are).
    pub fn check_back_delay(after: Duration) -> Duration {
        RETRY_DELAYS
            .iter()
            .rev()
            .find(|d| **d <= after)
            .copied()
            .unwrap_or(RETRY_DELAYS[0])
    }

    /// Every queue of the topology (for tests and clean-up).
    pub fn all_queues(&self) -> Vec<String> {
        let mut names = Vec::new();
        for role in Role::ALL {
            names.push(self.work_queue(role));
            names.push(self.dead_queue(role));
            for delay in RETRY_DELAYS {
                names.push(self.retry_queue(role, delay));
            }
        }
        names
    }

    /// Deletes every queue and exchange of the topology, messages included
    /// (scratch prefixes of benchmarks and tests).
    pub async fn delete(&self, channel: &Channel) {
        for queue in self.all_queues() {
            let _ = channel
                .queue_delete(
                    queue.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
        for exchange in [self.exchange(), self.dead_letter_exchange()] {
            let _ = channel
                .exchange_delete(
                    exchange.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
    }

    /// Messages ready in a role's work queue; an error when the queue is
    /// gone (which also closes `channel`).
    pub async fn ready_messages(&self, channel: &Channel, role: Role) -> anyhow::Result<u32> {
        let queue = self.work_queue(role);
        let declared = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("looking at queue {queue}"))?;
        Ok(declared.message_count())
    }

    /// Declares exchanges, queues and bindings.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        for role in Role::ALL {
            let mut work_args = FieldTable::default();
            work_args.insert("x-queue-type".into(), long_string("quorum"));
            work_args.insert(
                "x-dead-letter-exchange".into(),
                long_string(&self.dead_letter_exchange()),
            );
            work_args.insert(
                "x-dead-letter-routing-key".into(),
                long_string(role.as_str()),
            );
            work_args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(DELIVERY_LIMIT),
            );
            channel
                .queue_declare(self.work_queue(role).into(), durable, work_args)
                .await?;
            channel
                .queue_bind(
                    self.work_queue(role).into(),
                    self.exchange().into(),
                    role.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;

            let mut dead_args = FieldTable::default();
            dead_args.insert("x-queue-type".into(), long_string("quorum"));
            channel
                .queue_declare(self.dead_queue(role).into(), durable, dead_args)
                .await?;
            channel
                .queue_bind(
                    self.dead_queue(role).into(),
                    self.dead_letter_exchange().into(),
                    role.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;

            for delay in RETRY_DELAYS {
                let mut retry_args = FieldTable::default();
                retry_args.insert(
                    "x-message-ttl".into(),
                    AMQPValue::LongLongInt(delay.as_millis() as i64),
                );
                retry_args.insert(
                    "x-dead-letter-exchange".into(),
                    long_string(&self.exchange()),
                );
                retry_args.insert(
                    "x-dead-letter-routing-key".into(),
                    long_string(role.as_str()),
                );
                channel
                    .queue_declare(self.retry_queue(role, delay).into(), durable, retry_args)
                    .await?;
            }
        }
        Ok(())
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Opens a connection, retrying with back-off for up to `patience` (the
/// broker may be starting or restarting). The URL is never logged with its
/// password.
pub async fn connect(
    config: &Config,
    name: &str,
    patience: Duration,
) -> anyhow::Result<Connection> {
    let addresses: Vec<(&str, OwnedTLSConfig)> = broker_addresses(config.amqp_url.expose())
        .map(|address| Ok((address, tls_config(address)?)))
        .collect::<anyhow::Result<_>>()?;
    let policy =
        Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).with_patience(patience);
    crate::backoff::retry(
        policy,
        || async {
            // lapin takes one URL per connection: the addresses in turn, each
            // given a bounded time (an unreachable host never answers).
            let mut failure = None;
            for (i, (address, tls)) in addresses.iter().enumerate() {
                let properties = ConnectionProperties::default().with_connection_name(name.into());
                let with_heartbeat = with_default_heartbeat(address);
                let attempt = Connection::connect_with_config(
                    &with_heartbeat,
                    properties,
                    tls.clone(),
                    lapin::runtime::default_runtime()?,
                );
                let error = match tokio::time::timeout(BROKER_CONNECT_TIMEOUT, attempt).await {
                    Ok(Ok(connection)) => {
                        if i > 0 {
                            tracing::info!(
                                "connected to the broker at {} (address {} of {})",
                                redact_url(address),
                                i + 1,
                                addresses.len()
                            );
                        }
                        return Ok(connection);
                    }
                    Ok(Err(e)) => anyhow::Error::new(e),
                    Err(_) => anyhow::anyhow!("no answer within {BROKER_CONNECT_TIMEOUT:?}"),
                };
                if addresses.len() > 1 {
                    tracing::warn!(
                        "broker at {} not reachable ({error}); trying the next address",
                        redact_url(address)
                    );
                }
                failure = Some(error);
            }
            Err(failure.unwrap_or_else(|| anyhow::anyhow!("AMQP_URL names no broker")))
        },
        |e: &anyhow::Error| {
            if crate::backoff::is_tls_refusal(e.as_ref()) {
                Verdict::Stop
            } else {
                Verdict::Retry
            }
        },
        |e, delay| {
            tracing::warn!(
                "broker at {} not reachable ({e}); retrying in {delay:?}",
                config.amqp_url
            )
        },
    )
    .await
    .map_err(|e| {
        e.context(format!(
            "cannot connect to the broker at {}",
            config.amqp_url
        ))
    })
}

/// Time given to one broker address to accept a connection.
const BROKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel in confirm mode: a publish returns only once the broker has
/// confirmed the message (within the confirm timeout), and every publish is
/// mandatory, so that a message the broker cannot route comes back instead
/// of vanishing.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    topology: Topology,
    /// Stamped on messages that carry no database identity yet.
    database: Option<uuid::Uuid>,
    /// `CONFIRM_TIMEOUT_SECS`: how long a batch waits for its confirms.
    confirm_timeout: Duration,
}

/// Where one message goes: an exchange and a routing key.
#[derive(Clone)]
struct Route {
    exchange: String,
    routing_key: String,
}

impl Publisher {
    pub async fn open(
        connection: &Connection,
        topology: Topology,
        confirm_timeout: Duration,
    ) -> anyhow::Result<Publisher> {
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
        topology
            .declare(&channel)
            .await
            .context("declaring the queue topology")?;
        Ok(Publisher {
            channel,
            topology,
            database: None,
            confirm_timeout,
        })
    }

    /// Messages published from now on name `database` as theirs (the
    /// orchestrator's publisher; a worker's forwards what it received).
    pub fn stamp_database(&mut self, database: uuid::Uuid) {
        self.database = Some(database);
    }

    fn stamped(&self, message: &TaskMessage) -> Vec<u8> {
        match (message.database, self.database) {
            (None, Some(database)) => TaskMessage {
                database: Some(database),
                ..message.clone()
            }
            .to_bytes(),
            _ => message.to_bytes(),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn is_connected(&self) -> bool {
        self.channel.status().connected()
    }

    /// Messages ready in a role's work queue; an error when the queue is
    /// gone (which also closes this channel: the next publish opens another
    /// and declares the topology again).
    pub async fn ready_messages(&self, role: Role) -> anyhow::Result<u32> {
        self.topology.ready_messages(&self.channel, role).await
    }

    /// Publishes every message to its role's work queue and waits until the
    /// broker confirms them all.
    pub async fn publish_tasks(&self, messages: &[TaskMessage]) -> anyhow::Result<()> {
        let exchange = self.topology.exchange();
        let routed: Vec<(Route, &TaskMessage)> = messages
            .iter()
            .map(|m| {
                let route = Route {
                    exchange: exchange.clone(),
                    routing_key: m.role.as_str().to_string(),
                };
                (route, m)
            })
            .collect();
        self.publish_confirmed(&routed).await
    }

    /// Parks a failed task in the delay queue for its next attempt.
    pub async fn publish_retry(
        &self,
        message: &TaskMessage,
        delay: Duration,
    ) -> anyhow::Result<()> {
        let route = Route {
            exchange: String::new(),
            routing_key: self.topology.retry_queue(message.role, delay),
        };
        self.publish_confirmed(&[(route, message)]).await
    }

    /// Publishes `messages` (mandatory) and waits for their confirms, at
    /// most the confirm timeout. Messages the broker returns as unroutable
    /// (their queue was deleted) are published once more after the
    /// topology is declared again; an error if they come back again, if the
    /// broker refuses one, or if a confirm does not come in time.
    async fn publish_confirmed(&self, messages: &[(Route, &TaskMessage)]) -> anyhow::Result<()> {
        let returned = self.publish_once(messages).await?;
        if returned.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            "the broker could not route {} message(s) (a queue was deleted?); declaring the queue topology again and publishing them again",
            returned.len()
        );
        self.topology
            .declare(&self.channel)
            .await
            .context("declaring the queue topology again")?;
        let again: Vec<(Route, &TaskMessage)> = returned
            .into_iter()
            .map(|i| (messages[i].0.clone(), messages[i].1))
            .collect();
        let still = self.publish_once(&again).await?;
        if let Some(&i) = still.first() {
            bail!(
                "the broker could not route task {} to {} even after the topology was declared again",
                again[i].1.task_id,
                again[i].0.routing_key
            );
        }
        Ok(())
    }

    /// One round of [`Publisher::publish_confirmed`]: the indexes of the
    /// messages the broker returned.
    async fn publish_once(&self, messages: &[(Route, &TaskMessage)]) -> anyhow::Result<Vec<usize>> {
        let mut confirms = Vec::with_capacity(messages.len());
        for (route, message) in messages {
            let confirm = self
                .channel
                .basic_publish(
                    route.exchange.as_str().into(),
                    route.routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &self.stamped(message),
                    persistent(message),
                )
                .await
                .with_context(|| {
                    format!(
                        "publishing task {} to {}",
                        message.task_id, route.routing_key
                    )
                })?;
            confirms.push(confirm);
        }
        let timeout = self.confirm_timeout;
        let confirmed = async {
            let mut returned = Vec::new();
            for (i, confirm) in confirms.into_iter().enumerate() {
                let (route, message) = &messages[i];
                let confirmation = confirm.await.with_context(|| {
                    format!(
                        "waiting for the broker to confirm task {} in {}",
                        message.task_id, route.routing_key
                    )
                })?;
                if confirmation.is_nack() {
                    bail!(
                        "the broker refused task {} for {} (nack)",
                        message.task_id,
                        route.routing_key
                    );
                }
                if confirmation.take_message().is_some() {
                    returned.push(i);
                }
            }
            Ok(returned)
        };
        tokio::time::timeout(timeout, confirmed)
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "the broker did not confirm {} published message(s) within {timeout:?} (CONFIRM_TIMEOUT_SECS)",
                    messages.len()
                ))
            })
    }
}

fn persistent(message: &TaskMessage) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(message.task_id.to_string().into())
}
