-- tasker.step_backoff_ms computes exactly what tasker-state's `BackoffPolicy::backoff_for`
-- computes without jitter: min(base × multiplier^attempts, max) milliseconds, rounded to the
-- nearest millisecond with halves rounded up. A property test holds the two equal on the same
-- inputs (tasker-db `tests/it/retry_rules.rs`); it found the first version wrong in two ways:
-- * the exponent was capped at 64 attempts (so that power() could not overflow), so with a
--   multiplier close to 1 a step past its 64th attempt waited less than the formula says
--   (base 6211 ms, ×1.0001, 65 attempts: 6251 ms instead of 6252 ms);
-- * round(double precision) rounds halves to even: 250 ms × 1.5² = 562.5 ms became 562 ms,
--   where tasker-state (Rust's f64::round) gives 563 ms.
--
-- Overflow is avoided instead by not computing a delay beyond every maximum. With a base of at
-- least 1 ms, once attempts × ln(multiplier) exceeds 650 the delay exceeds e^650 ms, far above
-- any bigint maximum, so it is the maximum; below that, e^650 times a bigint base still fits a
-- double. A base of 0 stays 0 however many attempts were made.
--
-- Halves are rounded up as floor(x + 0.5), which names x once, so the inlined expression
-- evaluates power() once per use (an exact trunc-based rounding needs x four times and made a
-- million evaluations 60% slower). It is exact for every x from 0.5 to 2^52: the addition is
-- exact there, or rounds only where it cannot change the floor. The delay is at least 1 ms
-- (a base of at least 1 ms, a multiplier of at least 1, as a BackoffPolicy has), and a delay
-- of 2^52 ms (142,000 years) is above any configured maximum.
CREATE OR REPLACE FUNCTION tasker.step_backoff_ms(
    p_backoff_request_ms bigint,
    p_attempts integer,
    p_backoff_base_ms bigint,
    p_backoff_multiplier double precision,
    p_backoff_max_ms bigint
)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(
        p_backoff_request_ms,
        CASE
            WHEN p_backoff_base_ms = 0 THEN least(0, p_backoff_max_ms)
            WHEN p_attempts * ln(greatest(p_backoff_multiplier, 1.0::double precision)) > 650
                THEN p_backoff_max_ms
            ELSE least(
                floor(p_backoff_base_ms * power(p_backoff_multiplier, p_attempts) + 0.5),
                p_backoff_max_ms
            )::bigint
        END
    )
$$;
COMMENT ON FUNCTION tasker.step_backoff_ms(bigint, integer, bigint, double precision, bigint) IS
    'The backoff in milliseconds before a step''s next attempt: min(base * multiplier ^ attempts, max), halves rounded up (as tasker-state''s BackoffPolicy::backoff_for)';
