//! The namespace rule in SQL: the `task_namespaces_name_format` check accepts exactly the names
//! tasker-models' `NamespaceName` accepts (the table tasker-messaging's queue namespaces are
//! held to as well), and the migration that tightened it names the rows it cannot keep.

use tasker_db::error::DbError;
use tasker_db::migrate;
use tasker_models::names::NamespaceName;

use crate::harness;

/// The shared table of namespace names (tasker-models' `tests/fixtures/namespace_names.txt`):
/// each name and whether the namespace rule accepts it.
fn namespace_cases() -> Vec<(String, bool)> {
    include_str!("../../../tasker-models/tests/fixtures/namespace_names.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (sign, name) = line.split_at(2);
            let name: String = serde_json::from_str(name).expect("the name is a JSON string");
            (name, sign == "+ ")
        })
        .collect()
}

#[tokio::test]
async fn the_check_accepts_exactly_the_namespace_names_of_the_models() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        let cases = namespace_cases();
        assert!(cases.len() > 40, "the table is read");
        for (name, accepted) in cases {
            assert_eq!(
                NamespaceName::new(name.as_str()).is_ok(),
                accepted,
                "{name:?}"
            );
            let inserted = sqlx::query("INSERT INTO tasker.task_namespaces (name) VALUES ($1)")
                .bind(&name)
                .execute(&pool)
                .await
                .map_err(DbError::from);
            match inserted {
                Ok(_) => assert!(accepted, "the database accepted {name:?}"),
                Err(DbError::CheckViolation { constraint, .. }) => {
                    assert!(!accepted, "the database refused {name:?}");
                    assert_eq!(constraint, "task_namespaces_name_format", "{name:?}");
                }
                Err(other) => anyhow::bail!("inserting {name:?}: {other}"),
            }
        }
        Ok(())
    })
    .await
}

/// A database that still holds a namespace the old check allowed is refused by the migration,
/// which names the namespace.
#[tokio::test]
async fn the_migration_names_namespaces_that_break_the_rule() -> anyhow::Result<()> {
    harness::run(|db| async move {
        let pool = db.migrated().await?;
        // The state before the migration: the old check, and a namespace it allowed.
        sqlx::query(
            "ALTER TABLE tasker.task_namespaces DROP CONSTRAINT task_namespaces_name_format, \
             ADD CONSTRAINT task_namespaces_name_format \
                 CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,28}$')",
        )
        .execute(&pool)
        .await?;
        sqlx::query("INSERT INTO tasker.task_namespaces (name) VALUES ('Payments2'), ('ok')")
            .execute(&pool)
            .await?;
        let migration = migrate::MIGRATOR
            .iter()
            .find(|migration| migration.description == "namespace names lowercase")
            .expect("the migration is embedded");
        let error = sqlx::raw_sql(&migration.sql[..])
            .execute(&pool)
            .await
            .expect_err("a namespace breaks the rule");
        let message = error
            .as_database_error()
            .map(|error| error.message().to_owned())
            .unwrap_or_default();
        assert_eq!(message, "namespaces 'Payments2' break the namespace rule");
        Ok(())
    })
    .await
}
