//! `--connect`: a node dials exactly the given peers, accepts no inbound connection (unless
//! `--listen`) and dials no address it learns, like bitcoind's `-connect`.

mod common;

use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_node_with_connect_links_only_to_the_given_peer() {
    let dir = TempDir::new("connect");
    let a = NodeProc::start("a", &node_args(0, &[], &[]), dir.path());
    // The port `b` would listen on without --connect: `c` is told to dial it.
    let b_port = free_port();
    let connect = format!("127.0.0.1:{}", a.addr.port());
    let b = NodeProc::start(
        "b",
        &node_args(b_port, &[], &["--connect", &connect]),
        dir.path(),
    );
    let c = NodeProc::start(
        "c",
        &node_args(0, &[a.addr.port(), b_port], &[]),
        dir.path(),
    );
    wait_until(WAIT, "a has b and c", || {
        a.status()
            .is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() == 2)
    });
    // `b` learns `c`'s address from `a` (a node without --connect would dial it, up to 8
    // learned outbound); `c` keeps dialling `b`'s port with backoff (50..500 ms) and is refused.
    wait_until(WAIT, "c failed to reach b several times", || {
        c.log_text()
            .matches(&format!("cannot reach 127.0.0.1:{b_port}"))
            .count()
            >= 3
    });
    let sb = b.status().expect("b");
    let sc = c.status().expect("c");
    let peers_b: Vec<_> = sb.peers.iter().map(|p| p.addr.clone()).collect();
    assert_eq!(peers_b, vec![Some(connect.clone())], "b links only to a");
    assert!(
        sc.peers
            .iter()
            .all(|p| p.listen.as_deref() == Some(connect.as_str())),
        "c links only to a: {:?}",
        sc.peers
    );
    assert_eq!(sb.listen, None, "b advertises no address");
    assert_eq!(sb.config.max_outbound, 0, "b dials no learned address");
    assert!(b.log_text().contains("not listening"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", b_port)).is_err());
    // Blocks still flow through the one link.
    let mut b = b;
    b.type_line("mined at b");
    wait_until(WAIT, "b's block reaches c through a", || {
        c.best_chain()
            .is_some_and(|ch| item_texts(&ch).contains(&"mined at b".to_string()))
    });
}

#[test]
fn connect_with_listen_accepts_inbound_peers() {
    let dir = TempDir::new("connect-listen");
    let a = NodeProc::start("a", &node_args(0, &[], &[]), dir.path());
    let connect = format!("127.0.0.1:{}", a.addr.port());
    let b = NodeProc::start(
        "b",
        &node_args(0, &[], &["--connect", &connect, "--listen"]),
        dir.path(),
    );
    assert_ne!(b.addr.port(), 0, "b listens");
    let c = NodeProc::start("c", &node_args(0, &[b.addr.port()], &[]), dir.path());
    wait_until(WAIT, "b has a and c", || {
        b.status()
            .is_some_and(|s| s.peers.iter().filter(|p| p.ready).count() == 2)
    });
    assert_eq!(
        b.status().and_then(|s| s.listen),
        Some(b.addr.to_string()),
        "b advertises its address"
    );
    drop(c);
}
