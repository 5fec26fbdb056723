//! Locking the crate's mutexes.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, carrying on if a thread panicked while holding it (the state machines
/// stay consistent between calls, and a panicking user callback never runs under a lock).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
