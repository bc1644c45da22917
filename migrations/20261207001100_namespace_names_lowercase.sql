-- Namespace names follow one rule everywhere: a lowercase letter a-z first, then lowercase
-- letters, digits and `_`, at most 29 characters. tasker-models' `NamespaceName` implements it,
-- tasker-messaging's queue namespaces are that type, and this check spells it in SQL (a
-- tasker-db test holds the three to one table of names).
--
-- The first schema allowed upper case and a leading `_` (`^[A-Za-z_][A-Za-z0-9_]{0,28}$`). But
-- a namespace becomes part of queue names, pgmq lowercases the table names a queue name becomes
-- (`Orders` and `orders` would share a table), and queue names start with a letter; a template
-- in such a namespace registered fine and then failed when its first step was enqueued.
--
-- A database that holds such a namespace is refused with the names, rather than with
-- PostgreSQL's generic "violated by some row".
DO $$
DECLARE
    offending text;
BEGIN
    SELECT string_agg(quote_literal(name), ', ' ORDER BY name)
    INTO offending
    FROM tasker.task_namespaces
    WHERE name !~ '^[a-z][a-z0-9_]{0,28}$';
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'namespaces % break the namespace rule', offending
            USING DETAIL = 'A namespace is a lowercase letter a-z, then lowercase letters, digits and _, at most 29 characters.',
                  HINT = 'Rename the namespaces (their templates name them in namespace_name), then migrate again.';
    END IF;
END
$$;

ALTER TABLE tasker.task_namespaces
    DROP CONSTRAINT task_namespaces_name_format,
    ADD CONSTRAINT task_namespaces_name_format CHECK (name ~ '^[a-z][a-z0-9_]{0,28}$');
