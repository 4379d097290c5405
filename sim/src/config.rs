//! Scenario configuration: one typed [`SimConfig`], set key by key from a TOML scenario file
//! and then from command-line flags (flags override the file), or from Rust via the builder.
//!
//! Every key has the same name in both places (`block_interval` in TOML, `--block-interval` on
//! the command line) and is parsed by [`SimConfig::apply`] through one table of keys
//! ([`keys::KEYS`]), so an error always names the key and [`SimConfig::command_line`] replays
//! exactly what was applied. The models a key names ([`Topology`], [`Latency`], ...) parse and
//! print their own flag form.

mod error;
mod file;
pub mod keys;
mod model;
mod scenario;

pub use error::{ConfigError, ValueError, MAX_ITEM_BYTES};
pub use model::{
    parse_edges, Bandwidth, CrashSpec, EdgesError, FaultError, Groups, Latency, LatencyError,
    PartitionSpec, Topology, TopologyError,
};

pub use scenario::{LinksFile, PingInterval, ScheduleFile, SimConfig};

use std::path::Path;

impl SimConfig {
    /// Sets one key from its textual value, as given on the command line or in a scenario file.
    /// The key may be spelled as in a file or as a flag (`--block-interval`); `base` resolves
    /// relative file paths (the scenario file's directory).
    pub fn apply(
        &mut self,
        key: &str,
        value: &str,
        base: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let name = key.trim_start_matches("--").replace('-', "_");
        let k = keys::find(&name).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_string(),
            known: keys::known(),
        })?;
        k.set(self, value.trim(), base)
            .map_err(|reason| ConfigError::invalid(name, reason))
    }

    /// Applies a scenario file's TOML text. `path` is used in messages and to resolve
    /// relative paths inside it.
    pub fn apply_toml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        file::apply_toml(self, text, path)
    }

    /// Reads and applies a scenario file.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        self.apply_toml(&text, path)
    }

    /// A command line that replays this configuration exactly (printed on invariant
    /// violations): every key's resolved value, in the key table's order.
    pub fn command_line(&self) -> String {
        let mut a = vec!["cargo run --release -p rantai-sim --".to_string()];
        for k in keys::KEYS {
            a.extend(k.show(self));
        }
        a.join(" ")
    }
}

/// Canonical text of a topology (as accepted by `--topology`); the same as its `Display`.
pub fn topology_str(t: &Topology) -> String {
    t.to_string()
}

/// Canonical text of a latency model (as accepted by `--latency`); the same as its `Display`.
pub fn latency_str(l: &Latency) -> String {
    l.to_string()
}

/// Canonical text of a bandwidth model (as accepted by `--bandwidth`); the same as its
/// `Display`.
pub fn bandwidth_str(b: &Bandwidth) -> String {
    b.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rantai_core::Millis;

    #[test]
    fn keys_and_errors() {
        let mut c = SimConfig::default();
        c.apply("--block-interval", "2s", None).unwrap();
        assert_eq!(c.block_interval(), Millis(2000));
        c.apply("block_size", "535kB", None).unwrap();
        assert_eq!(c.block_size_bytes(), 535_000);
        let e = c.apply("blocks", "many", None).unwrap_err();
        assert!(e.to_string().contains("`blocks`"), "{e}");
        let e = c.apply("colour", "red", None).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
        c.apply("partition", "10m..20m:0.3:oneway", None).unwrap();
        assert_eq!(c.partitions[0].heal, Some(Millis(1_200_000)));
        assert!(c.partitions[0].oneway);
        c.apply("crash", "3@1m..2m:wipe", None).unwrap();
        assert!(!c.crashes[0].keep_chain);
    }

    #[test]
    fn replay_command_reproduces_the_config() {
        let mut c = SimConfig::default();
        for (k, v) in [
            ("seed", "99"),
            ("peers", "321"),
            ("blocks", "17"),
            ("block_interval", "7s"),
            ("block_size", "12kB"),
            ("miners", "3"),
            ("hashpower", "1,2,3"),
            ("topology", "small-world:4:0.25"),
            ("latency", "lognormal:70ms:0.4"),
            ("bandwidth", "50Mbps/10Mbps"),
            ("loss", "0.05"),
            ("duplicate", "1%"),
            ("reorder", "0.02"),
            ("reorder_delay", "700ms"),
            ("relay", "push"),
            ("partition", "1m..2m:0.3:oneway"),
            ("crash", "4@30s..90s:wipe"),
            ("items", "5"),
            ("settle", "2m"),
            ("max_inbound", "40"),
        ] {
            c.apply(k, v, None).unwrap();
        }
        let cmd = c.command_line();
        let args = cmd.split_once(" -- ").unwrap().1.replace('\'', "");
        let toks: Vec<&str> = args.split_whitespace().collect();
        let mut back = SimConfig::default();
        for pair in toks.chunks(2) {
            back.apply(pair[0], pair[1], None).unwrap();
        }
        // The replayed config resolves every default explicitly; compare resolved values.
        assert_eq!(back.command_line(), cmd);
        assert_eq!(back.partitions, c.partitions);
        assert_eq!(back.crashes, c.crashes);
        assert_eq!(back.topology, c.topology);
        assert_eq!(back.latency(), c.latency());
        assert_eq!(back.bandwidth(), c.bandwidth());
        assert_eq!(
            (back.loss, back.duplicate, back.reorder),
            (c.loss, c.duplicate, c.reorder)
        );
    }

    #[test]
    fn toml_file() {
        let mut c = SimConfig::default();
        let text = r#"
            peers = 50
            block_interval = 5
            latency = "uniform:10ms..50ms"
            [[partition]]
            at = "1m"
            heal = "2m"
            groups = [[0, 1, 2]]
            [[crash]]
            peer = 4
            at = "30s"
            restart = "90s"
            keep_chain = false
        "#;
        c.apply_toml(text, Path::new("x.toml")).unwrap();
        assert_eq!(c.peers, 50);
        assert_eq!(c.block_interval(), Millis(5000));
        assert_eq!(c.partitions.len(), 1);
        assert_eq!(c.crashes[0].restart, Some(Millis(90_000)));
        let e = c
            .apply_toml("bogus_key = 1", Path::new("x.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("bogus_key"), "{e}");
        let e = c
            .apply_toml("[[crash]]\npeer = 1\nwhen = 3", Path::new("x.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("crash[0].when"), "{e}");
    }
}
