-- Readiness without the template-step join when the name is not needed.
--
-- get_step_readiness_status joined named_steps with an inner join, which the planner must keep
-- even when the caller ignores `name` (get_task_execution_context, the claim's ready-step
-- check). named_step_uuid is a foreign key to named_steps' primary key, so a LEFT JOIN returns
-- the same rows, and PostgreSQL removes an unused LEFT JOIN on a unique key: the context and
-- the claim no longer read named_steps at all.

CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status(
    p_task_uuid uuid,
    p_backoff_base_ms bigint DEFAULT 1000,
    p_backoff_multiplier double precision DEFAULT 2.0,
    p_backoff_max_ms bigint DEFAULT 60000,
    p_now timestamptz DEFAULT now()
)
RETURNS TABLE (
    workflow_step_uuid uuid,
    task_uuid uuid,
    named_step_uuid uuid,
    name text,
    current_state tasker.step_state,
    total_parents integer,
    completed_parents integer,
    dependencies_satisfied boolean,
    attempts integer,
    max_attempts integer,
    retryable boolean,
    retry_eligible boolean,
    last_attempted_at timestamptz,
    backoff_ms bigint,
    next_retry_at timestamptz,
    ready_for_execution boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH steps AS (
        SELECT s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, s.state, s.attempts,
               s.max_attempts, s.retryable AND s.failure_retryable AS retryable,
               s.last_attempted_at,
               coalesce(
                   s.backoff_request_ms,
                   least(
                       round(p_backoff_base_ms * power(p_backoff_multiplier, least(s.attempts, 64))),
                       p_backoff_max_ms
                   )::bigint
               ) AS backoff_ms
        FROM tasker.workflow_steps s
        WHERE s.task_uuid = p_task_uuid
    ),
    parents AS (
        SELECT e.to_step_uuid,
               count(*)::integer AS total,
               (count(*) FILTER (WHERE p.state IN ('complete', 'resolved_manually')))::integer AS done
        FROM tasker.workflow_step_edges e
        -- A primary-key probe per edge stays linear for 1,000-step tasks, whatever the
        -- planner guesses about the size of `steps`.
        JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
        WHERE e.task_uuid = p_task_uuid
        GROUP BY e.to_step_uuid
    ),
    evaluated AS (
        SELECT s.*,
               coalesce(p.total, 0) AS total_parents,
               coalesce(p.done, 0) AS completed_parents,
               coalesce(p.done, 0) >= coalesce(p.total, 0) AS deps_ok,
               s.attempts = 0 OR (s.retryable AND s.attempts < s.max_attempts) AS eligible,
               s.last_attempted_at + s.backoff_ms * interval '1 millisecond' AS retry_at
        FROM steps s
        LEFT JOIN parents p ON p.to_step_uuid = s.workflow_step_uuid
    )
    SELECT e.workflow_step_uuid, e.task_uuid, e.named_step_uuid, ns.name, e.state,
           e.total_parents, e.completed_parents, e.deps_ok,
           e.attempts, e.max_attempts, e.retryable, e.eligible,
           e.last_attempted_at, e.backoff_ms, e.retry_at,
           CASE e.state
               WHEN 'pending' THEN e.deps_ok
               WHEN 'error' THEN e.deps_ok AND e.eligible AND (e.retry_at IS NULL OR e.retry_at <= p_now)
               ELSE false
           END
    FROM evaluated e
    LEFT JOIN tasker.named_steps ns ON ns.named_step_uuid = e.named_step_uuid
    ORDER BY e.workflow_step_uuid
$$;
