-- Durable domain events: the events a step handler publishes (declared by its template's
-- `publishes_events`) are written into tasker.event_outbox by the worker in the transaction
-- that stores the step's result, so a committed result always has its events and a result
-- that was rolled back has none. They share the outbox's identity with the lifecycle events,
-- so the relay sends a task's lifecycle and domain events in one order.
ALTER TABLE tasker.event_outbox
    ADD COLUMN kind text NOT NULL DEFAULT 'lifecycle',
    -- The domain event's id (a UUID v7), kept across redeliveries so consumers can drop repeats.
    ADD COLUMN domain_event_uuid uuid,
    -- The handler's payload, valid against the declared schema when it was published.
    ADD COLUMN payload jsonb,
    ALTER COLUMN sort_key DROP NOT NULL,
    ALTER COLUMN to_state DROP NOT NULL,
    ADD CONSTRAINT event_outbox_kind_shape CHECK (
        (kind = 'lifecycle' AND sort_key IS NOT NULL AND to_state IS NOT NULL
            AND domain_event_uuid IS NULL AND payload IS NULL)
        OR (kind = 'domain' AND domain_event_uuid IS NOT NULL AND payload IS NOT NULL
            AND sort_key IS NULL AND to_state IS NULL)
    );

COMMENT ON COLUMN tasker.event_outbox.kind IS
    'lifecycle (a transition, written by trigger) or domain (published by a step handler)';
