-- Benchmark data: the predecessor's data shapes (../shared/reference/sql-benchmarks.md §3) on
-- Tasker's schema. Set-based and seeded, so the same size always produces the same mix.
--
-- Parameter: the setting `bench.n_tasks` (e.g. SELECT set_config('bench.n_tasks', '5000', false)).
-- Run against a freshly migrated database. Afterwards run VACUUM ANALYZE (outside a transaction).
--
-- Shapes: two namespaces and templates, `mathematical_sequence` (linear_step_1..4) and
-- `diamond_pattern` (diamond_start -> branch_b, branch_c -> diamond_end), tasks split 50/50.
-- Task state mix: 40% complete, 15% pending, 15% steps_in_process, 15% waiting_for_dependencies,
-- 10% waiting_for_retry, 2.5% blocked_by_failures, 2.5% error. Of the in-flight tasks 20% are
-- stale (2-6 h in their state), the rest fresh (1-20 min; 1-10 min for waiting_for_retry).
-- Histories follow the state machines: every task and step starts with `pending`, sort keys
-- count up, and each task's and step's most_recent_sort_key names its last row. UUIDs are v7
-- stamped with the simulated time.

SELECT setseed(0.42);

-- A UUID v7 for a given time (tasker.uuid_generate_v7 uses the clock).
CREATE FUNCTION pg_temp.uuid_at(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

INSERT INTO tasker.task_namespaces (name) VALUES ('rust_e2e_linear'), ('rust_e2e_diamond');
INSERT INTO tasker.named_tasks (task_namespace_uuid, name, version, configuration)
SELECT task_namespace_uuid,
       CASE name WHEN 'rust_e2e_linear' THEN 'mathematical_sequence' ELSE 'diamond_pattern' END,
       '1.0.0', '{}'
FROM tasker.task_namespaces;

-- kind 0 = linear, 1 = diamond; idx is the step's position; level its DAG level.
CREATE TEMP TABLE layout AS
SELECT CASE nt.name WHEN 'mathematical_sequence' THEN 0 ELSE 1 END AS kind,
       nt.named_task_uuid, s.idx - 1 AS idx, s.name,
       CASE WHEN nt.name = 'mathematical_sequence' THEN s.idx - 1
            ELSE (ARRAY[0, 1, 1, 2])[s.idx] END AS level
FROM tasker.named_tasks nt
CROSS JOIN LATERAL unnest(
    CASE nt.name WHEN 'mathematical_sequence'
        THEN ARRAY['linear_step_1', 'linear_step_2', 'linear_step_3', 'linear_step_4']
        ELSE ARRAY['diamond_start', 'diamond_branch_b', 'diamond_branch_c', 'diamond_end'] END
) WITH ORDINALITY AS s (name, idx);

INSERT INTO tasker.named_steps (named_task_uuid, name)
SELECT named_task_uuid, name FROM layout;
ALTER TABLE layout ADD COLUMN named_step_uuid uuid;
UPDATE layout l SET named_step_uuid = ns.named_step_uuid
FROM tasker.named_steps ns WHERE ns.named_task_uuid = l.named_task_uuid AND ns.name = l.name;

-- One row per task: its category, times and the level its work reached.
CREATE TEMP TABLE g AS
WITH raw AS (
    SELECT i, i % 2 AS kind, random() AS r, random() AS r2, random() AS r3, random() AS r4,
           random() AS r5
    FROM generate_series(1, current_setting('bench.n_tasks')::integer) AS i
),
categorized AS (
    SELECT raw.*,
           CASE WHEN r < 0.40 THEN 'complete'
                WHEN r < 0.55 THEN 'pending'
                WHEN r < 0.70 THEN 'steps_in_process'
                WHEN r < 0.85 THEN 'waiting_for_dependencies'
                WHEN r < 0.95 THEN 'waiting_for_retry'
                WHEN r < 0.975 THEN 'blocked_by_failures'
                ELSE 'error' END AS category,
           CASE kind WHEN 0 THEN 4 ELSE 3 END AS nlevels
    FROM raw
),
timed AS (
    SELECT c.*,
           CASE
               WHEN category = 'complete' THEN now() - (0.5 + r2 * 47) * interval '1 hour'
               WHEN category = 'pending' THEN now() - r2 * interval '10 minutes'
               WHEN category IN ('blocked_by_failures', 'error') THEN now() - (1 + r2 * 23) * interval '1 hour'
               WHEN r3 < 0.2 THEN now() - (2 + r2 * 4) * interval '1 hour'
               WHEN category = 'waiting_for_retry' THEN now() - (1 + r2 * 9) * interval '1 minute'
               ELSE now() - (1 + r2 * 19) * interval '1 minute'
           END AS anchor
    FROM categorized c
)
SELECT t.i, t.kind, t.category, t.nlevels, t.r5,
       CASE category
           WHEN 'steps_in_process' THEN floor(r4 * nlevels)::integer
           WHEN 'waiting_for_dependencies' THEN 1 + floor(r4 * (nlevels - 1))::integer
           WHEN 'complete' THEN nlevels
           WHEN 'pending' THEN 0
           ELSE floor(r4 * nlevels)::integer
       END AS k,
       -- complete tasks: anchor is creation; others: anchor is when they entered their state.
       CASE WHEN category IN ('complete', 'pending') THEN anchor
            ELSE anchor - (1 + r5 * 29) * interval '1 minute' END AS created_at,
       CASE WHEN category = 'complete' THEN anchor + (1 + r5 * 9) * interval '1 minute'
            ELSE anchor END AS state_at
FROM timed t;
ALTER TABLE g ADD COLUMN task_uuid uuid;
UPDATE g SET task_uuid = pg_temp.uuid_at(created_at);

-- Steps: state per level, attempts and timing.
CREATE TEMP TABLE gs AS
SELECT g.task_uuid, g.i, g.kind, g.category, g.k, g.created_at, g.state_at, l.idx, l.level,
       l.named_step_uuid, random() AS sr, random() AS sr2,
       CASE
           WHEN g.category = 'complete' THEN 'complete'
           WHEN g.category = 'pending' THEN 'pending'
           WHEN g.category = 'steps_in_process' THEN
               CASE WHEN l.level < g.k THEN 'complete'
                    WHEN l.level = g.k THEN CASE WHEN random() < 0.7 THEN 'in_progress' ELSE 'enqueued' END
                    ELSE 'pending' END
           WHEN g.category = 'waiting_for_dependencies' THEN
               CASE WHEN l.level < g.k THEN 'complete' ELSE 'pending' END
           ELSE
               -- one failed step at level k; its diamond sibling (branch_c) is complete
               CASE WHEN l.level < g.k THEN 'complete'
                    WHEN l.level = g.k AND NOT (g.kind = 1 AND l.idx = 2) THEN 'error'
                    WHEN l.level = g.k THEN 'complete'
                    ELSE 'pending' END
       END::tasker.step_state AS state
FROM g JOIN layout l ON l.kind = g.kind;
ALTER TABLE gs ADD COLUMN attempts integer, ADD COLUMN step_uuid uuid, ADD COLUMN at timestamptz;
UPDATE gs SET
    attempts = CASE
        WHEN state = 'complete' THEN CASE WHEN sr < 0.05 THEN 2 ELSE 1 END
        WHEN state = 'in_progress' THEN 1
        WHEN state = 'error' AND category = 'waiting_for_retry' THEN CASE WHEN sr < 0.7 THEN 1 ELSE 2 END
        WHEN state = 'error' THEN 3
        ELSE 0 END,
    step_uuid = pg_temp.uuid_at(created_at + idx * interval '1 millisecond'),
    -- when the step reached its state: levels spread between creation and the task's state time
    at = CASE WHEN state = 'pending' THEN created_at
              ELSE created_at + (state_at - created_at) * (level + 1)::double precision / 5.0 END;

-- Task histories: pending, initializing, one enqueuing/in-process/evaluating cycle per level of
-- work done, then the way into the final state.
CREATE TEMP TABLE task_paths AS
SELECT g.task_uuid, g.created_at, g.state_at,
       CASE g.category
           WHEN 'pending' THEN ARRAY['pending']
           ELSE ARRAY['pending', 'initializing']
                || coalesce((SELECT array_agg(x ORDER BY n, o)
                             FROM generate_series(1, g.k) AS n,
                                  unnest(ARRAY['enqueuing_steps', 'steps_in_process', 'evaluating_results'])
                                      WITH ORDINALITY AS c (x, o)), '{}')
                || CASE g.category
                       WHEN 'complete' THEN ARRAY['complete']
                       WHEN 'steps_in_process' THEN ARRAY['enqueuing_steps', 'steps_in_process']
                       WHEN 'waiting_for_dependencies' THEN ARRAY['waiting_for_dependencies']
                       WHEN 'waiting_for_retry' THEN ARRAY['enqueuing_steps', 'steps_in_process', 'evaluating_results', 'waiting_for_retry']
                       WHEN 'blocked_by_failures' THEN ARRAY['enqueuing_steps', 'steps_in_process', 'evaluating_results', 'blocked_by_failures']
                       ELSE ARRAY['enqueuing_steps', 'steps_in_process', 'evaluating_results', 'blocked_by_failures', 'error']
                   END
       END AS path
FROM g;

-- Step histories: one pending -> enqueued -> in_progress -> enqueued_for_orchestration ->
-- (complete | error) run per attempt, failed attempts going back through error -> pending.
CREATE TEMP TABLE step_paths AS
SELECT gs.step_uuid, gs.task_uuid, gs.created_at, gs.at,
       CASE gs.state
           WHEN 'pending' THEN ARRAY['pending']
           WHEN 'enqueued' THEN ARRAY['pending', 'enqueued']
           WHEN 'in_progress' THEN ARRAY['pending', 'enqueued', 'in_progress']
           ELSE ARRAY['pending']
                || coalesce((SELECT array_agg(x ORDER BY n, o)
                             FROM generate_series(1, gs.attempts - 1) AS n,
                                  unnest(ARRAY['enqueued', 'in_progress', 'enqueued_for_orchestration', 'error', 'pending'])
                                      WITH ORDINALITY AS c (x, o)), '{}')
                || ARRAY['enqueued', 'in_progress', 'enqueued_for_orchestration', gs.state::text]
       END AS path
FROM gs;

INSERT INTO tasker.tasks (
    task_uuid, named_task_uuid, state, state_entered_at, next_retry_at, completed_at,
    requested_at, initiator, source_system, reason, tags, context, identity_hash, priority,
    correlation_id, created_at, updated_at, most_recent_sort_key)
SELECT g.task_uuid, (SELECT DISTINCT l.named_task_uuid FROM layout l WHERE l.kind = g.kind),
       g.category::tasker.task_state, g.state_at,
       CASE WHEN g.category = 'waiting_for_retry' THEN (
           SELECT gs.at + CASE WHEN gs.sr2 < 0.7 THEN interval '1 second' ELSE interval '1 day' END
           FROM gs WHERE gs.task_uuid = g.task_uuid AND gs.state = 'error' LIMIT 1) END,
       CASE WHEN g.category = 'complete' THEN g.state_at END,
       g.created_at, 'bench', 'bench', 'benchmark data', '["bench"]',
       jsonb_build_object('n', g.i, 'kind', g.kind), 'bench-' || g.i, (g.i % 5) - 2,
       gen_random_uuid(), g.created_at, g.state_at, cardinality(p.path)
FROM g JOIN task_paths p ON p.task_uuid = g.task_uuid;

INSERT INTO tasker.workflow_steps (
    workflow_step_uuid, task_uuid, named_step_uuid, state, state_entered_at, processed_at,
    completed_at, retryable, max_attempts, attempts, last_attempted_at, backoff_request_ms,
    inputs, results, created_at, updated_at, most_recent_sort_key)
SELECT gs.step_uuid, gs.task_uuid, gs.named_step_uuid, gs.state, gs.at,
       CASE WHEN gs.state = 'complete' THEN gs.at END,
       CASE WHEN gs.state = 'complete' THEN gs.at END,
       true, 3, gs.attempts,
       CASE WHEN gs.attempts > 0 THEN gs.at END,
       CASE WHEN gs.state = 'error' AND gs.category = 'waiting_for_retry'
            THEN CASE WHEN gs.sr2 < 0.7 THEN 1000 ELSE 86400000 END END,
       jsonb_build_object('step', gs.idx),
       CASE WHEN gs.state = 'complete'
            THEN jsonb_build_object('success', true, 'result', jsonb_build_object('value', gs.i * 10 + gs.idx),
                                    'metadata', jsonb_build_object('execution_time_ms', 5 + gs.idx))
            WHEN gs.state = 'error'
            THEN jsonb_build_object('success', false, 'error', jsonb_build_object('message', 'bench failure')) END,
       gs.created_at, gs.at, cardinality(p.path)
FROM gs JOIN step_paths p ON p.step_uuid = gs.step_uuid;

INSERT INTO tasker.workflow_step_edges (task_uuid, from_step_uuid, to_step_uuid)
SELECT a.task_uuid, a.step_uuid, b.step_uuid
FROM gs a JOIN gs b ON b.task_uuid = a.task_uuid
WHERE (a.kind = 0 AND b.idx = a.idx + 1)
   OR (a.kind = 1 AND ((a.idx = 0 AND b.idx IN (1, 2)) OR (a.idx IN (1, 2) AND b.idx = 3)));

INSERT INTO tasker.task_transitions (
    task_transition_uuid, task_uuid, sort_key, from_state, to_state, event,
    lifecycle_event, processor_uuid, metadata, created_at)
SELECT pg_temp.uuid_at(at), task_uuid, ord, prev::tasker.task_state,
       state::tasker.task_state,
       CASE WHEN ord > 1 THEN jsonb_build_object('type', 'bench_' || state) END,
       CASE WHEN ord > 1 THEN 'task.' || state END,
       CASE WHEN ord > 1 THEN '01900000-0000-7000-8000-000000000001'::uuid END,
       '{}', at
FROM (
    SELECT p.task_uuid, s.state, s.ord, cardinality(p.path) AS n,
           lag(s.state) OVER (PARTITION BY p.task_uuid ORDER BY s.ord) AS prev,
           CASE WHEN cardinality(p.path) = 1 THEN p.created_at
                ELSE p.created_at + (p.state_at - p.created_at) * ((s.ord - 1)::double precision / (cardinality(p.path) - 1)) END AS at
    FROM task_paths p
    CROSS JOIN LATERAL unnest(p.path) WITH ORDINALITY AS s (state, ord)
) t;

INSERT INTO tasker.workflow_step_transitions (
    workflow_step_transition_uuid, workflow_step_uuid, task_uuid, sort_key,
    from_state, to_state, event, lifecycle_event, processor_uuid, metadata, created_at)
SELECT pg_temp.uuid_at(at), step_uuid, task_uuid, ord, prev::tasker.step_state,
       state::tasker.step_state,
       CASE WHEN ord > 1 THEN jsonb_build_object('type', 'bench_' || state) END,
       CASE WHEN ord > 1 THEN 'step.' || state END,
       CASE WHEN state IN ('in_progress', 'enqueued_for_orchestration')
            THEN '01900000-0000-7000-8000-000000000002'::uuid END,
       CASE WHEN state = 'enqueued_for_orchestration'
            THEN jsonb_build_object('worker', 'bench-worker') ELSE '{}' END,
       at
FROM (
    SELECT p.step_uuid, p.task_uuid, s.state, s.ord, cardinality(p.path) AS n,
           lag(s.state) OVER (PARTITION BY p.step_uuid ORDER BY s.ord) AS prev,
           CASE WHEN cardinality(p.path) = 1 THEN p.created_at
                ELSE p.created_at + (p.at - p.created_at) * ((s.ord - 1)::double precision / (cardinality(p.path) - 1)) END AS at
    FROM step_paths p
    CROSS JOIN LATERAL unnest(p.path) WITH ORDINALITY AS s (state, ord)
) t;

INSERT INTO tasker.workflow_step_result_audit (
    workflow_step_uuid, workflow_step_transition_uuid, task_uuid, recorded_at, worker_uuid,
    success, execution_time_ms)
SELECT t.workflow_step_uuid, t.workflow_step_transition_uuid, t.task_uuid, t.created_at,
       t.processor_uuid, t.sort_key + 1 = (SELECT max(sort_key) FROM tasker.workflow_step_transitions x
                                             WHERE x.workflow_step_uuid = t.workflow_step_uuid)
                         AND s.state = 'complete', 5
FROM tasker.workflow_step_transitions t
JOIN tasker.workflow_steps s ON s.workflow_step_uuid = t.workflow_step_uuid
WHERE t.to_state = 'enqueued_for_orchestration';

-- Lookup tables for pgbench (`\set id random(1, :ntasks)`) and for the Rust benchmarks.
CREATE TABLE public.bench_tasks (id integer PRIMARY KEY, task_uuid uuid NOT NULL);
INSERT INTO public.bench_tasks SELECT i, task_uuid FROM g;
CREATE TABLE public.bench_meta (generator text NOT NULL, n_tasks integer NOT NULL);
INSERT INTO public.bench_meta VALUES ('v2', current_setting('bench.n_tasks')::integer);
