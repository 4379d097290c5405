//! The web view (`view.html` under `--out`): self-contained and the same bytes for the same
//! seed, and, opened in a real headless Chromium, it draws every peer, shows about half of
//! them holding a block at its t50 and all at its t100, and its selector switches blocks.
//! Without Chromium (and no way to install it) the browser test prints `SKIPPED <reason>`.

mod common;

use common::Scratch;
use rantai_sim::view::{ViewBlocks, ViewData};
use rantai_sim::{Millis, Sim, SimConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Peers of the browser test's run.
const PEERS: usize = 200;

fn small() -> SimConfig {
    let mut cfg = SimConfig::small(40);
    cfg.seed = 3;
    cfg.blocks = 12;
    cfg.miners = Some(6);
    cfg.block_interval = Some(Millis::from_secs(2));
    cfg
}

fn page_of(cfg: SimConfig, choice: &ViewBlocks) -> (String, ViewData) {
    let mut sim = Sim::new(cfg).unwrap();
    sim.record_peer_delays();
    let report = sim.run();
    let data = ViewData::from_sim(&sim, &report, choice);
    (data.html(), data)
}

#[test]
fn the_same_seed_writes_the_same_page_and_it_needs_no_network() {
    let (a, data) = page_of(small(), &ViewBlocks::Auto);
    let (b, _) = page_of(small(), &ViewBlocks::Auto);
    assert!(a == b, "view.html differs between two runs of one seed");
    for banned in ["http://", "https://", "<link", "src=", "@import"] {
        assert!(
            !a.contains(banned),
            "view.html refers outside itself: {banned}"
        );
    }
    assert_eq!(data.peers.len(), 40);
    // 12 blocks x 40 peers is far below the auto budget: every block carries arrivals.
    assert!(data
        .blocks
        .iter()
        .all(|b| b.ms.as_ref().map(Vec::len) == Some(40)));
    assert!(
        data.blocks.iter().any(|b| b.stale),
        "2 s blocks make a race"
    );
    for b in &data.blocks {
        let (ms, via) = (b.ms.as_ref().unwrap(), b.via.as_ref().unwrap());
        assert_eq!(ms[b.miner as usize], 0);
        assert_eq!(via[b.miner as usize], -1);
        let reached = ms.iter().filter(|&&x| x >= 0).count();
        assert_eq!(reached as u32, b.reached);
        // Whoever delivered a block to a peer had it no later.
        for (p, &v) in via.iter().enumerate() {
            if v >= 0 && ms[p] >= 0 {
                assert!(
                    ms[v as usize] >= 0 && ms[v as usize] <= ms[p],
                    "block {b:?} peer {p}"
                );
            }
        }
    }
    // Only the chosen blocks carry arrivals.
    let (_, two) = page_of(small(), &ViewBlocks::Count(2));
    assert_eq!(two.blocks.iter().filter(|b| b.ms.is_some()).count(), 2);
}

/// A process killed (with its whole group: Chromium forks helpers) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RANTAI_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args`, at most `limit`; its stdout.
fn browse(bin: &Path, profile: &Path, args: &[String], url: &str, limit: Duration) -> String {
    use std::os::unix::process::CommandExt;
    let out = profile.with_extension("stdout");
    let child = Command::new(bin)
        .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
        .args([
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .args(["--no-default-browser-check", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting chromium");
    let mut guard = Guard(child);
    let deadline = Instant::now() + limit;
    loop {
        if guard.0.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(guard);
    std::fs::read_to_string(&out).unwrap_or_default()
}

/// The JSON the page's self-test writes into `<pre id="view-state">`.
fn state_of(dom: &str) -> serde_json::Value {
    let start = dom
        .find("<pre id=\"view-state\">")
        .unwrap_or_else(|| panic!("no state element in the page:\n{dom:.2000}"))
        + "<pre id=\"view-state\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("state {text:?}: {e}"))
}

#[test]
fn a_block_spreads_across_the_map_in_a_real_browser() {
    let Some(bin) = chromium() else {
        println!("SKIPPED no chromium on PATH (.ci/run installs Debian's `chromium`)");
        return;
    };
    let dir = Scratch::new("view-browser");
    let out = dir.path("run");
    let status = Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
        .args(["--preset", "bitcoin-2019", "--peers", &PEERS.to_string()])
        .args(["--blocks", "10", "--block-interval", "5s", "--seed", "2"])
        .args(["--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let page = out.join("view.html");
    let blocks = std::fs::read_to_string(out.join("blocks.csv")).unwrap();
    // The block to watch: the first that reached every peer (a race's winner if there is one).
    let rows: Vec<Vec<String>> = blocks
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let complete = |r: &Vec<String>| r[5] == "best" && r[10] == PEERS.to_string();
    let raced = |r: &Vec<String>| rows.iter().any(|o| o[0] == r[0] && o[5] == "stale");
    let block = rows
        .iter()
        .position(|r| complete(r) && raced(r))
        .or_else(|| rows.iter().position(complete))
        .expect("a block that reached every peer");

    let url = format!("file://{}#block={block}&t=t50", page.display());
    let args = [
        "--virtual-time-budget=5000".to_string(),
        "--dump-dom".into(),
    ];
    let limit = Duration::from_secs(120);
    let dom = browse(
        &bin,
        &dir.path("profile"),
        &args,
        &format!("{url}&selftest=1"),
        limit,
    );
    let s = state_of(&dom);
    assert_eq!(s["errors"], serde_json::json!([]), "console errors: {s}");
    assert_eq!(s["peers"], PEERS, "{s}");
    let t50 = &s["at_t50"];
    assert_eq!(t50["block"], block, "{s}");
    assert_eq!(t50["drawn"], PEERS, "every peer drawn: {s}");
    let half = t50["holding"].as_u64().unwrap() as usize;
    assert!(
        (PEERS / 2..=PEERS * 6 / 10).contains(&half),
        "about half hold it at t50: {s}"
    );
    assert_eq!(s["at_t100"]["holding"], PEERS, "all hold it at t100: {s}");
    // The same read back from the map's pixels: peers whose centre has the colour of "holds
    // the block" (alone or with its rival); some lie under a miner's ring, a label or a
    // neighbour's dot.
    let px = |at: &str| {
        let p = &s[at]["pixels"];
        (p["selected"].as_u64().unwrap() + p["both"].as_u64().unwrap()) as usize
    };
    assert!(
        (PEERS * 4 / 10..=PEERS * 7 / 10).contains(&px("at_t50")),
        "about half the dots coloured at t50: {s}"
    );
    assert!(
        px("at_t100") >= PEERS * 8 / 10,
        "all dots coloured at t100: {s}"
    );
    let sw = &s["switched"];
    assert!(
        sw["block"] != block && sw["t_ms"] == 0,
        "the selector switched blocks: {s}"
    );
    assert!(sw["holding"].as_u64().unwrap() < PEERS as u64 / 2, "{s}");
    let hover = s["hover"].as_str().unwrap_or_default();
    assert!(
        hover.starts_with("peer ") && hover.contains("miner"),
        "hovering the miner names it: {s}"
    );

    // The screenshot the README shows, kept under the test's output directory.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("view-t50.png");
    let _ = std::fs::remove_file(&png);
    let args = [
        "--virtual-time-budget=5000".to_string(),
        "--window-size=1200,800".into(),
        format!("--screenshot={}", png.display()),
    ];
    browse(&bin, &dir.path("profile2"), &args, &url, limit);
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
    println!("screenshot at t50: {}", png.display());

    // A testbed's report of real nodes opens in the same page (`rantai-sim view`).
    let tb = dir.file(
        "testbed.json",
        &serde_json::to_string(&testbed(20)).unwrap(),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_rantai-sim"))
        .arg("view")
        .arg(&tb)
        .arg("--out")
        .arg(dir.path("tb"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let url = format!(
        "file://{}#block=1&selftest=1",
        dir.path("tb").join("view.html").display()
    );
    let args = [
        "--virtual-time-budget=5000".to_string(),
        "--dump-dom".into(),
    ];
    let s = state_of(&browse(&bin, &dir.path("profile3"), &args, &url, limit));
    assert_eq!(s["errors"], serde_json::json!([]), "console errors: {s}");
    assert_eq!(s["at_t50"]["source"], "testbed", "{s}");
    assert_eq!(s["at_t50"]["drawn"], 20, "{s}");
    assert_eq!(s["at_t50"]["holding"], 10, "{s}");
    assert_eq!(s["at_t100"]["holding"], 20, "{s}");
}

/// A testbed report of `nodes` real nodes and three blocks, node k hearing block b after
/// 10 * k + b ms (the miner at 0).
fn testbed(nodes: u32) -> rantai_core::calib::CalibReport {
    use rantai_core::calib::{CalibBlock, CalibReport};
    let blocks = (0..3u32)
        .map(|b| {
            let arrival_ms = (0..nodes)
                .map(|k| Some(if k == b { 0 } else { u64::from(10 * k + b + 1) }))
                .collect();
            CalibBlock {
                miner: b,
                bytes: 1000,
                hash: format!("{b:064x}"),
                arrival_ms,
                ..Default::default()
            }
            .with_marks()
        })
        .collect();
    CalibReport {
        source: "testbed".into(),
        nodes,
        relay: "compact".into(),
        blocks,
        ..Default::default()
    }
}
