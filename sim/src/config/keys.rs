//! The scenario keys: one table that the TOML reader, the command-line flags,
//! [`SimConfig::apply`], sweeps and the replay command line all read.
//!
//! Each [`Key`] parses its text into a [`SimConfig`] and shows the resolved value back in the
//! same form, so a replay command built from `show` sets every key to what the run used. The
//! table is in replay order, which is also the order of `--help` and of the known-keys list.

use super::error::{ValueError, MAX_ITEM_BYTES};
use super::model::{CrashSpec, Latency, PartitionSpec, Topology};
use super::scenario::{LinksFile, PingInterval, ScheduleFile, SimConfig};
use crate::presets;
use crate::units::{parse_duration, parse_probability, parse_size, Bare};
use rantai_core::RelayPolicy;
use std::path::Path;

/// Sets a key on a configuration from its text; the path resolves relative file names.
type Set = fn(&mut SimConfig, &str, Option<&Path>) -> Result<(), ValueError>;
/// The key's resolved values as command-line arguments (none: the default applies).
type Show = fn(&SimConfig) -> Vec<String>;
/// Drops every entry of a repeatable key.
type Clear = fn(&mut SimConfig);

/// One scenario key.
#[derive(Debug)]
pub struct Key {
    /// The scenario-file name; the flag is the same with `-` for `_` (see [`Key::flag`]).
    pub name: &'static str,
    /// The value's placeholder in `--help`.
    pub value_name: &'static str,
    /// The flag's line in `--help`.
    pub help: &'static str,
    /// Whether `--sweep` may vary it: list-valued settings have no single value to put in a
    /// comma-separated list, and the seed has its own axis (`--seeds`).
    pub sweepable: bool,
    /// What a TOML array under this key means in a scenario file (`None`: arrays are refused).
    pub toml_array: Option<ArrayForm>,
    /// For keys whose every use adds an entry (partitions, crashes): how to drop the entries,
    /// since a flag's list replaces the scenario file's. `None`: a use replaces the value.
    clear: Option<Clear>,
    set: Set,
    show: Show,
}

impl Key {
    /// The command-line flag without its dashes: `block-interval` for `block_interval`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// Whether each use adds an entry instead of replacing the value.
    pub fn repeatable(&self) -> bool {
        self.clear.is_some()
    }

    /// Drops a repeatable key's entries (a no-op for other keys).
    pub fn clear(&self, cfg: &mut SimConfig) {
        if let Some(clear) = self.clear {
            clear(cfg);
        }
    }

    /// Parses `value` into `cfg`.
    pub fn set(
        &self,
        cfg: &mut SimConfig,
        value: &str,
        base: Option<&Path>,
    ) -> Result<(), ValueError> {
        (self.set)(cfg, value, base)
    }

    /// The arguments that set this key to `cfg`'s resolved value (`--flag value`, once per
    /// entry), empty where the default is what `cfg` uses.
    pub fn show(&self, cfg: &SimConfig) -> Vec<String> {
        (self.show)(cfg)
            .into_iter()
            .map(|v| format!("--{} {}", self.flag(), shell_quote(&v)))
            .collect()
    }
}

/// `v` as one shell word: unchanged when it is plain, else in single quotes (a quote inside
/// written `'\''`), so a printed replay command can be pasted as is.
pub fn shell_quote(v: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:,=@%+".contains(c);
    if !v.is_empty() && v.chars().all(plain) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// The meaning of a TOML array in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayForm {
    /// Scalars, read as the flag's comma-separated list (`hashpower = [1, 2]`).
    List,
    /// `[[partition]]` tables.
    Partitions,
    /// `[[crash]]` tables.
    Crashes,
}

