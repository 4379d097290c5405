//! Allocator set-up shared by the `rantai-sim` binary, the scale tests and the benchmark,
//! all of which use mimalloc as their global allocator.

use std::sync::Once;

/// mimalloc's `mi_option_purge_delay`, which libmimalloc-sys does not name. Retired options
/// keep their slots in mimalloc's option enum, so the index is the same in v2 and v3; a test
/// checks that it is the option mimalloc reads from `MIMALLOC_PURGE_DELAY`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of handing it back to the OS.
///
/// mimalloc returns ("purges") pages that stayed free for a while. A simulation frees and
/// reuses memory all through a run, and every purged page is zeroed again by the kernel when it
/// is reused: 12% of a 10,000-peer run's time, measured with `perf`. A run is a batch job whose
/// peak memory is what counts, and the peak is unchanged (367.1 vs 367.2 MB on 10,000 x 60).
/// This only changes mimalloc's default: a purge delay set in the environment still wins.
pub fn keep_freed_memory() {
    static ONCE: Once = Once::new();
    // SAFETY: sets an integer option's default, once per process; mimalloc reads it at each
    // purge decision. (mimalloc's option writes are not atomic, hence the `Once`.)
    ONCE.call_once(|| unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CHILD: &str = "RANTAI_SIM_ALLOC_TEST_CHILD";

    fn purge_delay() -> std::os::raw::c_long {
        // SAFETY: reads an integer option.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    /// Runs this test again in a child process with `MIMALLOC_PURGE_DELAY=12345`: the option at
    /// our index must hold that value (so it is the purge delay, matched by name), and
    /// [`keep_freed_memory`] must leave it alone. Without the variable, it turns purging off.
    #[test]
    fn index_is_the_purge_delay_and_the_environment_wins() {
        if std::env::var_os(CHILD).is_some() {
            assert_eq!(purge_delay(), 12345);
            keep_freed_memory();
            assert_eq!(purge_delay(), 12345, "the environment's setting wins");
            return;
        }
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new(exe)
            .args([
                "alloc::tests::index_is_the_purge_delay_and_the_environment_wins",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "12345")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child run failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env_set = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if !env_set {
            keep_freed_memory();
            assert_eq!(purge_delay(), -1);
        }
    }
}
