//! Pure building blocks of the reconnecting link: reconnect delay policies, the
//! transactional queue, and the seeded random number generator behind jitter.
//!
//! None of these read a clock or draw randomness of their own: every `Instant` is passed in
//! by the caller, and every random choice comes from a seed the caller gives.

pub mod backoff;
pub mod queue;
pub mod rng;
