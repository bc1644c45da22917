//! Unit tests of the failure-rate window: bucketing, sliding, the rule and saturation.

use std::time::Duration;

use super::*;

const MS: u64 = 1_000_000;

fn window(threshold: f64, minimum_calls: u32) -> FailureWindow {
    FailureWindow::new(&FailureRateRule {
        threshold,
        minimum_calls,
        window: Duration::from_millis(1000),
    })
}

#[test]
fn counts_calls_and_failures_within_the_window() {
    let window = window(0.5, 4);
    window.record(0, true);
    window.record(150 * MS, false);
    window.record(950 * MS, true);
    let totals = window.totals(990 * MS);
    assert_eq!(
        totals,
        WindowTotals {
            calls: 3,
            failures: 2
        }
    );
}

#[test]
fn old_buckets_slide_out() {
    let window = window(0.5, 1);
    window.record(0, true);
    window.record(500 * MS, false);
    // At 1000 ms the bucket of 0..100 ms is out of the window (ten buckets of 100 ms).
    assert_eq!(
        window.totals(999 * MS),
        WindowTotals {
            calls: 2,
            failures: 1
        }
    );
    assert_eq!(
        window.totals(1000 * MS),
        WindowTotals {
            calls: 1,
            failures: 0
        }
    );
    assert_eq!(
        window.totals(1500 * MS),
        WindowTotals {
            calls: 0,
            failures: 0
        }
    );
}

#[test]
fn a_reused_bucket_starts_from_zero() {
    let window = window(0.5, 1);
    window.record(50 * MS, true);
    window.record(1050 * MS, false);
    assert_eq!(
        window.totals(1050 * MS),
        WindowTotals {
            calls: 1,
            failures: 0
        }
    );
}

#[test]
fn the_rule_needs_minimum_calls_and_the_threshold() {
    let cases = [
        // (threshold, minimum calls, calls, failures, trips)
        (0.5, 4, 3, 3, false),
        (0.5, 4, 4, 2, true),
        (0.5, 4, 4, 1, false),
        (1.0, 1, 1, 1, true),
        (1.0, 1, 2, 1, false),
        (0.25, 10, 100, 25, true),
    ];
    for (threshold, minimum_calls, calls, failures, trips) in cases {
        let window = window(threshold, minimum_calls);
        assert_eq!(
            window.trips(WindowTotals { calls, failures }),
            trips,
            "threshold {threshold}, minimum {minimum_calls}, {failures}/{calls}"
        );
    }
}

#[test]
fn clear_forgets_everything() {
    let window = window(0.5, 1);
    for at in 0..10 {
        window.record(at * 100 * MS, true);
    }
    window.clear();
    assert_eq!(
        window.totals(999 * MS),
        WindowTotals {
            calls: 0,
            failures: 0
        }
    );
}

#[test]
fn counts_saturate_instead_of_overflowing_into_the_tag() {
    let window = window(0.5, 1);
    let slot = &window.buckets[0];
    slot.store(pack(0, COUNT_MAX, COUNT_MAX), Ordering::Relaxed);
    window.record(0, true);
    assert_eq!(
        unpack(slot.load(Ordering::Relaxed)),
        (0, COUNT_MAX, COUNT_MAX)
    );
}
