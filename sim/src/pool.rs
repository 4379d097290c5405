//! A fork-join pool for the engine's rounds: the caller and `threads - 1` persistent workers
//! each take items of a slice, and the call returns when all are done.
//!
//! Why not rayon: a run has a barrier every few milliseconds of virtual time, hundreds of
//! thousands per run, each with tens of microseconds of work. Rayon's idle workers go to
//! sleep within microseconds, so every round paid a futex wake-up and a context switch,
//! which took a quarter of the workers' time. Here idle workers spin (with `spin_loop`
//! hints) for a while before they park, so a round that follows a short barrier starts at
//! once.
//!
//! Safety: [`SpinPool::each_mut`] hands out `&mut items[k]` for distinct `k` only, and does
//! not return until every worker has finished with the job (and the job's closure), so the
//! borrows it erased to reach the workers end before the caller's do. A worker's panic is
//! caught and resumed on the caller's thread.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// The job workers run: item `k` of the current call.
type Job<'a> = dyn Fn(usize) + Sync + 'a;

struct Inner {
    /// Bumped for every job (and at shutdown).
    epoch: AtomicU64,
    /// Items handed out so far in the current job.
    next: AtomicUsize,
    /// Items of the current job.
    len: AtomicUsize,
    /// Workers that finished the current job.
    done: AtomicUsize,
    /// The current job, set before `epoch` is bumped and read after it was seen.
    job: UnsafeCell<Option<*const Job<'static>>>,
    /// Workers parked (or about to park) waiting for a job.
    sleeping: Vec<AtomicBool>,
    threads: Mutex<Vec<Thread>>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

// SAFETY: `job` is written only by the caller while no job runs (all workers have reported
// done, or none started), and read by workers only between seeing a new epoch (Acquire,
// after the caller's Release store) and reporting done; the pointee is `Sync`.
unsafe impl Sync for Inner {}
// SAFETY: as above; the raw pointer is only dereferenced under that protocol.
unsafe impl Send for Inner {}

/// Persistent workers that spin between jobs.
pub(crate) struct SpinPool {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
}

impl SpinPool {
    /// A pool for `threads` threads in all: the caller and `threads - 1` workers.
    pub(crate) fn new(threads: usize) -> std::io::Result<SpinPool> {
        let n = threads.saturating_sub(1);
        let inner = Arc::new(Inner {
            epoch: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            sleeping: (0..n).map(|_| AtomicBool::new(false)).collect(),
            threads: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let mut pool = SpinPool {
            inner,
            workers: Vec::with_capacity(n),
        };
        for w in 0..n {
            let inner = Arc::clone(&pool.inner);
            let h = thread::Builder::new()
                .name(format!("rantai-sim-{}", w + 1))
                .spawn(move || worker(&inner, w));
            match h {
                Ok(h) => {
                    if let Ok(mut t) = pool.inner.threads.lock() {
                        t.push(h.thread().clone());
                    }
                    pool.workers.push(h);
                }
                // Dropping the pool stops and joins the workers already started.
                Err(e) => return Err(e),
            }
        }
        Ok(pool)
    }

    /// Threads in all, the caller included.
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(k, &mut items[k])` for every `k`, spread over the caller and the workers;
    /// returns when all calls have returned. A panic in any call is resumed here. Takes the
    /// pool mutably: one job at a time (a second one would reuse the job's slots).
    pub(crate) fn each_mut<T: Send>(&mut self, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
        if self.workers.is_empty() || items.len() <= 1 {
            for (k, it) in items.iter_mut().enumerate() {
                f(k, it);
            }
            return;
        }
        let base = SendPtr(items.as_mut_ptr());
        let len = items.len();
        let job = move |k: usize| {
            let base = &base;
            debug_assert!(k < len);
            // SAFETY: `k < len` and each `k` is handed out once per job (`next` counts them),
            // so this is the only reference to `items[k]` while the job runs; `items` is
            // borrowed mutably by this call, which outlives the job.
            let it = unsafe { &mut *base.0.add(k) };
            f(k, it);
        };
        let job_ref: &Job<'_> = &job;
        // SAFETY: the lifetime is erased only to reach the workers; this call waits below
        // until every worker reported done, after which none touches the pointer again.
        let job_ptr: *const Job<'static> =
            unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(job_ref) };
        let inner = &*self.inner;
        // SAFETY: no job runs now (the last call waited for all workers), so nobody reads it.
        unsafe { *inner.job.get() = Some(job_ptr) };
        inner.len.store(len, Ordering::Relaxed);
        inner.next.store(0, Ordering::Relaxed);
        inner.done.store(0, Ordering::Relaxed);
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        wake_sleepers(inner);
        let mine = catch_unwind(AssertUnwindSafe(|| take_items(inner, &job)));
        let workers = self.workers.len();
        let mut spins = 0u32;
        while inner.done.load(Ordering::Acquire) < workers {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: every worker is done with this job.
        unsafe { *inner.job.get() = None };
        // Take a worker's panic whatever happens, so that it cannot resurface in a later job.
        let theirs = inner.panic.lock().ok().and_then(|mut p| p.take());
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if let Some(p) = theirs {
            resume_unwind(p);
        }
    }
}

impl Drop for SpinPool {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(t) = self.inner.threads.lock() {
            for th in t.iter() {
                th.unpark();
            }
        }
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

/// A raw pointer the job closure may carry to other threads (see the safety notes).
struct SendPtr<T>(*mut T);
// SAFETY: the pool hands each pointee to one thread at a time; `T: Send` is required by
// `each_mut`.
unsafe impl<T: Send> Sync for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for SendPtr<T> {}

/// Runs items of the current job until none is left.
fn take_items(inner: &Inner, job: &Job<'_>) {
    let len = inner.len.load(Ordering::Relaxed);
    loop {
        let k = inner.next.fetch_add(1, Ordering::Relaxed);
        if k >= len {
            break;
        }
        job(k);
    }
}

fn wake_sleepers(inner: &Inner) {
    if inner.sleeping.iter().any(|s| s.load(Ordering::SeqCst)) {
        if let Ok(t) = inner.threads.lock() {
            for (w, th) in t.iter().enumerate() {
                if inner.sleeping[w].load(Ordering::SeqCst) {
                    th.unpark();
                }
            }
        }
    }
}

fn worker(inner: &Inner, w: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for a new epoch: spin a while, then park.
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = inner.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) {
                std::hint::spin_loop();
            } else if started.elapsed() > SPIN {
                inner.sleeping[w].store(true, Ordering::SeqCst);
                if inner.epoch.load(Ordering::SeqCst) == seen {
                    thread::park_timeout(Duration::from_millis(50));
                }
                inner.sleeping[w].store(false, Ordering::SeqCst);
            } else {
                // With more threads than cores, let the thread that has work run.
                thread::yield_now();
            }
        }
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        // SAFETY: the epoch changed, so the caller stored this job before (Release/Acquire
        // on `epoch`) and keeps it alive until this worker reports done.
        let job = unsafe { *inner.job.get() };
        if let Some(job) = job {
            // SAFETY: see above; the pointee lives until `done` reaches every worker.
            let job = unsafe { &*job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| take_items(inner, job))) {
                if let Ok(mut slot) = inner.panic.lock() {
                    slot.get_or_insert(p);
                }
            }
        }
        inner.done.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_for_many_jobs() {
        let mut pool = SpinPool::new(3).expect("threads");
        let mut v = vec![0u64; 7];
        for round in 0..2000u64 {
            pool.each_mut(&mut v, |k, x| *x += k as u64 + round);
        }
        for (k, x) in v.iter().enumerate() {
            assert_eq!(*x, 2000 * k as u64 + (0..2000).sum::<u64>());
        }
    }

    #[test]
    fn a_panic_in_a_job_reaches_the_caller_and_the_pool_goes_on() {
        let mut pool = SpinPool::new(2).expect("threads");
        let mut v = vec![0u32; 4];
        for _ in 0..20 {
            // Every item panics: the caller's and the worker's panics both happen.
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.each_mut(&mut v, |_, _| panic!("every item"));
            }));
            assert!(r.is_err());
            // Neither resurfaces in the next job.
            pool.each_mut(&mut v, |_, x| *x += 1);
        }
        assert_eq!(v, [20, 20, 20, 20]);
    }
}
