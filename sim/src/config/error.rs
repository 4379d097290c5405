//! Why a configuration was refused: [`ConfigError`] names the key, [`ValueError`] says what
//! was wrong with its value.

use super::model::{FaultError, LatencyError, TopologyError};
use crate::units::UnitError;

/// Why a configuration value or file was refused. Always names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key that no setting has.
    #[error("unknown key `{key}` (known keys: {known})")]
    UnknownKey { key: String, known: String },
    /// A known key with a value that does not parse or is out of range. `reason` is shown in
    /// the message, not chained as a source, so an error chain prints it once.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: String, reason: ValueError },
    /// The scenario file could not be read.
    #[error("cannot read {path}: {msg}")]
    Io { path: String, msg: String },
    /// The scenario file is not valid TOML.
    #[error("{path}: invalid TOML: {msg}")]
    Toml { path: String, msg: String },
}

impl ConfigError {
    /// `reason` refused for `key` (a scenario key, or a path inside a file such as `crash[0].at`).
    pub fn invalid(key: impl Into<String>, reason: impl Into<ValueError>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Largest data item a scenario may submit: it must fit one protocol message.
pub const MAX_ITEM_BYTES: u64 = 60_000;

/// Why one value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not of the expected form (`what` names it: "an unsigned integer", "a number of peers").
    #[error("expected {what}, got {got:?}")]
    Expected { what: &'static str, got: String },
    #[error("must be between 1 and 1000000, got {0}")]
    PeersRange(u32),
    #[error("must be positive")]
    NotPositive,
    #[error("must be positive (or `off`)")]
    NotPositiveOrOff,
    #[error("the smallest one-way latency it allows is 0 ms: give it a positive minimum (the engine's rounds are that long, and a message that takes no time would leave none)")]
    ZeroLatencyFloor,
    #[error("cannot start the worker threads: {0}")]
    Threads(String),
    #[error("need at least one miner")]
    NoMiner,
    #[error("shares must be non-negative with a positive sum")]
    Shares,
    #[error("unknown preset {name:?} (known: {known}, none)")]
    UnknownPreset { name: String, known: String },
    #[error("at most {MAX_ITEM_BYTES} bytes")]
    ItemTooLarge,
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Latency(#[from] LatencyError),
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error("cannot read {path}: {msg}")]
    Read { path: String, msg: String },
    #[error(transparent)]
    Calib(#[from] rantai_core::calib::CalibError),

    // Checks across keys (`SimConfig::validate`).
    #[error("{shares} shares given for {miners} miners")]
    SharesForMiners { shares: usize, miners: u32 },
    #[error("the `region` model needs a preset (e.g. --preset bitcoin-2019)")]
    RegionLatencyNeedsPreset,
    #[error("the `region` model needs a preset")]
    RegionBandwidthNeedsPreset,
    #[error("mesh is limited to 2000 peers (links grow with peers squared)")]
    MeshTooLarge,
    #[error("edge {a}-{b} names a peer >= peers ({peers})")]
    EdgeOutOfRange { a: u32, b: u32, peers: u32 },
    #[error("crash[{index}]: peer {peer} >= peers ({peers})")]
    CrashPeerOutOfRange { index: usize, peer: u32, peers: u32 },
    #[error("crash[{index}]: restart before crash")]
    RestartBeforeCrash { index: usize },
    #[error("partition[{index}]: heal before split")]
    HealBeforeSplit { index: usize },
    #[error("partition[{index}]: peer {peer} >= peers ({peers})")]
    PartitionPeerOutOfRange { index: usize, peer: u32, peers: u32 },
    #[error("the links file has {nodes} nodes but peers is {peers}")]
    LinksPeers { nodes: u32, peers: u32 },
    #[error("scheduled block {index} is mined at peer {node} >= peers ({peers})")]
    SchedulePeer { index: usize, node: u32, peers: u32 },
    #[error("a schedule mines its own blocks: `blocks` must be 0 (it is {0})")]
    ScheduleWithBlocks(u64),
    #[error("a schedule needs a `links` file (it keeps every (block, peer) arrival, so the network must be a calibration one)")]
    ScheduleWithoutLinks,
    #[error("a schedule mines its own blocks: `miners` and `items` must be 0 (their blocks and items would change the scheduled ones)")]
    ScheduleWithMining,

    // Shapes of values in a scenario file.
    #[error("expected a string, number or boolean")]
    NotAScalar,
    #[error("expected an array of numbers")]
    NotNumbers,
    #[error("expected a table")]
    NotATable,
    #[error("missing")]
    Missing,
    #[error("expected a duration")]
    NotADuration,
    #[error("expected true or false")]
    NotABool,
    #[error("expected a number")]
    NotANumber,
    #[error("expected a peer index")]
    NotAPeer,
    #[error("give either `fraction` or `groups`, not both")]
    FractionAndGroups,
    #[error("expected an array of arrays")]
    NotArrays,
    #[error("expected an array of arrays of peer indices")]
    NotGroups,
    #[error("peer indices must be non-negative integers")]
    BadGroupIndex,
}

impl ValueError {
    /// `got` is not `what` ("a number of peers", say).
    pub fn expected(what: &'static str, got: &str) -> ValueError {
        ValueError::Expected {
            what,
            got: got.to_string(),
        }
    }
}
