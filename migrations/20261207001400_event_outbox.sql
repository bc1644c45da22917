-- Durable lifecycle events: every task and step transition that names a lifecycle event is
-- copied, by a statement-level trigger in the same transaction, into tasker.event_outbox. A
-- committed transition therefore always has its event; an orchestrator's relay moves the rows
-- to the namespace's domain-event queue and deletes them (at least once: a relay that dies
-- before its commit leaves the rows for the next one).
CREATE TABLE tasker.event_outbox (
    -- Insertion order: a task's events are relayed in this order.
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_uuid uuid NOT NULL,
    -- NULL for a task transition.
    workflow_step_uuid uuid,
    -- The transition's sort key within its task or step.
    sort_key integer NOT NULL,
    name text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    processor_uuid uuid,
    occurred_at timestamptz NOT NULL
);

COMMENT ON TABLE tasker.event_outbox IS
    'Lifecycle events of committed transitions not yet relayed to their domain-event queue';

CREATE FUNCTION tasker.event_outbox_from_task_transitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.event_outbox
        (task_uuid, workflow_step_uuid, sort_key, name, from_state, to_state, processor_uuid, occurred_at)
    SELECT n.task_uuid, NULL, n.sort_key, n.lifecycle_event, n.from_state::text, n.to_state::text,
           n.processor_uuid, n.created_at
    FROM new_rows n
    WHERE n.lifecycle_event IS NOT NULL
    ORDER BY n.task_uuid, n.sort_key;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_transitions_event_outbox
    AFTER INSERT ON tasker.task_transitions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.event_outbox_from_task_transitions();

CREATE FUNCTION tasker.event_outbox_from_step_transitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasker.event_outbox
        (task_uuid, workflow_step_uuid, sort_key, name, from_state, to_state, processor_uuid, occurred_at)
    SELECT n.task_uuid, n.workflow_step_uuid, n.sort_key, n.lifecycle_event, n.from_state::text,
           n.to_state::text, n.processor_uuid, n.created_at
    FROM new_rows n
    WHERE n.lifecycle_event IS NOT NULL
    ORDER BY n.task_uuid, n.workflow_step_uuid, n.sort_key;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_step_transitions_event_outbox
    AFTER INSERT ON tasker.workflow_step_transitions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasker.event_outbox_from_step_transitions();
