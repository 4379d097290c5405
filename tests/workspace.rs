//! Workspace facts no compiler checks: every crate inherits the workspace's `rust-version`,
//! `edition` and `license`, no locked dependency needs a newer Rust than that `rust-version`,
//! and every crate ships the license texts its `license` names.
//!
//! The dependency check reads `cargo metadata` for the host platform (the dependencies a build
//! here compiles), offline when the registry cache has every manifest, as it does after a build.
//! Whether our own code needs a newer Rust is clippy's `incompatible_msrv` lint, which reads
//! the same `rust-version`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const MEMBERS: [&str; 4] = [".", "core", "node", "sim"];
const INHERITED: [&str; 3] = ["rust-version", "edition", "license"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{path:?} is not TOML: {e}"))
}

/// `[workspace.package]` of the root manifest.
fn workspace_package() -> toml::Table {
    manifest(&root())["workspace"]["package"]
        .as_table()
        .expect("[workspace.package]")
        .clone()
}

/// A `rust-version` such as "1.90" or "1.85.0" as (major, minor, patch).
fn rust_version(v: &str) -> (u64, u64, u64) {
    let mut parts = v.split('.').map(|p| {
        p.parse::<u64>()
            .unwrap_or_else(|_| panic!("rust-version {v:?} is not numeric"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// `cargo metadata` of the locked graph on this host, offline first; online only when the
/// registry cache lacks a manifest (a fresh checkout that has not built everything yet).
fn metadata() -> serde_json::Value {
    let run = |offline: bool| {
        let mut cmd = cargo();
        cmd.args(["metadata", "--format-version", "1", "--locked"]);
        cmd.args(["--filter-platform", &host_triple()]);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().expect("cargo runs")
    };
    let mut out = run(true);
    if !out.status.success() {
        out = run(false);
    }
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn every_crate_inherits_rust_version_edition_and_license() {
    let ws = workspace_package();
    for key in INHERITED {
        assert!(
            ws.contains_key(key),
            "[workspace.package] declares no {key}"
        );
    }
    for dir in MEMBERS {
        let m = manifest(&root().join(dir));
        let package = m["package"].as_table().expect("[package]");
        for key in INHERITED {
            let inherits = package
                .get(key)
                .and_then(|v| v.get("workspace"))
                .and_then(toml::Value::as_bool)
                == Some(true);
            assert!(
                inherits,
                "{dir}/Cargo.toml: write `{key}.workspace = true` instead of its own value"
            );
        }
    }
}

#[test]
fn no_locked_dependency_needs_a_newer_rust_than_we_declare() {
    let ws = workspace_package();
    let ours_text = ws["rust-version"]
        .as_str()
        .expect("rust-version is a string");
    let ours = rust_version(ours_text);
    let meta = metadata();
    let ids = |key: &str| -> BTreeSet<String> {
        meta.pointer(key)
            .and_then(serde_json::Value::as_array)
            .unwrap_or_else(|| panic!("cargo metadata has no {key}"))
            .iter()
            .filter_map(|v| v.as_str().or_else(|| v["id"].as_str()))
            .map(str::to_string)
            .collect()
    };
    let members = ids("/workspace_members");
    let in_graph = ids("/resolve/nodes");
    let mut newest = ((0, 0, 0), String::new());
    let mut too_new = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let id = p["id"].as_str().unwrap_or_default();
        if members.contains(id) {
            assert_eq!(
                p["rust_version"].as_str().map(rust_version),
                Some(ours),
                "{id} does not report the workspace's rust-version"
            );
            continue;
        }
        let Some(v) = p["rust_version"].as_str() else {
            continue;
        };
        if !in_graph.contains(id) {
            continue;
        }
        let name = format!(
            "{} {} (rust-version {v})",
            p["name"].as_str().unwrap_or_default(),
            p["version"].as_str().unwrap_or_default()
        );
        let need = rust_version(v);
        if need > ours {
            too_new.push(name.clone());
        }
        if need > newest.0 {
            newest = (need, name);
        }
    }
    assert!(
        too_new.is_empty(),
        "the workspace declares rust-version {ours_text}, but these locked dependencies need a \
         newer Rust; raise [workspace.package] rust-version:\n{}",
        too_new.join("\n")
    );
    assert!(
        !newest.1.is_empty(),
        "no dependency declares a rust-version"
    );
    println!(
        "rust-version {ours_text}; the most demanding dependency: {}",
        newest.1
    );
}

#[test]
fn every_crate_ships_the_license_texts_it_declares() {
    let ws = workspace_package();
    assert_eq!(ws["license"].as_str(), Some("MIT OR Apache-2.0"));
    for dir in MEMBERS {
        for (file, marker) in [
            (
                "LICENSE-MIT",
                "Permission is hereby granted, free of charge",
            ),
            ("LICENSE-APACHE", "Apache License\n"),
        ] {
            let path = root().join(dir).join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{path:?}: {e} (cargo package would ship no text)"));
            assert!(text.contains(marker), "{path:?} is not the {file} text");
        }
    }
}
