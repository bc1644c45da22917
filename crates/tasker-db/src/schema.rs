//! A summary of what the `tasker` schema contains: tables with row counts, functions and enums.
//!
//! Used by `cargo xtask db status` and by tests that check a migration produced what it should.

use sqlx::PgExecutor;

/// Tables, functions and enum types of the `tasker` schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSummary {
    /// Tables in name order, with exact row counts.
    pub tables: Vec<TableSummary>,
    /// Functions in name order, as `name(argument types)`.
    pub functions: Vec<String>,
    /// Enum types in name order, with their labels in declaration order.
    pub enums: Vec<EnumSummary>,
}

/// One table and its row count.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TableSummary {
    /// The table's name, without the schema.
    pub name: String,
    /// The exact number of rows (`count(*)`).
    pub rows: i64,
}

/// One enum type and its labels.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnumSummary {
    /// The type's name, without the schema.
    pub name: String,
    /// Its labels in declaration order.
    pub labels: Vec<String>,
}

/// Summarises the `tasker` schema; every list is empty when the schema does not exist.
///
/// Row counts are exact, so this reads every table once: meant for operators and tests, not for
/// a hot path.
pub async fn summary<'c, E>(executor: E) -> Result<SchemaSummary, sqlx::Error>
where
    E: PgExecutor<'c> + Copy,
{
    // query_to_xml runs the count for each table; %I quotes the catalog's identifiers.
    let tables: Vec<TableSummary> = sqlx::query_as(
        "SELECT c.relname::text AS name, \
                (xpath('/row/n/text()', query_to_xml( \
                    format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '') \
                ))[1]::text::bigint AS rows \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'tasker' AND c.relkind IN ('r', 'p') \
         ORDER BY c.relname",
    )
    .fetch_all(executor)
    .await?;
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' \
         FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'tasker' \
         ORDER BY p.proname, 1",
    )
    .fetch_all(executor)
    .await?;
    let enums: Vec<EnumSummary> = sqlx::query_as(
        "SELECT t.typname::text AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels \
         FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid \
         WHERE n.nspname = 'tasker' \
         GROUP BY t.typname \
         ORDER BY t.typname",
    )
    .fetch_all(executor)
    .await?;
    Ok(SchemaSummary {
        tables,
        functions,
        enums,
    })
}