/// Finds a key by its scenario-file name (`block_interval`).
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key names, comma-separated, for messages about unknown keys.
pub fn known() -> String {
    KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// A plain number; `what` names it in the refusal ("a number of peers").
fn count<T: std::str::FromStr>(v: &str, what: &'static str) -> Result<T, ValueError> {
    v.parse().map_err(|_| ValueError::expected(what, v))
}

/// A duration where a bare number is seconds (`600`, `2s`, `10m`).
fn duration_s(v: &str) -> Result<rantai_core::Millis, ValueError> {
    Ok(parse_duration(v, Bare::Seconds)?)
}

/// A duration as the replay command writes it, in exact milliseconds.
fn ms(m: rantai_core::Millis) -> Vec<String> {
    vec![crate::units::fmt_duration(m.0)]
}

/// A file named by a key, relative to the scenario file's directory.
fn read_relative(v: &str, base: Option<&Path>) -> Result<String, ValueError> {
    let p = match base {
        Some(b) if Path::new(v).is_relative() => b.join(v),
        _ => Path::new(v).to_path_buf(),
    };
    std::fs::read_to_string(&p).map_err(|e| ValueError::Read {
        path: p.display().to_string(),
        msg: e.to_string(),
    })
}

/// `on` or `off` (also `true` or `false`).
fn on_off(v: &str) -> Result<bool, ValueError> {
    match v {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(ValueError::expected("`on` or `off`", v)),
    }
}

/// A single shown value.
fn one(v: impl ToString) -> Vec<String> {
    vec![v.to_string()]
}

/// Every scenario key, in replay order.
pub static KEYS: &[Key] = &[
    Key {
        name: "seed",
        value_name: "SEED",
        help: "Master seed of every random stream [default: 1]",
        sweepable: false,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.seed = count(v, "an unsigned integer")?;
            Ok(())
        },
        show: |c| one(c.seed),
    },
    Key {
        name: "peers",
        value_name: "PEERS",
        help: "Number of peers [default: 1000]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            let n: u32 = count(v, "a number of peers")?;
            if !(1..=1_000_000).contains(&n) {
                return Err(ValueError::PeersRange(n));
            }
            c.peers = n;
            Ok(())
        },
        show: |c| one(c.peers),
    },
    Key {
        name: "blocks",
        value_name: "BLOCKS",
        help: "Stop mining after this many blocks [default: 100]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.blocks = count(v, "a number of blocks")?;
            Ok(())
        },
        show: |c| one(c.blocks),
    },
    Key {
        name: "preset",
        value_name: "PRESET",
        help: "bitcoin-2015 | bitcoin-2019 | none [default: bitcoin-2019]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.preset = if v == "none" {
                None
            } else {
                Some(presets::by_name(v).ok_or_else(|| {
                    let names: Vec<&str> = presets::PRESETS.iter().map(|p| p.name).collect();
                    ValueError::UnknownPreset {
                        name: v.to_string(),
                        known: names.join(", "),
                    }
                })?)
            };
            Ok(())
        },
        show: |c| one(c.preset.map_or("none", |p| p.name)),
    },
    Key {
        name: "block_interval",
        value_name: "DURATION",
        help: "Mean time between blocks; a bare number is seconds [default: preset's, else 10s]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            let d = duration_s(v)?;
            if d.0 == 0 {
                return Err(ValueError::NotPositive);
            }
            c.block_interval = Some(d);
            Ok(())
        },
        show: |c| ms(c.block_interval()),
    },
    Key {
        name: "block_size",
        value_name: "SIZE",
        help: "Virtual size of mined blocks, e.g. 535kB [default: preset's, else 0]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.block_size_bytes = Some(parse_size(v)?);
            Ok(())
        },
        show: |c| one(c.block_size_bytes()),
    },
    Key {
        name: "miners",
        value_name: "MINERS",
        help:
            "Number of mining peers, equal hash power unless --hashpower [default: min(peers, 100)]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            let n: u32 = count(v, "a number of miners")?;
            if n == 0 {
                return Err(ValueError::NoMiner);
            }
            c.miners = Some(n);
            Ok(())
        },
        show: |c| one(c.miners()),
    },
    Key {
        name: "hashpower",
        value_name: "S1,S2,..",
        help: "Comma-separated hash-power shares, one per miner",
        sweepable: false,
        toml_array: Some(ArrayForm::List),
        clear: None,
        set: |c, v, _| {
            let shares: Vec<f64> = v
                .split(',')
                .map(|s| s.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| ValueError::expected("comma-separated shares", v))?;
            if shares.is_empty()
                || shares.iter().any(|s| !s.is_finite() || *s < 0.0)
                || shares.iter().sum::<f64>() <= 0.0
            {
                return Err(ValueError::Shares);
            }
            c.hashpower = Some(shares);
            Ok(())
        },
        show: |c| match &c.hashpower {
            Some(h) => one(h.iter().map(f64::to_string).collect::<Vec<_>>().join(",")),
            None => vec![],
        },
    },
    Key {
        name: "topology",
        value_name: "TOPOLOGY",
        help:
            "random[:K] | mesh | ring | line | star | small-world:K:P | file:PATH [default: random]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, base| {
            c.topology = Topology::parse_in(v, base)?;
            Ok(())
        },
        show: |c| one(&c.topology),
    },
    Key {
        name: "max_inbound",
        value_name: "MAX_INBOUND",
        help: "Cap on inbound links per peer for random topologies, or `unlimited`",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.max_inbound = if v == "unlimited" {
                None
            } else {
                Some(count(v, "a number or `unlimited`")?)
            };
            Ok(())
        },
        show: |c| c.max_inbound.map(one).unwrap_or_default(),
    },
    Key {
        name: "latency",
        value_name: "LATENCY",
        help: "const:D | uniform:LO..HI | normal:MEAN:SD | lognormal:MEDIAN:SIGMA | region",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.latency = Some(v.parse::<Latency>()?);
            Ok(())
        },
        show: |c| one(c.latency()),
    },
    Key {
        name: "bandwidth",
        value_name: "BANDWIDTH",
        help: "RATE (both ways), DOWN/UP (e.g. 50Mbps/10Mbps), `unlimited` or `region`",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.bandwidth = Some(v.parse()?);
            Ok(())
        },
        show: |c| one(c.bandwidth()),
    },
    Key {
        name: "relay",
        value_name: "RELAY",
        help: "announce | push | compact [default: the preset's (bitcoin-2019: compact), else announce]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.relay = Some(match v {
                "announce" => RelayPolicy::Announce,
                "push" => RelayPolicy::Push,
                "compact" => RelayPolicy::Compact,
                _ => return Err(ValueError::expected("`announce`, `push` or `compact`", v)),
            });
            Ok(())
        },
        show: |c| {
            c.relay.map_or(vec![], |r| one(r.as_str()))
        },
    },
    Key {
        name: "compact_failure",
        value_name: "P",
        help: "Probability that a peer's mempool lacks part of a compact block's payload (one more round trip) [default: 0.13]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.compact_failure = parse_probability(v)?;
            Ok(())
        },
        show: |c| {
            if c.compact_failure != crate::net::COMPACT_FAILURE_RATE {
                one(c.compact_failure)
            } else {
                vec![]
            }
        },
    },
    Key {
        name: "loss",
        value_name: "LOSS",
        help: "Probability that a message is lost (0.2 or 20%)",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.loss = parse_probability(v)?;
            Ok(())
        },
        show: |c| if c.loss > 0.0 { one(c.loss) } else { vec![] },
    },
    Key {
        name: "duplicate",
        value_name: "DUPLICATE",
        help: "Probability that a message is delivered twice",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.duplicate = parse_probability(v)?;
            Ok(())
        },
        show: |c| {
            if c.duplicate > 0.0 {
                one(c.duplicate)
            } else {
                vec![]
            }
        },
    },
    Key {
        name: "reorder",
        value_name: "REORDER",
        help: "Probability that a message is held back (and overtaken) by up to --reorder-delay",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.reorder = parse_probability(v)?;
            Ok(())
        },
        show: |c| {
            if c.reorder > 0.0 {
                one(c.reorder)
            } else {
                vec![]
            }
        },
    },
    Key {
        name: "reorder_delay",
        value_name: "DURATION",
        help: "Longest extra delay of a held-back message [default: 1s]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.reorder_delay = parse_duration(v, Bare::Refused)?;
            Ok(())
        },
        show: |c| {
            if c.reorder > 0.0 {
                ms(c.reorder_delay)
            } else {
                vec![]
            }
        },
    },
    Key {
        name: "partition",
        value_name: "SPEC",
        help: "START..END[:FRACTION][:oneway], repeatable, e.g. 10m..30m:0.5",
        sweepable: false,
        toml_array: Some(ArrayForm::Partitions),
        clear: Some(|c| c.partitions.clear()),
        set: |c, v, _| {
            c.partitions.push(v.parse::<PartitionSpec>()?);
            Ok(())
        },
        show: |c| c.partitions.iter().map(PartitionSpec::to_string).collect(),
    },
    Key {
        name: "crash",
        value_name: "SPEC",
        help: "PEER@START[..END][:wipe], repeatable, e.g. 3@10m..20m",
        sweepable: false,
        toml_array: Some(ArrayForm::Crashes),
        clear: Some(|c| c.crashes.clear()),
        set: |c, v, _| {
            c.crashes.push(v.parse::<CrashSpec>()?);
            Ok(())
        },
        show: |c| c.crashes.iter().map(CrashSpec::to_string).collect(),
    },
    Key {
        name: "items",
        value_name: "ITEMS",
        help: "Data items submitted at random peers during the first half of the mining phase",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.items = count(v, "a number of items")?;
            Ok(())
        },
        show: |c| if c.items > 0 { one(c.items) } else { vec![] },
    },
    Key {
        name: "item_size",
        value_name: "SIZE",
        help: "Size of each submitted item's text [default: 64]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            let n = parse_size(v)?;
            if n > MAX_ITEM_BYTES {
                return Err(ValueError::ItemTooLarge);
            }
            c.item_size_bytes = n as u32;
            Ok(())
        },
        show: |c| {
            if c.items > 0 {
                one(c.item_size_bytes)
            } else {
                vec![]
            }
        },
    },
    Key {
        name: "links",
        value_name: "FILE",
        help: "Calibration links file (`A B LATENCY`, `node I up RATE down RATE` lines): the \
               topology, each link's latency and each peer's rates; sets peers",
        sweepable: false,
        toml_array: None,
        clear: None,
        set: |c, v, base| {
            let text = read_relative(v, base)?;
            let links = rantai_core::calib::Links::parse(&text)?;
            c.peers = links.nodes;
            c.links = Some(LinksFile {
                source: v.to_string(),
                links: std::sync::Arc::new(links),
            });
            Ok(())
        },
        show: |c| c.links.iter().map(|l| l.source.clone()).collect(),
    },
    Key {
        name: "schedule",
        value_name: "FILE",
        help: "Calibration block schedule (`TIME NODE BYTES` lines): these blocks replace \
               mining; sets blocks and miners to 0",
        sweepable: false,
        toml_array: None,
        clear: None,
        set: |c, v, base| {
            let text = read_relative(v, base)?;
            let blocks = rantai_core::calib::parse_schedule(&text, u32::MAX)?;
            c.blocks = 0;
            c.miners = Some(0);
            c.schedule = Some(ScheduleFile {
                source: v.to_string(),
                blocks: std::sync::Arc::new(blocks),
            });
            Ok(())
        },
        show: |c| c.schedule.iter().map(|s| s.source.clone()).collect(),
    },
    Key {
        name: "settle",
        value_name: "DURATION",
        help: "Longest time to run on after the last block and fault [default: 10m]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.settle = duration_s(v)?;
            Ok(())
        },
        show: |c| ms(c.settle),
    },
    Key {
        name: "ping_interval",
        value_name: "DURATION",
        help: "Peer keepalive period or `off` [default: 30s with faults, else off]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.ping_interval = if v == "off" || v == "none" {
                PingInterval::Off
            } else {
                let d = duration_s(v)?;
                if d.0 == 0 {
                    return Err(ValueError::NotPositiveOrOff);
                }
                PingInterval::Every(d)
            };
            Ok(())
        },
        show: |c| c.ping_interval().map_or_else(|| one("off"), ms),
    },
    Key {
        name: "request_timeout",
        value_name: "DURATION",
        help: "How long a peer waits for a requested block [default: 60s]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.request_timeout = duration_s(v)?;
            Ok(())
        },
        show: |c| ms(c.request_timeout),
    },
    Key {
        name: "redial_delay",
        value_name: "DURATION",
        help: "First delay before a peer re-dials a closed link; doubles per failure, at most 8x [default: 5s]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.redial_delay = duration_s(v)?;
            Ok(())
        },
        show: |c| ms(c.redial_delay),
    },
    Key {
        name: "discovery",
        value_name: "on|off",
        help: "Peers advertise their address and dial addresses learned from neighbours, up to core's outbound budget (8), so the topology grows from the configured links [default: off]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.discovery = on_off(v)?;
            Ok(())
        },
        show: |c| one(if c.discovery { "on" } else { "off" }),
    },
    Key {
        name: "threads",
        value_name: "N",
        help: "Worker threads of this run: peers are split into that many shards that run each \
               round side by side. Changes nothing but the wall time (the report and trace are \
               the same bytes for any N) [default: every core for 2,000 peers or more, else 1]",
        sweepable: false,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            let n: usize = count(v, "a number of threads")?;
            if n == 0 {
                return Err(ValueError::NotPositive);
            }
            c.threads = Some(n);
            Ok(())
        },
        // Not part of the scenario: a replay with any thread count gives the same run.
        show: |_| Vec::new(),
    },
    Key {
        name: "tcp_slow_start",
        value_name: "on|off",
        help: "Model TCP's congestion window per connection: large messages on a fresh or idle \
               connection wait one round trip per window doubling (see Calibration) [default: off]",
        sweepable: true,
        toml_array: None,
        clear: None,
        set: |c, v, _| {
            c.tcp_slow_start = on_off(v)?;
            Ok(())
        },
        show: |c| {
            if c.tcp_slow_start {
                one("on")
            } else {
                Vec::new()
            }
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_commands_paste_into_a_shell() {
        assert_eq!(shell_quote("10m"), "10m");
        assert_eq!(shell_quote("uniform:10ms..200ms"), "uniform:10ms..200ms");
        assert_eq!(shell_quote("my links.txt"), "'my links.txt'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        let mut c = SimConfig::default();
        c.apply("partition", "90s..120m:0.5", None).unwrap();
        c.apply("block_interval", "90s", None).unwrap();
        let line = c.command_line();
        assert!(line.contains("--block-interval 1m30s "), "{line}");
        assert!(line.contains("--settle 10m "), "{line}");
        assert!(line.contains("--partition 1m30s..2h:0.5"), "{line}");
    }

    #[test]
    fn every_key_is_listed_once_and_spelled_as_in_files() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(!k.name.contains('-'), "{}", k.name);
            assert!(KEYS[..i].iter().all(|o| o.name != k.name), "{}", k.name);
            assert_eq!(find(k.name).map(|f| f.name), Some(k.name));
        }
        assert_eq!(
            find("block_interval").map(Key::flag).as_deref(),
            Some("block-interval")
        );
    }

    #[test]
    fn lists_files_the_seed_and_threads_are_not_sweepable() {
        let fixed: Vec<&str> = KEYS
            .iter()
            .filter(|k| !k.sweepable)
            .map(|k| k.name)
            .collect();
        assert_eq!(
            fixed,
            [
                "seed",
                "hashpower",
                "partition",
                "crash",
                "links",
                "schedule",
                "threads"
            ]
        );
        let repeatable: Vec<&str> = KEYS
            .iter()
            .filter(|k| k.repeatable())
            .map(|k| k.name)
            .collect();
        assert_eq!(repeatable, ["partition", "crash"]);
    }
}
