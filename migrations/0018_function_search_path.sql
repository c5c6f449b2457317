-- The schema's own functions (the money triggers refunds_guard and
-- payments_consume_only_succeeded, and refund_headroom which refunds_guard calls) run with a
-- fixed search_path: this schema, then pg_temp last. Unqualified names in their bodies then
-- always mean this schema's tables, whatever search_path the session that fires them has set,
-- so nothing a session puts earlier on its path (a temporary table named like ours, say)
-- can stand in for them. Every function of the schema that the owner has and that belongs to
-- no extension, so the ones earlier migrations made are all covered; a function a later
-- migration creates or replaces must say `SET search_path = …` itself.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND p.prokind = 'f'
          AND pg_has_role(p.proowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    END LOOP;
END
$$;
