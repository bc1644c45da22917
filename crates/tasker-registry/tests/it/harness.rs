//! Test databases and scratch template directories.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::ConnectOptions as _;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tasker_db::pool::PoolConfig;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tasker_development";

/// Runs `test` with a pool over a fresh, migrated database, then closes the pool and drops the
/// database, whether the test passed, failed or panicked (a panic is re-raised).
pub(crate) async fn run<F, Fut>(test: F) -> anyhow::Result<()>
where
    F: FnOnce(PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let name = format!("tasker_registry_it_{}", uuid::Uuid::now_v7().simple());
    let options = PgConnectOptions::from_str(&url)?.database(&name);
    let url = options.to_url_lossy().to_string();
    tasker_db::migrate::create_database_if_missing(&url).await?;

    let outcome = async {
        let mut config = PoolConfig::from_options(options);
        config.max_connections = 16;
        let pool = config.connect().await?;
        tasker_db::migrate::run(&pool).await?;
        let outcome = tokio::spawn(test(pool.clone())).await;
        pool.close().await;
        anyhow::Ok(outcome)
    }
    .await;

    tasker_db::migrate::drop_database_if_exists(&url).await?;
    match outcome? {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(err.into()),
    }
}

/// A scratch directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "tasker-registry-it-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `text` to `relative` under the directory, creating parent directories.
    pub(crate) fn write(&self, relative: &str, text: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// `text` with the directory's path replaced by `<scratch>`, for snapshots.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&self.dir.display().to_string(), "<scratch>")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A small template in namespace `scratch`, with the given version and the body of its
/// second step's handler.
pub(crate) fn template(name: &str, version: &str, second_handler: &str) -> String {
    format!(
        "name: {name}\nnamespace_name: scratch\nversion: {version}\nsteps:\n  - name: first\n    \
         handler: {{callable: Scratch::First}}\n  - name: second\n    handler: {second_handler}\n    \
         dependencies: [first]\n"
    )
}
