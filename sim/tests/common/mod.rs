//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rantai_sim::{Millis, Sim};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Whether every online peer has the same best tip as peer `reference`.
pub fn all_on_tip_of(sim: &Sim, reference: u32) -> bool {
    let Some(tip) = sim.chain(reference).map(|c| c.tip().hash()) else {
        return false;
    };
    (0..sim.peer_count()).all(|i| sim.chain(i).is_none_or(|c| c.tip().hash() == tip))
}

/// Runs until all online peers agree, for at most `limit` of virtual time.
pub fn settle(sim: &mut Sim, limit: Millis) -> bool {
    let deadline = sim.now().add(limit);
    sim.run_until(deadline, |s| s.converged() && s.events() > 0)
}

/// A directory of its own under the temp dir for one test, removed when the test ends (kept,
/// and named on stderr, if it fails).
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("rantai-sim-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `text` to the file `name` in this directory.
    pub fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The path `name` in this directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A trace writer the test can read back.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// What was written, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).expect("UTF-8 trace")
    }

    /// What was written.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("trace buffer").clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("trace buffer").extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
