-- Stale-task detection plans each call for its arguments.
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
