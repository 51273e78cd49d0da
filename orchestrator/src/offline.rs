//! `upgrade --sql` and `downgrade --sql`: Alembic's offline mode. The SQL a
//! move would run is printed, in order, and nothing is run: no database is
//! connected to, so the move starts where the command says (`A:B`; an
//! upgrade without `A:` starts from base, as Alembic's does; a downgrade
//! needs its start, since offline the current revision is not known).
//!
//! Only revisions that are pure DDL (extensions, schema) have such SQL
//! ([`revisions::Planner::offline_sql`], the statements their executors
//! run). A move crossing a data revision (seed, embeddings, enrichment,
//! graph) is refused as bad usage, naming it, before anything is printed.
//! The pipeline's own bookkeeping (`pipeline.*`: runs, tasks, history) is
//! not part of the script; `alembic_version` is, with the statements the
//! online path runs ([`shared::store::CLEAR_VERSION_SQL`],
//! [`shared::store::SET_VERSION_SQL`]).

use crate::migrate::{path, resolve_target, target_name, BadUsage};
use revisions::registry::{Target, CHAIN};
use shared::plan::Direction;
use std::fmt::Write as _;

/// The script of `<direction> <range> --sql`.
pub fn sql(range: &str, direction: Direction) -> anyhow::Result<String> {
    let bad = |message: String| anyhow::Error::new(BadUsage(message));
    let (start, to) = match (range.split_once(':'), direction) {
        (Some((from, to)), _) => (index(resolve_target(from, None)?), to),
        (None, Direction::Upgrade) => (None, range),
        (None, _) => {
            return Err(bad(format!(
                "downgrade --sql needs the revision to start from, as START:{range} \
                 (e.g. `downgrade schema:base --sql`): offline mode does not read the database"
            )))
        }
    };
    let target = resolve_target(to, start)?;
    let path = path(start, target, direction).map_err(|e| bad(format!("{e:#}")))?;
    let mut statements = Vec::with_capacity(path.len());
    for (n, revision) in path.iter().enumerate() {
        let Some(sql) = revision.planner.offline_sql(direction) else {
            let before = match n.checked_sub(1) {
                Some(last) => format!(
                    "; `{} {}:{} --sql` prints the part before it",
                    direction.as_str(),
                    start.map_or("base", |i| CHAIN[i].id),
                    path[last].id
                ),
                None => String::new(),
            };
            return Err(bad(format!(
                "revision {} ({}) cannot run offline: it moves data (it reads files, calls \
                 providers or reads the tables), so there is no SQL to print for it, and nothing \
                 was printed. Offline mode covers the DDL revisions only (extensions, schema): \
                 run this move online (`orchestrator {} {}`){before}",
                revision.id,
                revision.name,
                direction.as_str(),
                target_name(target)
            )));
        };
        statements.push(sql);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- orchestrator {} {}:{} --sql (offline mode): what this move runs; nothing was run, no database was read\n",
        direction.as_str(),
        start.map_or("base", |i| CHAIN[i].id),
        target_name(target)
    );
    out.push_str("BEGIN;\n\n");
    if start.is_none() && direction == Direction::Upgrade {
        let _ = writeln!(out, "{}", shared::db::ALEMBIC_VERSION_SQL.trim_end());
        out.push('\n');
    }
    let mut at = start;
    for (revision, sql) in path.iter().zip(statements) {
        let new_head = match direction {
            Direction::Upgrade => Some(chain_index(revision.id)),
            _ => chain_index(revision.id).checked_sub(1),
        };
        let _ = writeln!(
            out,
            "-- Running {} {} -> {} ({})\n",
            direction.as_str(),
            at.map_or("", |i| CHAIN[i].id),
            new_head.map_or("", |i| CHAIN[i].id),
            revision.name
        );
        let _ = writeln!(out, "{}\n", sql.trim_end());
        let _ = writeln!(out, "{};", shared::store::CLEAR_VERSION_SQL);
        if let Some(head) = new_head {
            let _ = writeln!(
                out,
                "{};",
                shared::store::SET_VERSION_SQL.replace("$1", &format!("'{}'", CHAIN[head].id))
            );
        }
        out.push('\n');
        at = new_head;
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}

fn index(target: Target) -> Option<usize> {
    match target {
        Target::Base => None,
        Target::Revision(i) => Some(i),
    }
}

fn chain_index(id: &str) -> usize {
    revisions::registry::position(id).expect("a revision of the chain")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::catalogue::{EXTENSIONS, SCHEMA, SEED};

    #[test]
    fn an_upgrade_from_base_prints_the_version_table_then_each_revision_with_its_version() {
        let script = sql("schema", Direction::Upgrade).unwrap();
        let version_table = script.find("CREATE TABLE IF NOT EXISTS public.alembic_version");
        let first = script.find(&format!("-- Running upgrade  -> {EXTENSIONS} (extensions)"));
        let vector = script.find("CREATE EXTENSION IF NOT EXISTS vector CASCADE;");
        let set_first = script.find(&format!("VALUES ('{EXTENSIONS}');"));
        let second = script.find(&format!(
            "-- Running upgrade {EXTENSIONS} -> {SCHEMA} (schema)"
        ));
        let products = script.find("CREATE TABLE public.products");
        let set_second = script.find(&format!("VALUES ('{SCHEMA}');"));
        let order = [
            version_table,
            first,
            vector,
            set_first,
            second,
            products,
            set_second,
        ];
        assert!(order.iter().all(Option::is_some), "{script}");
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{script}");
        assert!(
            script.starts_with("-- orchestrator upgrade base:"),
            "{script}"
        );
        assert!(script.trim_end().ends_with("COMMIT;"), "{script}");
        assert!(script.contains(revisions::schema::UPGRADE_SQL.trim_end()));
    }

    #[test]
    fn a_downgrade_needs_its_start_and_ends_at_base_with_no_version_row() {
        let e = sql("base", Direction::Downgrade).unwrap_err();
        assert!(e.chain().any(|c| c.is::<BadUsage>()), "{e}");
        let script = sql(&format!("{SCHEMA}:base"), Direction::Downgrade).unwrap();
        assert!(script.contains(&format!(
            "-- Running downgrade {SCHEMA} -> {EXTENSIONS} (schema)"
        )));
        assert!(script.contains(&format!(
            "-- Running downgrade {EXTENSIONS} ->  (extensions)"
        )));
        assert!(script.contains("DROP TABLE IF EXISTS public.products;"));
        assert!(
            !script.contains("alembic_version_pkc"),
            "no table made on the way down"
        );
        assert!(
            script
                .trim_end()
                .ends_with("DELETE FROM public.alembic_version;\n\nCOMMIT;"),
            "{script}"
        );
    }

    #[test]
    fn a_data_revision_in_the_range_is_refused_naming_it() {
        for (range, direction) in [
            ("seed", Direction::Upgrade),
            ("schema:head", Direction::Upgrade),
            ("embeddings:schema", Direction::Downgrade),
        ] {
            let e = sql(range, direction).unwrap_err();
            assert!(e.chain().any(|c| c.is::<BadUsage>()), "{e}");
            assert!(e.to_string().contains("cannot run offline"), "{e}");
        }
        let e = sql("seed", Direction::Upgrade).unwrap_err().to_string();
        assert!(e.contains(&format!("revision {SEED} (seed)")), "{e}");
        // Relative targets count from the start given.
        assert!(sql("extensions:+1", Direction::Upgrade).is_ok());
    }
}
