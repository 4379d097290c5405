//! Cache hints for drivers that know what comes next (the simulator knows its next events).
//! They never change a result.

/// Asks the CPU to start loading every cache line of `r`.
#[inline]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = (r as *const T).cast::<i8>();
        for off in (0..std::mem::size_of::<T>()).step_by(64) {
            // SAFETY: a prefetch never faults and has no architectural effect; SSE, which
            // provides it, is part of the x86_64 baseline. The address lies inside `*r`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
