//! Workers on three hosts of our own (network namespaces joined by veth
//! pairs; needs root, iproute2 and nftables from `REMOTE=1
//! scripts/services.sh`), in the reduced form of `orchestrator bench hosts`
//! (the full one is 20,000 reviews): no host shares a data path (the data
//! comes over HTTP from nginx); a clean run, a run with a slowed and lossy
//! host, and a run with a host cut off mid-embed and a broker address gone
//! all end in the state of a one-host run, with no effect applied twice.

use std::time::Duration;
use testkit::{bin_dir, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_spread_over_three_hosts_survive_a_partition_a_slow_link_and_a_lost_broker_address() {
    // Not root: `ip netns add` fails, and the bench says so.
    let run = tokio::process::Command::new(bin_dir().join("orchestrator"))
        .args([
            "bench",
            "hosts",
            "--reviews",
            "1500",
            "--provider-delay-ms",
            "50",
            "--lease-secs",
            "4",
        ])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(900), run)
        .await
        .expect("the hosts run ends on its own")
        .unwrap();
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert_eq!(
        shown
            .matches("digest against the one-host run: equal; effects applied twice: 0")
            .count(),
        5,
        "every run ends in the one-host run's state: {shown}"
    );
    for expected in [
        "host 3's link cut, half the embed tasks done or in hand, while it held",
        "host 3's link restored",
        "host 1 connected to its second broker address after the first became unreachable: yes",
        "packet loss:",
        "x the clean three-host run",
        "3 host(s):",
    ] {
        assert!(
            shown.contains(expected),
            "expected {expected:?} in: {shown}"
        );
    }
    let fenced = shown
        .lines()
        .find_map(|l| l.split("host 3's worker stopped ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        fenced.is_some_and(|n| n > 0),
        "the cut-off worker fenced itself off its lapsed leases: {shown}"
    );
    let faulted = shown
        .lines()
        .skip_while(|l| !l.contains("host 3 cut mid-embed"))
        .find(|l| l.contains("tasks taken back from stale leases"))
        .unwrap_or_default();
    assert!(
        !faulted.ends_with("stale leases: 0"),
        "the cut-off host's tasks were taken back: {faulted}"
    );
}
