//! The conformance suite: every client/server scenario, written once (generic over
//! [`rt::Rt`]) and run against each runtime adapter — tokio, smol and async-std.
//!
//! - `scenarios`: the eight scenarios of upnode 0.6's own test suite;
//! - `features`: what we add (failures as values, limits, shutdown, streams of callbacks,
//!   Unix sockets, TLS, bad input, …);
//! - `cross`: one runtime's client against another's server, over TCP and TLS;
//! - `faults`: network faults injected by a loopback proxy (black holes, resets, a FIN
//!   mid-line, byte-by-byte delivery, latency, refused connections, server restarts);
//! - `node`: against real Node.js upnode 0.6 / dnode 1.2 peers, both ways, with kill and
//!   restart;
//! - `smoke`: one call over loopback;
//! - `transport`: bad input as error values, a custom stream, `close` in every state, the
//!   handshake timeout.
//!
//! Everything binds to 127.0.0.1 on ports the system picks. Each runtime is one module
//! below (`impl_rt!` and `conformance!`): a fourth runtime is one more.

mod api;
mod common;
mod cross;
mod faults;
mod features;
mod hardening;
mod node;
#[macro_use]
mod rt;
mod scenarios;
mod smoke;
mod transport;

/// One `#[test]` per scenario, run on the runtime `$rt`.
macro_rules! conformance {
    ($rt:ty) => {
        conformance!(@tests $rt;
            api::typed_calls_tell_results_remote_errors_timeouts_and_link_failures_apart,
            api::the_server_makes_typed_calls_to_functions_the_client_exports,
            api::clients_draw_their_own_reconnect_jitter_unless_given_a_seed,
            api::graceful_shutdown_lets_a_call_in_flight_answer_then_closes,
            api::graceful_shutdown_closes_at_its_deadline_with_a_handler_still_running,
            api::a_connect_step_whose_closure_panics_fails_that_attempt_and_the_next_comes_up,
            api::a_connect_step_that_gives_up_closes_the_client_with_its_cause,
            api::up_timeout_reports_the_last_failure,
            api::a_failover_client_moves_through_three_killed_servers_losing_no_transaction,
            api::a_subscriber_that_falls_behind_is_told_how_many_events_it_missed,
            scenarios::auth_reauthenticates_across_a_server_restart,
            scenarios::buffered_transactions_complete_across_short_lived_connections,
            scenarios::cons_each_side_sees_the_others_data,
            scenarios::immediate_transaction_on_a_running_server,
            scenarios::simple_server_on_off_on,
            scenarios::no_leak_across_up_down_cycles_and_close,
            scenarios::transaction_queued_in_the_connect_step_gets_the_same_remote,
            scenarios::timeout_without_then_with_a_server,
            features::in_flight_call_fails_with_link_down_when_the_server_dies,
            features::call_timeout_fails_a_call_nobody_answers,
            features::failing_and_panicking_handlers_leave_the_connection_and_server_alive,
            features::connection_limit_refuses_the_second_client_until_a_slot_frees,
            features::graceful_shutdown_ends_every_connection_and_refuses_new_ones,
            features::a_callback_called_many_times_is_a_stream,
            features::a_handler_that_takes_its_params_still_answers_and_sees_only_the_callback_left,
            features::functions_inside_objects_travel_both_ways,
            features::the_server_calls_a_method_the_client_exports,
            features::a_late_reply_with_functions_after_the_caller_gave_up,
            features::a_failing_connect_step_reconnects_and_never_comes_up,
            features::unix_socket_client_and_server,
            features::tls_with_a_generated_certificate,
            features::tls_refuses_a_server_it_cannot_verify,
            features::a_handler_that_drops_the_answer_callback_fails_the_call_as_dropped,
            features::a_stopped_listener_frees_its_port_at_once_and_shutdown_stops_accepting,
            features::a_tcp_reset_before_methods_drops_that_connection_and_the_server_keeps_serving,
            features::null_number_array_and_string_lines_do_not_take_a_server_connection_down,
            features::handlers_of_one_connection_start_in_arrival_order,
            features::a_thousand_transactions_queued_while_down_run_and_reach_the_server_in_order,
            features::a_culled_callback_is_dropped_outside_the_lock_so_its_captures_may_use_the_client,
            features::past_max_in_flight_calls_wait_for_a_slot_or_fail_at_once_as_configured,
            features::a_timed_out_call_leaves_no_callback_behind_and_a_late_answer_is_reported,
            faults::black_hole_after_up_is_detected_within_the_heartbeat_and_fails_calls_in_flight,
            faults::a_healed_black_hole_recovers_at_the_heartbeats_pace_not_the_handshake_default,
            faults::a_reset_before_methods_reconnects_and_runs_the_queued_transactions_once,
            faults::a_fin_in_the_middle_of_a_line_reconnects_and_runs_the_queued_transactions_once,
            faults::a_reset_after_methods_reconnects_and_runs_the_queued_transactions_once,
            faults::byte_by_byte_delivery_both_ways_keeps_calls_and_answers_correct_and_in_order,
            faults::a_fixed_latency_each_way_shows_in_every_ping_and_answer_and_nothing_fails,
            faults::refused_connections_keep_the_client_retrying_and_queued_transactions_run_once_accepted,
            faults::fifty_server_restarts_under_a_stream_of_transactions_lose_and_duplicate_nothing,
            hardening::a_client_that_stops_reading_is_held_to_the_output_cap_then_cut_off,
            hardening::shutdown_returns_within_the_flush_bound_with_a_hundred_stalled_peers,
            hardening::past_the_memory_budget_the_connections_holding_the_most_are_ended,
            hardening::at_least_once_transactions_run_again_after_a_drop_and_at_most_once_ones_do_not,
            node::node_client_calls_our_server_across_its_restart,
            node::node_auth_client_logs_in_again_after_our_server_restarts,
            node::our_client_survives_a_node_server_kill_and_restart,
            node::our_auth_client_logs_in_again_after_a_node_server_restart,
            node::our_typed_client_tells_a_node_servers_errors_from_its_results,
            node::a_node_client_gets_error_first_answers_from_our_typed_server,
            smoke::client_calls_time_on_server_over_loopback,
            transport::bad_input_to_connect_and_listen_is_an_error_value,
            transport::a_custom_stream_carries_the_link,
            transport::close_returns_in_every_state_of_the_link,
            transport::the_handshake_timeout_drops_a_silent_server_and_reconnects,
            transport::a_silent_tls_client_is_dropped_after_the_handshake_timeout,
        );
    };
    (@tests $rt:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                <$rt as crate::rt::Rt>::run(crate::$module::$name::<$rt>());
            }
        )*
    };
}

mod tokio {
    // tokio: a multi-threaded runtime whose workers drive the client and server tasks while
    // the test's own future runs on the test thread (so it may block on a Node peer's output).
    impl_rt!(
        Tokio,
        upnode_tokio,
        run: |test| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(test)
        },
        spawn: |task| drop(tokio::spawn(task)),
        sleep: tokio::time::sleep,
        tcp: tokio::net::TcpStream::connect
    );

    conformance!(Tokio);
}

mod smol {
    // smol: tasks run on smol's global executor, the test on its own thread.
    impl_rt!(
        Smol,
        upnode_smol,
        run: smol::block_on,
        spawn: |task| smol::spawn(task).detach(),
        sleep: |d| async move {
            smol::Timer::after(d).await;
        },
        tcp: smol::net::TcpStream::connect
    );

    conformance!(Smol);
}

mod async_std {
    // async-std (discontinued upstream, still supported): tasks on its global executor.
    impl_rt!(
        AsyncStd,
        upnode_async_std,
        run: async_std::task::block_on,
        spawn: |task| drop(async_std::task::spawn(task)),
        sleep: async_std::task::sleep,
        tcp: async_std::net::TcpStream::connect
    );

    conformance!(AsyncStd);
}
