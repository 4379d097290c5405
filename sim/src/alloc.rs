//! Allocator set-up shared by the `rantai-sim` binary, the scale tests and the benchmark,
//! all of which use mimalloc as their global allocator.

/// mimalloc's `mi_option_purge_delay`. Retired options keep their slots in mimalloc's option
/// enum, so this index has been the same since v2, but libmimalloc-sys names it only for v2.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of handing it back to the OS.
///
/// mimalloc returns ("purges") pages that stayed free for a while. A simulation frees and
/// reuses memory all through a run, and every purged page is zeroed again by the kernel when it
/// is reused: 12% of a 10,000-peer run's time, measured with `perf`. A run is a batch job whose
/// peak memory is what counts, and the peak is unchanged (367.1 vs 367.2 MB on 10,000 x 60).
/// A `MIMALLOC_PURGE_DELAY` set in the environment is left in force.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option, which mimalloc reads at each purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index really is the purge delay: mimalloc's v3 default for it is 1,000 ms, and
    /// neither neighbouring option has that default.
    #[test]
    fn purge_delay_index_matches_mimalloc() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads integer options.
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 1000);
        assert_ne!(get(MI_OPTION_PURGE_DELAY - 1), 1000);
        assert_ne!(get(MI_OPTION_PURGE_DELAY + 1), 1000);
    }
}
