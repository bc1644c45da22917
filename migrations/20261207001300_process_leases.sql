-- Leases of running processes: a worker process holds one while it runs and renews it.
--
-- Every attempt records the process that started it (`processor_uuid` on the `in_progress`
-- transition). Whether that process still runs the attempt is read here: the lease of the
-- same incarnation (`started_at` at or before the attempt) that has not expired. A step
-- message delivered again for an attempt whose process holds a live lease is left for that
-- process; only an attempt whose process is gone (no lease, an expired one, or a newer
-- incarnation under the same id) is declared lost.
CREATE TABLE tasker.process_leases (
    processor_uuid uuid PRIMARY KEY,
    role text NOT NULL CONSTRAINT process_leases_role_length CHECK (length(role) BETWEEN 1 AND 64),
    started_at timestamptz NOT NULL,
    renewed_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT process_leases_expiry_after_renewal CHECK (expires_at >= renewed_at)
);

COMMENT ON TABLE tasker.process_leases IS
    'One row per running process that starts step attempts; renewed while the process lives';
