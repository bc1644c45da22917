-- Tasker's schema, its enum types and small immutable helpers.
--
-- Everything Tasker owns lives in the `tasker` schema. Objects are always schema-qualified, so the
-- migrations and the functions never depend on the caller's search_path.

CREATE SCHEMA IF NOT EXISTS tasker;
COMMENT ON SCHEMA tasker IS 'Tasker workflow orchestration: templates, tasks, steps, their transitions and the DLQ';

-- The 12 task states of tasker-state's TaskState (labels are the snake_case serde names).
CREATE TYPE tasker.task_state AS ENUM (
    'pending',
    'initializing',
    'enqueuing_steps',
    'steps_in_process',
    'evaluating_results',
    'waiting_for_dependencies',
    'waiting_for_retry',
    'blocked_by_failures',
    'complete',
    'error',
    'cancelled',
    'resolved_manually'
);

-- The 8 step states of tasker-state's StepState.
CREATE TYPE tasker.step_state AS ENUM (
    'pending',
    'enqueued',
    'in_progress',
    'enqueued_for_orchestration',
    'complete',
    'error',
    'cancelled',
    'resolved_manually'
);

-- How a named task derives the identity hash that deduplicates task requests.
CREATE TYPE tasker.identity_strategy AS ENUM ('strict', 'caller_provided', 'always_unique');

-- Why a task was put on the DLQ (an investigation ledger, not a message queue).
CREATE TYPE tasker.dlq_reason AS ENUM (
    'staleness_timeout',
    'max_retries_exceeded',
    'dependency_cycle_detected',
    'worker_unavailable',
    'manual_dlq'
);

CREATE TYPE tasker.dlq_resolution_status AS ENUM (
    'pending',
    'manually_resolved',
    'permanently_failed',
    'cancelled'
);

-- Shapes of values stored in rows that are updated often (tasks, transitions). A domain's
-- check runs only when a value is assigned to the column, while a table CHECK constraint is
-- re-evaluated (and re-read from the catalog) by every UPDATE of the row, whatever it changes:
-- a task's context would be re-checked on each of its transitions.
CREATE DOMAIN tasker.json_object AS jsonb
    CONSTRAINT json_object_type CHECK (jsonb_typeof(VALUE) = 'object');
COMMENT ON DOMAIN tasker.json_object IS 'A JSON object';
CREATE DOMAIN tasker.json_array AS jsonb
    CONSTRAINT json_array_type CHECK (jsonb_typeof(VALUE) = 'array');
COMMENT ON DOMAIN tasker.json_array IS 'A JSON array';
-- The deduplication key of a task request (tasker-models' identity strategies).
CREATE DOMAIN tasker.identity_hash AS text
    CONSTRAINT identity_hash_length CHECK (length(VALUE) BETWEEN 1 AND 128);
COMMENT ON DOMAIN tasker.identity_hash IS 'A task identity hash (1 to 128 characters)';

-- UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. The application
-- generates its ids with `Uuid::now_v7()`; this function serves server-side inserts (DLQ entries,
-- column defaults). PostgreSQL 15 has no native uuidv7(), so it is built from gen_random_uuid():
-- the timestamp overwrites the first 6 bytes and bits 52-53 turn version 4 into version 7. The
-- variant bits of the v4 value are already correct. VOLATILE, because every call must differ.
CREATE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT encode(
        set_bit(
            set_bit(
                overlay(
                    uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6
                ),
                52, 1
            ),
            53, 1
        ),
        'hex'
    )::uuid
$$;
COMMENT ON FUNCTION tasker.uuid_generate_v7() IS 'A fresh UUID version 7 (time-ordered)';

-- Hours since the Unix epoch, independent of the session time zone, so declaring it IMMUTABLE
-- is truthful; that lets tasks.claim_rank be a stored generated column with an index. It uses
-- IMMUTABLE operations only (timestamptz minus a constant, then the epoch of the interval):
-- extract(epoch FROM timestamptz) is STABLE, which would keep the wrapper from being inlined.
CREATE FUNCTION tasker.epoch_hours(ts timestamptz) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT extract(epoch FROM (ts - timestamptz '1970-01-01 00:00:00+00'))::double precision / 3600.0 $$;
COMMENT ON FUNCTION tasker.epoch_hours(timestamptz) IS 'Hours since 1970-01-01 UTC (time-zone independent)';
