//! Scenario files: TOML whose top-level keys are the scenario keys. Scalars (strings, numbers,
//! booleans) are applied as their text, exactly like a flag; arrays take the form the key's
//! [`ArrayForm`] names (a list, or `[[partition]]` and `[[crash]]` tables).

use super::error::{ConfigError, ValueError};
use super::keys::{self, ArrayForm, Key};
use super::model::{CrashSpec, Groups, PartitionSpec};
use super::scenario::SimConfig;
use crate::units::{parse_duration, parse_probability, Bare};
use rantai_core::Millis;
use std::path::Path;

/// Applies a scenario file's TOML text to `cfg`; `path` names the file in messages and
/// resolves relative paths inside it.
pub(super) fn apply_toml(cfg: &mut SimConfig, text: &str, path: &Path) -> Result<(), ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            path: path.display().to_string(),
            msg: e.to_string().trim().to_string(),
        })?;
    let base = path.parent();
    for (name, value) in &table {
        let key = keys::find(name);
        match (key.and_then(|k| k.toml_array.map(|form| (k, form))), value) {
            (Some((_, ArrayForm::Partitions)), toml::Value::Array(list)) => {
                for (i, entry) in list.iter().enumerate() {
                    cfg.partitions
                        .push(partition(entry, &format!("partition[{i}]"))?);
                }
            }
            (Some((_, ArrayForm::Crashes)), toml::Value::Array(list)) => {
                for (i, entry) in list.iter().enumerate() {
                    cfg.crashes.push(crash(entry, &format!("crash[{i}]"))?);
                }
            }
            (Some((key, ArrayForm::List)), toml::Value::Array(list)) => {
                let parts = list
                    .iter()
                    .map(|v| scalar(v).ok_or(ValueError::NotNumbers))
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(|e| ConfigError::invalid(name.as_str(), e))?;
                set(cfg, key, &parts.join(","), base)?;
            }
            _ => {
                let s = scalar(value)
                    .ok_or_else(|| ConfigError::invalid(name.as_str(), ValueError::NotAScalar))?;
                let key = key.ok_or_else(|| ConfigError::UnknownKey {
                    key: name.clone(),
                    known: keys::known(),
                })?;
                set(cfg, key, &s, base)?;
            }
        }
    }
    Ok(())
}

/// Sets `key` from its text, as a flag would.
fn set(cfg: &mut SimConfig, key: &Key, text: &str, base: Option<&Path>) -> Result<(), ConfigError> {
    key.set(cfg, text.trim(), base)
        .map_err(|reason| ConfigError::invalid(key.name, reason))
}

/// A scalar's text as a flag would give it.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `ctx.key` refused for `reason`.
fn invalid_at(ctx: &str, key: &str, reason: ValueError) -> ConfigError {
    ConfigError::invalid(format!("{ctx}.{key}"), reason)
}

fn duration(t: &toml::Table, key: &str, ctx: &str) -> Result<Option<Millis>, ConfigError> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => {
            let s = scalar(v).ok_or_else(|| invalid_at(ctx, key, ValueError::NotADuration))?;
            parse_duration(&s, Bare::Seconds)
                .map(Some)
                .map_err(|e| invalid_at(ctx, key, e.into()))
        }
    }
}

fn flag(t: &toml::Table, key: &str, ctx: &str, default: bool) -> Result<bool, ConfigError> {
    match t.get(key) {
        None => Ok(default),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(invalid_at(ctx, key, ValueError::NotABool)),
    }
}

fn check_keys(t: &toml::Table, allowed: &[&str], ctx: &str) -> Result<(), ConfigError> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ConfigError::UnknownKey {
            key: format!("{ctx}.{k}"),
            known: allowed.join(", "),
        }),
        None => Ok(()),
    }
}

/// A non-negative integer that fits a peer index.
fn peer_index(v: &toml::Value) -> Option<u32> {
    v.as_integer().and_then(|i| u32::try_from(i).ok())
}

/// One `[[partition]]` table: `at`, `heal`, `oneway`, and `fraction` or `groups`.
fn partition(v: &toml::Value, ctx: &str) -> Result<PartitionSpec, ConfigError> {
    let t = v
        .as_table()
        .ok_or_else(|| ConfigError::invalid(ctx, ValueError::NotATable))?;
    check_keys(t, &["at", "heal", "fraction", "groups", "oneway"], ctx)?;
    let at = duration(t, "at", ctx)?.ok_or_else(|| invalid_at(ctx, "at", ValueError::Missing))?;
    let heal = duration(t, "heal", ctx)?;
    let oneway = flag(t, "oneway", ctx, false)?;
    let groups = match (t.get("fraction"), t.get("groups")) {
        (Some(_), Some(_)) => return Err(ConfigError::invalid(ctx, ValueError::FractionAndGroups)),
        (Some(f), None) => {
            let s = scalar(f).ok_or_else(|| invalid_at(ctx, "fraction", ValueError::NotANumber))?;
            let x = parse_probability(&s).map_err(|e| invalid_at(ctx, "fraction", e.into()))?;
            Groups::Fraction(x)
        }
        (None, Some(toml::Value::Array(gs))) => {
            let mut out = Vec::new();
            for g in gs {
                let arr = g
                    .as_array()
                    .ok_or_else(|| invalid_at(ctx, "groups", ValueError::NotGroups))?;
                let group = arr
                    .iter()
                    .map(|x| {
                        peer_index(x)
                            .ok_or_else(|| invalid_at(ctx, "groups", ValueError::BadGroupIndex))
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                out.push(group);
            }
            Groups::Explicit(out)
        }
        (None, Some(_)) => return Err(invalid_at(ctx, "groups", ValueError::NotArrays)),
        (None, None) => Groups::Fraction(0.5),
    };
    Ok(PartitionSpec {
        at,
        heal,
        groups,
        oneway,
    })
}

/// One `[[crash]]` table: `peer`, `at`, `restart`, `keep_chain`.
fn crash(v: &toml::Value, ctx: &str) -> Result<CrashSpec, ConfigError> {
    let t = v
        .as_table()
        .ok_or_else(|| ConfigError::invalid(ctx, ValueError::NotATable))?;
    check_keys(t, &["peer", "at", "restart", "keep_chain"], ctx)?;
    let peer = t
        .get("peer")
        .and_then(peer_index)
        .ok_or_else(|| invalid_at(ctx, "peer", ValueError::NotAPeer))?;
    let at = duration(t, "at", ctx)?.ok_or_else(|| invalid_at(ctx, "at", ValueError::Missing))?;
    let restart = duration(t, "restart", ctx)?;
    let keep_chain = flag(t, "keep_chain", ctx, true)?;
    Ok(CrashSpec {
        peer,
        at,
        restart,
        keep_chain,
    })
}
