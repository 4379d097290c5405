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
    println!(
        "HEAL tips {:?}",
        sim.tips()
            .iter()
            .map(|(h, c)| (h.short(), *c))
            .collect::<Vec<_>>()
    );
    for i in [0u32, 11, 93].into_iter().filter(|&i| i < sim.peer_count()) {
        println!(
            "HEAL peer {i} height {} work {:?}",
            sim.chain(i).unwrap().height(),
            sim.chain(i).unwrap().tip_work()
        );
    }
    let submitted: std::collections::BTreeSet<_> = sim.submitted_items().iter().copied().collect();
    let mut held = std::collections::BTreeSet::new();
    for i in 0..sim.peer_count() {
        let p = sim.peer(i).unwrap();
        held.extend(p.pending_items().map(|it| it.id()));
        for b in p.chain().blocks() {
            held.extend(b.items().iter().map(|it| it.id()));
        }
    }
    let required: Vec<_> = held.intersection(&submitted).copied().collect();
    for id in required.iter().take(200) {
        let pend: Vec<u32> = (0..sim.peer_count())
            .filter(|&i| {
                sim.peer(i)
                    .unwrap()
                    .pending_items()
                    .any(|it| it.id() == *id)
            })
            .collect();
        let inbest: Vec<u32> = (0..sim.peer_count())
            .filter(|&i| sim.chain(i).unwrap().contains_item(id))
            .collect();
        let intree: Vec<u32> = (0..sim.peer_count())
            .filter(|&i| {
                sim.chain(i)
                    .unwrap()
                    .blocks()
                    .any(|b| b.items().iter().any(|it| it.id() == *id))
            })
            .collect();
        if inbest.len() < sim.peer_count() as usize {
            println!(
                "HEAL item {} pending at {:?} best at {} peers tree at {} peers",
                id.short(),
                &pend[..pend.len().min(8)],
                inbest.len(),
                intree.len()
            );
        }
    }
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
        if i < 3 || p.pending_len() > 0 || t.hash != sim.chain(0).unwrap().tip().hash() {
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
