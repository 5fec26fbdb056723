//! What a call waiting for a slot holds on the heap, counted by a wrapping global allocator
//! (`examples/support/counting_alloc.rs`; its own test binary, so no other test allocates
//! meanwhile).

mod harness;

use harness::client::*;
use harness::*;
use upnode_core::config::WhenFull;
use upnode_core::{CallArgs, LocalFn, Target};

#[path = "../examples/support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Calls made to wait.
const WAITING: u64 = 10_000;

#[test]
fn a_call_waiting_for_a_slot_keeps_its_written_arguments_without_spare_room() {
    let mut config = no_ping();
    config.calls.max_in_flight = 1;
    config.calls.when_full = WhenFull::Wait;
    let mut c = up_at_t0(config);
    let now = c.at(ms(1));
    let call = |c: &mut harness::client::Client, n: u64| {
        let args = CallArgs::from_typed(&(n,)).expect("an argument list");
        c.link
            .call_with_reply(
                C1,
                now,
                Target::Method("time".into()),
                args,
                LocalFn(10 + n),
                None,
            )
            .expect("made")
    };
    // One in flight; the rest wait.
    call(&mut c, 0);
    let before = counting_alloc::live();
    for n in 1..=WAITING {
        call(&mut c, n);
    }
    let per_call = (counting_alloc::live() - before) as u64 / WAITING;
    assert_eq!(c.link.counters().calls_waiting, WAITING as usize);
    // The table's entry (its share of the ordered map's nodes), the method's name and the
    // written argument (up to five digits): 232 bytes. Keeping the room a written argument
    // list starts with, and that of its answer callback, made it 388.
    assert!(per_call <= 250, "{per_call} bytes per waiting call");
}
