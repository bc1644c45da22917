-- The request a task was created from, and where its requester waits for replies.
--
-- `request_uuid` tells a redelivered request (the same request id, after its creation
-- committed but before the request was acknowledged) from a different request with the same
-- identity, which is a real duplicate. `reply_to` names the requester's reply queue: whichever
-- orchestrator finishes the task tells the requester there, so no process depends on being the
-- one that created the task. Both are NULL for tasks created without a request message.
ALTER TABLE tasker.tasks
    ADD COLUMN request_uuid uuid,
    ADD COLUMN reply_to text CONSTRAINT tasks_reply_to_length CHECK (length(reply_to) BETWEEN 1 AND 255);

-- A requester that missed a reply (lost between a commit and its send on RabbitMQ) finds its
-- tasks by request id.
CREATE INDEX tasks_request_uuid_idx ON tasker.tasks (request_uuid) WHERE request_uuid IS NOT NULL;
