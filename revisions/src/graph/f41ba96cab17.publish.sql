-- Revision f41ba96cab17, after a full build was renamed to product_review_graph
-- (in the transaction that renamed it).
--
-- AGE 1.5's rename leaves the graph's old name in every label table's id
-- default, `_graphid(_label_id('<old name>', '<label>'), nextval(...))`, and
-- Cypher CREATE takes its ids from that default: set it back to what
-- create_vlabel / create_elabel write for this name.
DO $$
DECLARE
    l record;
BEGIN
    FOR l IN
        SELECT lb.relation::regclass AS relation, lb.name::text AS label, lb.seq_name::text AS seq
          FROM ag_catalog.ag_label lb
          JOIN ag_catalog.ag_graph g ON g.graphid = lb.graph
         WHERE g.name = 'product_review_graph'
    LOOP
        EXECUTE format(
            'ALTER TABLE %s ALTER COLUMN id SET DEFAULT ag_catalog._graphid((ag_catalog._label_id(%L::name, %L::name))::integer, nextval(%L::regclass))',
            l.relation, 'product_review_graph', l.label, format('%I.%I', 'product_review_graph', l.seq));
    END LOOP;
END
$$;

COMMENT ON SCHEMA product_review_graph IS 'built by AgenticShop revision f41ba96cab17';
