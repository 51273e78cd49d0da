-- Undoing revision f41ba96cab17: the shop's graph, and whatever unfinished
-- runs left behind (graphs of builds that never replaced it, changes tables
-- of re-runs that never applied). The age extension stays: the extensions
-- revision (7a35c0d9d159) owns it; the database's age.enable_containment
-- (set off by the build, GRAPH_PROPERTY_MATCH=equality) goes back to AGE's default.
DO $$
DECLARE
    g text;
    t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'age') THEN
        FOR g IN
            SELECT name::text FROM ag_catalog.ag_graph
             WHERE name = 'product_review_graph' OR name::text LIKE 'product\_review\_graph\_build\_%'
        LOOP
            PERFORM ag_catalog.drop_graph(g::name, true);
        END LOOP;
    END IF;
    FOR t IN
        SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
         WHERE schemaname = 'pipeline' AND tablename LIKE 'graph\_changes\_%'
    LOOP
        EXECUTE 'DROP TABLE ' || t;
    END LOOP;
    EXECUTE format('ALTER DATABASE %I RESET age.enable_containment', current_database());
END
$$;
