-- Ready-task discovery and claiming.
--
-- A task can be processed when it is
--   * pending (always),
--   * waiting_for_retry and its next_retry_at has passed (or is unset),
--   * waiting_for_dependencies, entered within the window (older ones are the staleness
--     detector's business), and at least one of its steps is ready for execution.
-- Candidates are taken in claim order: priority with age escalation, i.e. priority + 0.1 per
-- hour of task age, which is the order of tasks.claim_rank (tasks_claimable_idx serves it).
--
-- Claiming locks candidates with FOR UPDATE SKIP LOCKED directly on the tasks rows (not on a
-- CTE's output, which locks nothing) and performs the task transition in the same statement:
--   pending                  --initialize-->          initializing
--   waiting_for_dependencies --dependencies_ready--> evaluating_results
--   waiting_for_retry        --retry_ready-->        enqueuing_steps
-- with the same bookkeeping as every other transition (state_entered_at, most_recent_sort_key
-- incremented and the history row inserted with it, the event JSON and lifecycle event name
-- tasker-state defines; a test checks they agree). Two claimers therefore never get the same
-- task: the second one skips the locked row, and after the first commits the row no longer
-- matches.
--
-- The claim is two statements in one transaction, so that its cached plan stays good. As one
-- statement, with `LIMIT p_limit` unknown at planning time, the generic plan assumes a tenth of
-- the table is claimed and picks a hash join over a sequential scan of tasks (hundreds of
-- milliseconds), and plan_cache_mode = auto re-plans on every call (about 1 ms). Instead the
-- candidates are locked and collected into arrays (an index scan in claim order, whatever the
-- limit), then the transitions are applied to exactly those rows through the arrays, which the
-- planner sizes small and joins by primary key. The rows stay locked in between, so nothing can
-- change them. At 5,000 tasks this halves a claim of 10.
CREATE FUNCTION tasker.claim_ready_tasks(
    p_limit integer,
    p_processor_uuid uuid DEFAULT NULL,
    p_waiting_for_dependencies_window_minutes integer DEFAULT 60,
    p_backoff_base_ms bigint DEFAULT 1000,
    p_backoff_multiplier double precision DEFAULT 2.0,
    p_backoff_max_ms bigint DEFAULT 60000,
    p_now timestamptz DEFAULT now()
)
RETURNS TABLE (
    task_uuid uuid,
    named_task_uuid uuid,
    priority integer,
    computed_priority double precision,
    from_state tasker.task_state,
    to_state tasker.task_state,
    task_transition_uuid uuid,
    sort_key integer,
    lifecycle_event text,
    claimed_at timestamptz
)
LANGUAGE plpgsql VOLATILE
-- Both statements are good as generic plans (an index scan in claim order; primary-key joins
-- over the arrays), so plan them once per session instead of on every call. The generic plan's
-- cost estimate assumes a tenth of the table is claimed, which would cross jit_above_cost and
-- spend ~15 ms compiling a plan that runs in well under one.
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_ids uuid[];
    v_states tasker.task_state[];
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'claim_ready_tasks: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg(c.task_uuid ORDER BY c.claim_rank DESC), array_agg(c.state ORDER BY c.claim_rank DESC)
    INTO v_ids, v_states
    FROM (
        SELECT t.task_uuid, t.state, t.claim_rank
        FROM tasker.tasks t
        WHERE t.state IN ('pending', 'waiting_for_dependencies', 'waiting_for_retry')
          AND (t.state <> 'waiting_for_retry' OR t.next_retry_at IS NULL OR t.next_retry_at <= p_now)
          AND (
              t.state <> 'waiting_for_dependencies'
              OR (
                  t.state_entered_at > p_now - p_waiting_for_dependencies_window_minutes * interval '1 minute'
                  AND EXISTS (
                      SELECT 1
                      FROM tasker.get_step_ready_states(
                          t.task_uuid, p_backoff_base_ms, p_backoff_multiplier, p_backoff_max_ms, p_now
                      ) r
                      WHERE r.ready_for_execution
                  )
              )
          )
        ORDER BY t.claim_rank DESC
        LIMIT p_limit
        FOR UPDATE OF t SKIP LOCKED
    ) c;

    IF v_ids IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH candidates AS (
        SELECT i.task_uuid, i.state
        FROM unnest(v_ids, v_states) AS i (task_uuid, state)
    ),
    moved AS (
        UPDATE tasker.tasks t
        SET state = CASE c.state
                        WHEN 'pending' THEN 'initializing'::tasker.task_state
                        WHEN 'waiting_for_dependencies' THEN 'evaluating_results'::tasker.task_state
                        ELSE 'enqueuing_steps'::tasker.task_state
                    END,
            state_entered_at = now(),
            next_retry_at = NULL,
            most_recent_sort_key = t.most_recent_sort_key + 1,
            updated_at = now()
        FROM candidates c
        WHERE t.task_uuid = c.task_uuid
          AND t.state = c.state
        RETURNING t.task_uuid, t.named_task_uuid, t.priority, t.claim_rank,
                  c.state AS from_state, t.state AS to_state, t.most_recent_sort_key AS sort_key,
                  tasker.uuid_generate_v7() AS transition_uuid,
                  CASE c.state
                      WHEN 'pending' THEN 'task.initialize_requested'
                      WHEN 'waiting_for_dependencies' THEN 'task.dependencies_satisfied'
                      ELSE 'task.retry_backoff_completed'
                  END AS lifecycle_event
    ),
    inserted AS (
        -- The events and lifecycle names are constants (tasker-state's, checked by a test), so
        -- no JSON is built per row.
        INSERT INTO tasker.task_transitions (
            task_transition_uuid, task_uuid, sort_key, from_state, to_state,
            event, lifecycle_event, processor_uuid, metadata, created_at
        )
        SELECT m.transition_uuid, m.task_uuid, m.sort_key, m.from_state, m.to_state,
               CASE m.from_state
                   WHEN 'pending' THEN '{"type": "initialize"}'::jsonb
                   WHEN 'waiting_for_dependencies' THEN '{"type": "dependencies_ready"}'::jsonb
                   ELSE '{"type": "retry_ready"}'::jsonb
               END,
               m.lifecycle_event, p_processor_uuid,
               '{"claimed_by": "claim_ready_tasks"}'::jsonb,
               now()
        FROM moved m
    )
    SELECT m.task_uuid, m.named_task_uuid, m.priority,
           m.claim_rank + 0.1 * tasker.epoch_hours(p_now),
           m.from_state, m.to_state, m.transition_uuid, m.sort_key, m.lifecycle_event, now()
    FROM moved m
    ORDER BY m.claim_rank DESC, m.task_uuid;
END
$$;
COMMENT ON FUNCTION tasker.claim_ready_tasks(integer, uuid, integer, bigint, double precision, bigint, timestamptz) IS
    'Claims up to p_limit processable tasks in priority order (SKIP LOCKED) and performs their claim transition';
