-- DAG helpers, system health counts and stale-task detection into the DLQ.

-- Every ancestor of a step (the steps it transitively depends on), once each, with its shortest
-- distance (1 = direct parent). The recursion stops at p_max_depth, so even a corrupt cyclic
-- graph terminates.
CREATE FUNCTION tasker.get_step_transitive_dependencies(
    p_step_uuid uuid,
    p_max_depth integer DEFAULT 1000
)
RETURNS TABLE (
    workflow_step_uuid uuid,
    task_uuid uuid,
    named_step_uuid uuid,
    name text,
    current_state tasker.step_state,
    results jsonb,
    distance integer
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE ancestors (step_uuid, distance) AS (
        SELECT e.from_step_uuid, 1
        FROM tasker.workflow_step_edges e
        WHERE e.to_step_uuid = p_step_uuid
        UNION
        SELECT e.from_step_uuid, a.distance + 1
        FROM ancestors a
        JOIN tasker.workflow_step_edges e ON e.to_step_uuid = a.step_uuid
        WHERE a.distance < p_max_depth
    ),
    nearest AS (
        SELECT a.step_uuid, min(a.distance) AS distance
        FROM ancestors a
        GROUP BY a.step_uuid
    )
    SELECT s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, ns.name, s.state, s.results,
           n.distance
    FROM nearest n
    JOIN tasker.workflow_steps s ON s.workflow_step_uuid = n.step_uuid
    JOIN tasker.named_steps ns ON ns.named_step_uuid = s.named_step_uuid
    ORDER BY n.distance, s.workflow_step_uuid
$$;
COMMENT ON FUNCTION tasker.get_step_transitive_dependencies(uuid, integer) IS
    'Every ancestor of a step once, with its shortest distance (1 = direct parent)';

-- The depth level of every step of a task: roots are 0, every other step is one more than its
-- deepest parent (the longest path from a root). Bounded by the task's step count, so a cycle
-- cannot make it run forever; steps on a cycle (which creation refuses) are not listed.
CREATE FUNCTION tasker.calculate_dependency_levels(p_task_uuid uuid)
RETURNS TABLE (
    workflow_step_uuid uuid,
    dependency_level integer
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH RECURSIVE levels (step_uuid, level) AS (
        SELECT s.workflow_step_uuid, 0
        FROM tasker.workflow_steps s
        WHERE s.task_uuid = p_task_uuid
          AND NOT EXISTS (
              SELECT 1 FROM tasker.workflow_step_edges e WHERE e.to_step_uuid = s.workflow_step_uuid
          )
        UNION
        SELECT e.to_step_uuid, l.level + 1
        FROM levels l
        JOIN tasker.workflow_step_edges e ON e.from_step_uuid = l.step_uuid
        WHERE l.level < (SELECT count(*) FROM tasker.workflow_steps c WHERE c.task_uuid = p_task_uuid)
    )
    SELECT l.step_uuid, max(l.level)
    FROM levels l
    GROUP BY l.step_uuid
    ORDER BY max(l.level), l.step_uuid
$$;
COMMENT ON FUNCTION tasker.calculate_dependency_levels(uuid) IS
    'Depth level of each step of a task (roots 0, otherwise 1 + deepest parent)';

-- System health counts: tasks and steps per state, exact, without reading the tasks or steps.
--
-- Counting rows per state means reading a whole index (about 40 ms at 50,000 tasks), so the
-- counts are kept as they change instead. Statement-level AFTER triggers with transition tables
-- on tasks and workflow_steps append, per statement, one row per state whose count changed
-- (+n for rows that entered it, -n for rows that left it) to task_state_counts /
-- step_state_counts. A count is the sum of its state's rows. Because the rows are written by
-- the statement that changed the states, in its transaction, every snapshot sees counts that
-- agree exactly with the tables, and every write path is covered, present or future (creation,
-- single and batch transitions, claims, test fixtures, manual SQL), except TRUNCATE, which
-- resets the counts of the truncated table.
--
-- Appending instead of updating one counter row per state matters: concurrent transitions never
-- wait for each other on a hot counter row, and no lock ordering between counter rows can
-- deadlock. To keep the log short, tasker.compact_state_counts() replaces each state's rows by
-- their sum (DELETE ... RETURNING, then INSERT the sums, in one statement). It runs under a
-- transaction-level advisory lock taken with try (so compactors never queue), only at READ
-- COMMITTED (where a row another compactor deleted meanwhile is skipped, not a serialization
-- failure), and the triggers call it for about one statement in 64. The sum is preserved
-- whatever interleaving: DELETE ... RETURNING returns exactly the rows this transaction
-- removed, and rows inserted by transactions it cannot see are left alone.

CREATE TABLE tasker.task_state_counts (
    state tasker.task_state NOT NULL,
    delta bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
COMMENT ON TABLE tasker.task_state_counts IS
    'Append-only changes of the number of tasks per state; sum(delta) per state is the count';

CREATE TABLE tasker.step_state_counts (
    state tasker.step_state NOT NULL,
    delta bigint NOT NULL
) WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
COMMENT ON TABLE tasker.step_state_counts IS
    'Append-only changes of the number of workflow steps per state; sum(delta) per state is the count';

-- Replaces the rows of each state by their sum. Returns false (and does nothing) when another
-- transaction is compacting or the isolation level is above READ COMMITTED.
CREATE FUNCTION tasker.compact_state_counts() RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed'
       OR NOT pg_try_advisory_xact_lock('tasker.task_state_counts'::regclass::oid::integer, 0) THEN
        RETURN false;
    END IF;
    WITH gone AS (DELETE FROM tasker.task_state_counts RETURNING state, delta)
    INSERT INTO tasker.task_state_counts (state, delta)
    SELECT g.state, sum(g.delta) FROM gone g GROUP BY g.state HAVING sum(g.delta) <> 0;
    WITH gone AS (DELETE FROM tasker.step_state_counts RETURNING state, delta)
    INSERT INTO tasker.step_state_counts (state, delta)
    SELECT g.state, sum(g.delta) FROM gone g GROUP BY g.state HAVING sum(g.delta) <> 0;
    RETURN true;
END
$$;
COMMENT ON FUNCTION tasker.compact_state_counts() IS
    'Sums the state count changes per state (skipped if another transaction is compacting)';

-- One function per table, shared by its INSERT, UPDATE, DELETE and TRUNCATE triggers. The
-- transition tables are named new_rows/old_rows; a branch only references the ones its event
-- provides (PL/pgSQL plans a statement when it first runs).
CREATE FUNCTION tasker.count_task_states() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO tasker.task_state_counts (state, delta)
        SELECT c.state, sum(c.delta)
        FROM (SELECT n.state, 1 AS delta FROM new_rows n
              UNION ALL
              SELECT o.state, -1 FROM old_rows o) c
        GROUP BY c.state
        HAVING sum(c.delta) <> 0;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO tasker.task_state_counts (state, delta)
        SELECT n.state, count(*) FROM new_rows n GROUP BY n.state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tasker.task_state_counts (state, delta)
        SELECT o.state, -count(*) FROM old_rows o GROUP BY o.state;
    ELSE
        DELETE FROM tasker.task_state_counts;
        RETURN NULL;
    END IF;
    IF random() < 1.0 / 64 THEN
        PERFORM tasker.compact_state_counts();
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION tasker.count_step_states() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO tasker.step_state_counts (state, delta)
        SELECT c.state, sum(c.delta)
        FROM (SELECT n.state, 1 AS delta FROM new_rows n
              UNION ALL
              SELECT o.state, -1 FROM old_rows o) c
        GROUP BY c.state
        HAVING sum(c.delta) <> 0;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO tasker.step_state_counts (state, delta)
        SELECT n.state, count(*) FROM new_rows n GROUP BY n.state;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO tasker.step_state_counts (state, delta)
        SELECT o.state, -count(*) FROM old_rows o GROUP BY o.state;
    ELSE
        DELETE FROM tasker.step_state_counts;
        RETURN NULL;
    END IF;
    IF random() < 1.0 / 64 THEN
        PERFORM tasker.compact_state_counts();
    END IF;
    RETURN NULL;
END
$$;

-- Transition tables allow one event per trigger, hence three triggers each (plus TRUNCATE).
CREATE TRIGGER tasks_count_inserted AFTER INSERT ON tasker.tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER tasks_count_updated AFTER UPDATE ON tasker.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER tasks_count_deleted AFTER DELETE ON tasker.tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER tasks_count_truncated AFTER TRUNCATE ON tasker.tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_task_states();
CREATE TRIGGER workflow_steps_count_inserted AFTER INSERT ON tasker.workflow_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_step_states();
CREATE TRIGGER workflow_steps_count_updated AFTER UPDATE ON tasker.workflow_steps
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_step_states();
CREATE TRIGGER workflow_steps_count_deleted AFTER DELETE ON tasker.workflow_steps
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_step_states();
CREATE TRIGGER workflow_steps_count_truncated AFTER TRUNCATE ON tasker.workflow_steps
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.count_step_states();

-- Rows that exist before this migration (none on a fresh database) are counted once.
INSERT INTO tasker.task_state_counts (state, delta)
SELECT t.state, count(*) FROM tasker.tasks t GROUP BY t.state;
INSERT INTO tasker.step_state_counts (state, delta)
SELECT w.state, count(*) FROM tasker.workflow_steps w GROUP BY w.state;

-- Tasks and steps per state: the sums of the count changes. One row per (entity, state), all
-- states listed, zero counts included.
CREATE FUNCTION tasker.get_system_health_counts()
RETURNS TABLE (
    entity text,
    state text,
    count bigint
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT r.entity, r.state, r.count
    FROM (
        SELECT 1 AS kind, s.ord, 'task' AS entity, s.label::text AS state, coalesce(c.n, 0)::bigint AS count
        FROM unnest(enum_range(NULL::tasker.task_state)) WITH ORDINALITY AS s (label, ord)
        LEFT JOIN (
            SELECT d.state, sum(d.delta) AS n FROM tasker.task_state_counts d GROUP BY d.state
        ) c ON c.state = s.label
        UNION ALL
        SELECT 2, s.ord, 'step', s.label::text, coalesce(c.n, 0)::bigint
        FROM unnest(enum_range(NULL::tasker.step_state)) WITH ORDINALITY AS s (label, ord)
        LEFT JOIN (
            SELECT d.state, sum(d.delta) AS n FROM tasker.step_state_counts d GROUP BY d.state
        ) c ON c.state = s.label
    ) r
    ORDER BY r.kind, r.ord
$$;
COMMENT ON FUNCTION tasker.get_system_health_counts() IS
    'Task and step counts per state (entity task|step), every state listed';

-- Stale-task detection. A task is stale when it has been in a state that should be transient
-- for longer than its threshold, or exists for longer than its maximum lifetime:
--   waiting_for_dependencies  template lifecycle max_waiting_for_dependencies_minutes, else p_waiting_for_dependencies_minutes
--   waiting_for_retry         template max_waiting_for_retry_minutes, else p_waiting_for_retry_minutes
--   steps_in_process          template max_steps_in_process_minutes, else p_steps_in_process_minutes
--   initializing, enqueuing_steps, evaluating_results (an orchestrator died mid-step)
--                             p_processing_minutes
--   lifetime (any of these)   template max_duration_minutes, else p_max_lifetime_minutes
-- pending tasks (waiting for an orchestrator) and blocked_by_failures tasks (waiting for an
-- operator) are not stale by this definition, and terminal tasks never are. Tasks with an open
-- (pending) DLQ entry are skipped.
--
-- With p_dry_run = false each stale task gets a DLQ entry (reason staleness_timeout) with a
-- snapshot of the task and its step counts; the partial unique index makes concurrent
-- detectors safe (ON CONFLICT DO NOTHING). The task's state is left alone: the state machine
-- has no "stale" transition, and the DLQ is where an operator decides (cancel, give up, retry).
CREATE FUNCTION tasker.detect_stale_tasks(
    p_dry_run boolean DEFAULT true,
    p_limit integer DEFAULT 100,
    p_waiting_for_dependencies_minutes integer DEFAULT 60,
    p_waiting_for_retry_minutes integer DEFAULT 30,
    p_steps_in_process_minutes integer DEFAULT 30,
    p_processing_minutes integer DEFAULT 30,
    p_max_lifetime_minutes integer DEFAULT 1440,
    p_now timestamptz DEFAULT now()
)
RETURNS TABLE (
    task_uuid uuid,
    namespace_name text,
    task_name text,
    task_version text,
    current_state tasker.task_state,
    time_in_state_minutes double precision,
    threshold_minutes integer,
    task_age_minutes double precision,
    lifetime_minutes integer,
    exceeded text,
    dlq_entry_uuid uuid
)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH candidates AS (
        SELECT t.task_uuid, t.state, t.state_entered_at, t.created_at,
               ns.name AS namespace_name, nt.name AS task_name, nt.version AS task_version,
               CASE t.state
                   WHEN 'waiting_for_dependencies'
                       THEN coalesce(nt.max_waiting_for_dependencies_minutes, p_waiting_for_dependencies_minutes)
                   WHEN 'waiting_for_retry'
                       THEN coalesce(nt.max_waiting_for_retry_minutes, p_waiting_for_retry_minutes)
                   WHEN 'steps_in_process'
                       THEN coalesce(nt.max_steps_in_process_minutes, p_steps_in_process_minutes)
                   ELSE p_processing_minutes
               END AS threshold,
               coalesce(nt.max_duration_minutes, p_max_lifetime_minutes) AS lifetime
        FROM tasker.tasks t
        JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
        JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
        WHERE t.state IN ('initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
                          'waiting_for_dependencies', 'waiting_for_retry')
          AND NOT EXISTS (
              SELECT 1 FROM tasker.tasks_dlq d
              WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending'
          )
    ),
    stale AS (
        SELECT c.*,
               extract(epoch FROM p_now - c.state_entered_at)::double precision / 60.0 AS in_state,
               extract(epoch FROM p_now - c.created_at)::double precision / 60.0 AS age,
               CASE WHEN c.state_entered_at <= p_now - c.threshold * interval '1 minute'
                    THEN 'time_in_state' ELSE 'max_lifetime' END AS exceeded
        FROM candidates c
        WHERE c.state_entered_at <= p_now - c.threshold * interval '1 minute'
           OR c.created_at <= p_now - c.lifetime * interval '1 minute'
        ORDER BY c.state_entered_at, c.task_uuid
        LIMIT p_limit
    ),
    entered AS (
        INSERT INTO tasker.tasks_dlq (dlq_entry_uuid, task_uuid, original_state, dlq_reason, task_snapshot, metadata)
        SELECT tasker.uuid_generate_v7(), s.task_uuid, s.state, 'staleness_timeout',
               jsonb_build_object(
                   'task', to_jsonb(t.*),
                   'namespace', s.namespace_name,
                   'task_name', s.task_name,
                   'task_version', s.task_version,
                   'step_states', coalesce((
                       SELECT jsonb_object_agg(g.state, g.n)
                       FROM (
                           SELECT w.state, count(*) AS n
                           FROM tasker.workflow_steps w
                           WHERE w.task_uuid = s.task_uuid
                           GROUP BY w.state
                       ) g
                   ), '{}'::jsonb),
                   'snapshot_at', p_now
               ),
               jsonb_build_object(
                   'detection_method', 'automatic_staleness',
                   'exceeded', s.exceeded,
                   'time_in_state_minutes', round(s.in_state::numeric, 2),
                   'threshold_minutes', s.threshold,
                   'task_age_minutes', round(s.age::numeric, 2),
                   'lifetime_minutes', s.lifetime
               )
        FROM stale s
        JOIN tasker.tasks t ON t.task_uuid = s.task_uuid
        WHERE NOT p_dry_run
        ON CONFLICT (task_uuid) WHERE resolution_status = 'pending' DO NOTHING
        RETURNING tasks_dlq.task_uuid, tasks_dlq.dlq_entry_uuid
    )
    SELECT s.task_uuid, s.namespace_name, s.task_name, s.task_version, s.state,
           s.in_state, s.threshold, s.age, s.lifetime, s.exceeded, e.dlq_entry_uuid
    FROM stale s
    LEFT JOIN entered e ON e.task_uuid = s.task_uuid
    ORDER BY s.state_entered_at, s.task_uuid;
END
$$;
COMMENT ON FUNCTION tasker.detect_stale_tasks(boolean, integer, integer, integer, integer, integer, integer, timestamptz) IS
    'Finds tasks stuck in a transient state (or past their lifetime) and, unless dry-run, opens a DLQ entry for each';

-- detect_stale_tasks plans each call for its arguments.
--
-- Tasker's pools set plan_cache_mode = force_generic_plan (tasker-db's PoolConfig), which
-- PL/pgSQL statements inherit. detect_stale_tasks filters by thresholds and a limit whose values
-- change what a good plan is; its generic plan took 0.5-0.9 s at 50,000 tasks against 0.09 s
-- with plans made for the actual arguments. It runs every few minutes, so planning each call
-- costs nothing that matters. JIT is off for the same reason as in claim_ready_tasks: cost
-- estimates for this statement cross jit_above_cost without the work to justify compiling.
ALTER FUNCTION tasker.detect_stale_tasks(boolean, integer, integer, integer, integer, integer, integer, timestamptz)
    SET plan_cache_mode = auto;
ALTER FUNCTION tasker.detect_stale_tasks(boolean, integer, integer, integer, integer, integer, integer, timestamptz)
    SET jit = off;
