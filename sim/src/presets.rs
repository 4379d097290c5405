//! Network presets built from public measurements of the Bitcoin peer-to-peer network.
//!
//! Source: the SimBlock simulator (github.com/dsg-titech/simblock,
//! `simulator/src/main/java/simblock/settings/NetworkConfiguration.java`, Apache-2.0), which took
//! them from public measurements: region shares of reachable Bitcoin nodes (bitnodes-style
//! crawls) and the outbound-degree distribution of Miller et al., "Discovering Bitcoin's public
//! topology and influential nodes" (2015). Transcribed via the project's
//! `shared/data/bitcoin-network-measurements.toml`; nothing is read from there at run time.

use rantai_core::RelayPolicy;

/// Region names, in the order of every table below.
pub const REGIONS: [&str; 6] = [
    "north_america",
    "europe",
    "south_america",
    "asia_pacific",
    "japan",
    "australia",
];

/// A measured network: what the `bitcoin-2015` and `bitcoin-2019` presets install.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Name used on the command line.
    pub name: &'static str,
    /// Mean one-way latency in ms between regions (row = from, column = to).
    pub latency_ms: [[u32; 6]; 6],
    /// Per-region download bandwidth in bits per second.
    pub download_bps: [u64; 6],
    /// Per-region upload bandwidth in bits per second.
    pub upload_bps: [u64; 6],
    /// Share of peers per region.
    pub region_share: [f64; 6],
    /// Cumulative distribution of outbound links: entry k is P(outbound <= k + 1).
    pub outbound_degree_cdf: &'static [f64],
    /// Mean time between blocks, seconds.
    pub block_interval_s: u64,
    /// Typical block size, bytes.
    pub block_size_bytes: u64,
    /// How blocks were relayed then: announcements before compact blocks (BIP 152, Bitcoin
    /// Core 0.13, 2016), compact blocks after.
    pub relay: RelayPolicy,
}

/// Outbound-degree CDF measured for Bitcoin (Miller et al. 2015); used by both presets.
const BITCOIN_DEGREE_CDF: [f64; 20] = [
    0.025, 0.050, 0.075, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.85, 0.90, 0.95, 0.97,
    0.97, 0.98, 0.99, 0.995, 1.0,
];

/// Bitcoin as measured in 2015.
pub const BITCOIN_2015: Preset = Preset {
    name: "bitcoin-2015",
    latency_ms: [
        [36, 119, 255, 310, 154, 208],
        [119, 12, 221, 242, 266, 350],
        [255, 221, 137, 347, 256, 269],
        [310, 242, 347, 99, 172, 278],
        [154, 266, 256, 172, 9, 163],
        [208, 350, 269, 278, 163, 22],
    ],
    download_bps: [
        25_000_000, 24_000_000, 6_500_000, 10_000_000, 17_500_000, 14_000_000,
    ],
    upload_bps: [
        4_700_000, 8_100_000, 1_800_000, 5_300_000, 3_400_000, 5_200_000,
    ],
    region_share: [0.3869, 0.5159, 0.0113, 0.0574, 0.0119, 0.0166],
    outbound_degree_cdf: &BITCOIN_DEGREE_CDF,
    block_interval_s: 600,
    block_size_bytes: 535_000,
    relay: RelayPolicy::Announce,
};

/// Bitcoin as measured in 2019.
pub const BITCOIN_2019: Preset = Preset {
    name: "bitcoin-2019",
    latency_ms: [
        [32, 124, 184, 198, 151, 189],
        [124, 11, 227, 237, 252, 294],
        [184, 227, 88, 325, 301, 322],
        [198, 237, 325, 85, 58, 198],
        [151, 252, 301, 58, 12, 126],
        [189, 294, 322, 198, 126, 16],
    ],
    download_bps: [
        52_000_000, 40_000_000, 18_000_000, 22_800_000, 22_800_000, 29_900_000,
    ],
    upload_bps: [
        19_200_000, 20_700_000, 5_800_000, 15_700_000, 10_200_000, 11_300_000,
    ],
    region_share: [0.3316, 0.4998, 0.0090, 0.1177, 0.0224, 0.0195],
    outbound_degree_cdf: &BITCOIN_DEGREE_CDF,
    block_interval_s: 600,
    block_size_bytes: 535_000,
    relay: RelayPolicy::Compact,
};

/// Every preset, for lookups and `--help`.
pub const PRESETS: [&Preset; 2] = [&BITCOIN_2015, &BITCOIN_2019];

/// The preset called `name`.
pub fn by_name(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().copied().find(|p| p.name == name)
}
