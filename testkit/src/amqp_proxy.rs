//! A TCP proxy in front of the real RabbitMQ that can make a client's
//! consumers deaf: from [`AmqpProxy::deafen`] on, the connections open at
//! that moment stop receiving deliveries (`basic.deliver` frames and the
//! content frames that follow them are dropped on the way to the client),
//! while everything else — heartbeats, confirms, replies — still passes, and
//! no cancel ever arrives. The broker counts the dropped messages as
//! delivered and unacked, as it does for a consumer that went deaf after a
//! broker restart. Connections opened later are not affected.
//! [`AmqpProxy::mute_confirms`] likewise drops the broker's publisher
//! confirms (`basic.ack`, `basic.nack`): a publish that is never confirmed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct AmqpProxy {
    /// `AMQP_URL` through the proxy.
    pub url: String,
    connections: Arc<Mutex<Vec<Arc<Filter>>>>,
    accept: tokio::task::JoinHandle<()>,
}

/// Frame types of AMQP 0-9-1.
const METHOD: u8 = 1;
const HEADER: u8 = 2;
const BODY: u8 = 3;
/// `basic.deliver`: class 60, method 60.
const BASIC_DELIVER: [u8; 4] = [0, 60, 0, 60];
/// `basic.ack` and `basic.nack` (confirms, from the broker): 60.80, 60.120.
const BASIC_ACK: [u8; 4] = [0, 60, 0, 80];
const BASIC_NACK: [u8; 4] = [0, 60, 0, 120];

/// What one connection drops on the way to the client.
#[derive(Default)]
struct Filter {
    deliveries: AtomicBool,
    confirms: AtomicBool,
}

impl AmqpProxy {
    /// Listens on a free local port and forwards to `upstream_url`'s host.
    pub async fn start(upstream_url: &str) -> AmqpProxy {
        let (before, rest) = upstream_url
            .split_once('@')
            .map(|(a, b)| (format!("{a}@"), b.to_string()))
            .unwrap_or_else(|| {
                let (scheme, rest) = upstream_url.split_once("://").expect("an AMQP URL");
                (format!("{scheme}://"), rest.to_string())
            });
        let (host_port, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
        let upstream = if host_port.contains(':') {
            host_port.to_string()
        } else {
            format!("{host_port}:5672")
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let port = listener.local_addr().unwrap().port();
        let url = format!("{before}127.0.0.1:{port}/{path}");
        let connections: Arc<Mutex<Vec<Arc<Filter>>>> = Arc::default();
        let registry = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let filter = Arc::new(Filter::default());
                registry.lock().unwrap().push(filter.clone());
                tokio::spawn(pump(client, server, filter));
            }
        });
        AmqpProxy {
            url,
            connections,
            accept,
        }
    }

    /// Makes every connection open now deaf to deliveries.
    pub fn deafen(&self) {
        for filter in self.connections.lock().unwrap().iter() {
            filter.deliveries.store(true, Ordering::SeqCst);
        }
    }

    /// Makes every connection open now deaf to publisher confirms.
    pub fn mute_confirms(&self) {
        for filter in self.connections.lock().unwrap().iter() {
            filter.confirms.store(true, Ordering::SeqCst);
        }
    }

    /// Connections the proxy has accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.lock().unwrap().len()
    }
}

impl Drop for AmqpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pump(client: TcpStream, server: TcpStream, filter: Arc<Filter>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        // Channels whose current delivery is being dropped (its header and
        // body frames follow the method frame).
        let mut dropping: HashSet<u16> = HashSet::new();
        loop {
            let mut head = [0u8; 7];
            if server_read.read_exact(&mut head).await.is_err() {
                break;
            }
            let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
            let mut rest = vec![0u8; size + 1];
            if server_read.read_exact(&mut rest).await.is_err() {
                break;
            }
            let channel = u16::from_be_bytes([head[1], head[2]]);
            let drop_it = match head[0] {
                METHOD => {
                    let method = rest.get(..4);
                    let deliver = filter.deliveries.load(Ordering::SeqCst)
                        && method == Some(&BASIC_DELIVER[..]);
                    if deliver {
                        dropping.insert(channel);
                    } else {
                        dropping.remove(&channel);
                    }
                    let confirm = filter.confirms.load(Ordering::SeqCst)
                        && (method == Some(&BASIC_ACK[..]) || method == Some(&BASIC_NACK[..]));
                    deliver || confirm
                }
                HEADER | BODY => dropping.contains(&channel),
                _ => false,
            };
            if drop_it {
                continue;
            }
            if client_write.write_all(&head).await.is_err()
                || client_write.write_all(&rest).await.is_err()
            {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}
