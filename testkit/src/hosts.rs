//! Worker "hosts" of our own on one machine: Linux network namespaces, each
//! joined to this machine by a veth pair of its own (`ip netns`, `ip link`,
//! from iproute2), so that a worker's link to its services can be cut,
//! slowed or made to lose packets while the others carry on.
//!
//! The services stay where they are (on 127.0.0.1). A host reaches them at
//! service addresses ([`Hosts::service_ip`]) put on this machine's loopback
//! and routed over each host's veth; a [`Forwarder`] in this process
//! listens there and relays to the real service. The forwarder is also how
//! latency is added: this kernel has no `sch_netem`, so `tc netem` is not
//! available; the forwarder holds each chunk from a slowed host for the
//! delay, both ways, and packet loss comes from an nftables rule in the
//! host's namespace (`numgen random`), which drops real packets.
//!
//! Needs root. Everything is removed on drop.

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One host: a namespace and its link.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace: `ip netns exec <name> …` runs a program on the host.
    pub name: String,
    /// The host's own address.
    pub address: Ipv4Addr,
    /// This machine's end of the link.
    veth: String,
}

pub struct Hosts {
    pub hosts: Vec<Host>,
    service_ips: Vec<Ipv4Addr>,
    /// Per host address: the delay the forwarders add, each way.
    delays: Arc<Mutex<HashMap<Ipv4Addr, Duration>>>,
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (iproute2 / nftables must be installed)"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Hosts {
    /// `count` hosts, and `services` service addresses on this machine.
    pub fn create(count: usize, services: usize) -> anyhow::Result<Hosts> {
        // A /16 of 10/8 per process, so that two runs never collide.
        let net = 100 + (std::process::id() % 150) as u8;
        let tag = format!("as{net}");
        let mut hosts = Hosts {
            hosts: Vec::new(),
            service_ips: Vec::new(),
            delays: Arc::default(),
        };
        for s in 1..=services {
            let ip = Ipv4Addr::new(10, net, 0, s as u8);
            // What a killed earlier run of the same process number left.
            let _ = run("ip", &["addr", "del", &format!("{ip}/32"), "dev", "lo"]);
            run("ip", &["addr", "add", &format!("{ip}/32"), "dev", "lo"])?;
            hosts.service_ips.push(ip);
        }
        for i in 1..=count {
            let name = format!("{tag}h{i}");
            let veth = format!("{tag}v{i}");
            let peer = format!("{tag}p{i}");
            let gateway = format!("10.{net}.{i}.1");
            let address = Ipv4Addr::new(10, net, i as u8, 2);
            let _ = run("ip", &["link", "del", &veth]);
            let _ = run("ip", &["netns", "del", &name]);
            run("ip", &["netns", "add", &name])?;
            hosts.hosts.push(Host {
                name: name.clone(),
                address,
                veth: veth.clone(),
            });
            run(
                "ip",
                &["link", "add", &veth, "type", "veth", "peer", "name", &peer],
            )?;
            run("ip", &["link", "set", &peer, "netns", &name])?;
            run(
                "ip",
                &["addr", "add", &format!("{gateway}/24"), "dev", &veth],
            )?;
            run("ip", &["link", "set", &veth, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &name, "ip"];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            inside(&["addr", "add", &format!("{address}/24"), "dev", &peer])?;
            inside(&["link", "set", &peer, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            inside(&["route", "add", "default", "via", &gateway])?;
        }
        Ok(hosts)
    }

    /// The `n`th service address (0-based) of this machine, as hosts reach it.
    pub fn service_ip(&self, n: usize) -> Ipv4Addr {
        self.service_ips[n]
    }

    /// The command line that runs `program` on host `i`.
    pub fn command(&self, i: usize, program: &std::path::Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.hosts[i].name])
            .arg(program);
        command
    }

    /// Cuts host `i`'s link (`ip link set … down`): its packets go nowhere,
    /// and its open connections hang, as behind a failed switch.
    pub fn cut(&self, i: usize) -> anyhow::Result<()> {
        run("ip", &["link", "set", &self.hosts[i].veth, "down"])
    }

    pub fn restore(&self, i: usize) -> anyhow::Result<()> {
        run("ip", &["link", "set", &self.hosts[i].veth, "up"])
    }

    /// Host `i`'s traffic through the forwarders is held `delay` each way,
    /// and `loss_percent` of its packets are dropped, both ways, in its namespace.
    pub fn degrade(&self, i: usize, delay: Duration, loss_percent: u32) -> anyhow::Result<()> {
        self.delays
            .lock()
            .unwrap()
            .insert(self.hosts[i].address, delay);
        if loss_percent > 0 {
            let rules = format!(
                "table inet agenticshop_loss {{
                    chain in {{ type filter hook input priority 0; numgen random mod 100 < {loss_percent} drop; }}
                    chain out {{ type filter hook output priority 0; numgen random mod 100 < {loss_percent} drop; }}
                }}"
            );
            run("ip", &["netns", "exec", &self.hosts[i].name, "nft", &rules])?;
        }
        Ok(())
    }

    /// Undoes [`Hosts::degrade`].
    pub fn heal(&self, i: usize) {
        self.delays.lock().unwrap().remove(&self.hosts[i].address);
        let _ = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.hosts[i].name,
                "nft",
                "delete",
                "table",
                "inet",
                "agenticshop_loss",
            ],
        );
    }

    /// Relays `service_ip(n):port` to `target`.
    pub async fn forward(
        &self,
        n: usize,
        port: u16,
        target: SocketAddr,
    ) -> anyhow::Result<Forwarder> {
        Forwarder::start(
            SocketAddr::new(IpAddr::V4(self.service_ip(n)), port),
            target,
            self.delays.clone(),
        )
        .await
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = run("ip", &["link", "del", &host.veth]);
            let _ = run("ip", &["netns", "del", &host.name]);
        }
        for ip in &self.service_ips {
            let _ = run("ip", &["addr", "del", &format!("{ip}/32"), "dev", "lo"]);
        }
    }
}

/// A TCP relay from a service address to a service, adding the delay of
/// the host a connection comes from. Stopping it closes its connections too.
pub struct Forwarder {
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Forwarder {
    async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        delays: Arc<Mutex<HashMap<Ipv4Addr, Duration>>>,
    ) -> anyhow::Result<Forwarder> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, from)) = listener.accept().await {
                let delays = delays.clone();
                let relay = tokio::spawn(async move {
                    let Ok(upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let delay = move || match from.ip() {
                        IpAddr::V4(ip) => delays.lock().unwrap().get(&ip).copied(),
                        IpAddr::V6(_) => None,
                    };
                    let (client_read, client_write) = client.into_split();
                    let (upstream_read, upstream_write) = upstream.into_split();
                    // Inline, not spawned: aborting the relay closes both sockets.
                    tokio::join!(
                        pipe(client_read, upstream_write, delay.clone()),
                        pipe(upstream_read, client_write, delay)
                    );
                });
                let mut all = held.lock().unwrap();
                all.retain(|h| !h.is_finished());
                all.push(relay);
            }
        });
        Ok(Forwarder {
            accept,
            connections,
        })
    }

    /// Stops listening and closes every relayed connection: to its clients,
    /// the address has become unreachable.
    pub fn stop(&self) {
        self.accept.abort();
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies one direction; with a delay, every chunk is delivered that long
/// after it was read, in order, without holding back the reads behind it.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: impl Fn() -> Option<Duration> + Send + 'static,
) {
    let (sender, mut receiver) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let write = async move {
        while let Some((due, chunk)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay().unwrap_or_default();
                    if sender.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(read, write);
}
