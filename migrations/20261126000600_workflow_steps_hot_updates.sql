-- Step transitions become heap-only-tuple (HOT) updates.
--
-- A step row changes state four or five times in its life (pending, enqueued, in_progress,
-- enqueued_for_orchestration, complete), and step transitions are the most frequent write of
-- the whole system. PostgreSQL can update a row without touching any index (a HOT update) only
-- when no indexed column changes and the new row version fits on the same page. An index on
-- `state`, even a partial one (its predicate columns count too), turned every transition into
-- a full update that wrote a new entry into each of the table's five indexes.
--
-- So the steps' state is not indexed: every query path that the functions and the hot loops
-- use reaches steps through their task (`workflow_steps_task_step_key`) or their id, and the
-- health counts come from `step_state_counts`. A scope over step states across all tasks
-- (`StepScope` without a task filter) reads the table; docs/design/database.md weighs this.
-- The free space left on each page (fillfactor) lets the next version of a row stay on its
-- page; it applies to pages written from now on.
DROP INDEX tasker.workflow_steps_state_idx;
ALTER TABLE tasker.workflow_steps SET (fillfactor = 70);
