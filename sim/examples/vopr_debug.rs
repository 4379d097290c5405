use rantai_sim::vopr;
use rantai_sim::Sim;
fn main() {
    let seed: u64 = std::env::args().nth(1).unwrap().parse().unwrap();
    let cfg = vopr::scenario(seed);
    let mut sim = Sim::new(cfg.clone()).unwrap();
    if let Ok(path) = std::env::var("TRACE") {
        sim.set_trace_writer(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).unwrap(),
        )));
    }
    let blocks = cfg.blocks;
    let stop: u64 = std::env::var("STOP")
        .map(|s| s.parse().unwrap())
        .unwrap_or(100_000_000);
    sim.run_until(rantai_sim::Millis(stop), |s| {
        s.mined() >= blocks && s.scheduled_pending() == 0
    });
    let names = [
        "hello",
        "ping",
        "pong",
        "inv",
        "get_blocks",
        "block",
        "not_found",
        "get_chain",
        "chain_hashes",
        "items",
        "get_addr",
        "addr",
    ];
    println!(
        "t {} in flight {} msgs {:?}",
        sim.now().0,
        sim.in_flight(),
        sim.metrics().msgs.iter().zip(names).collect::<Vec<_>>()
    );
    let heal = sim.now();
    println!("hub backlog at heal {}", sim.upload_backlog(0).0);
    sim.heal();
    for i in 0..sim.peer_count() {
        if sim.peer(i).is_none() {
            let _ = sim.restart(i);
        }
    }
    sim.set_liveness_mining(true);
    let extra: u64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(1_000_000);
    sim.run_until(heal.add(rantai_sim::Millis(extra)), |_| false);
    println!(
        "now {} mined {} heal {} hub backlog {}",
        sim.now().0,
        sim.mined(),
        heal.0,
        sim.upload_backlog(0).0
    );
    for (h, c) in sim.tips() {
        println!("tip {h} x{c}");
    }
    if let Ok(w) = std::env::var("WHO") {
        let w: u32 = w.parse().unwrap();
        let p = sim.peer(w).unwrap();
        let hub = sim.chain(0).unwrap();
        for b in hub.best_chain().rev().take(4) {
            let h = b.hash();
            println!(
                "hub h{} {} knows={} contains={} orphans={}",
                b.height(),
                h,
                p.chain().knows(&h),
                p.chain().contains(&h),
                p.chain().orphan_count()
            );
        }
        for b in p.chain().best_chain().rev().take(3) {
            println!(
                "own h{} {} work {:?}",
                b.height(),
                b.hash(),
                p.chain().work_of(&b.hash())
            );
        }
        println!(
            "hub work {:?} own {:?}",
            hub.tip_work(),
            p.chain().tip_work()
        );
    }
    for i in 0..sim.peer_count() {
        let p = sim.peer(i).unwrap();
        let t = p.tip();
        let conns: Vec<String> = p
            .peers()
            .iter()
            .map(|s| {
                format!(
                    "{}:{}:{}",
                    s.addr.clone().unwrap_or_default(),
                    s.ready,
                    s.tip.map(|t| t.height).unwrap_or(0)
                )
            })
            .collect();
        if i < 3 || t.hash != sim.chain(0).unwrap().tip().hash() {
            println!(
                "peer {i} h{} {} pending {} conns {:?}",
                t.height,
                t.hash,
                p.pending_len(),
                conns
            );
        }
    }
}
#[allow(dead_code)]
fn unused() {}
