//! `cargo xtask db install-pgmq-extension`: installs pgmq as a PostgreSQL extension next to a
//! local server, from the SQL the `pgmq` crate embeds.
//!
//! pgmq 1.x is pure SQL, so an extension is just two files in the server's `SHAREDIR/extension`:
//! the control file and `pgmq--<version>.sql`. Servers without the extension packaged get it from
//! the exact SQL `tasker_db::migrate` installs otherwise, so `CREATE EXTENSION pgmq` becomes
//! possible and the migrator's "extension present" path can be exercised for real. The files come
//! from the `pgmq` package in Cargo.lock (located with `cargo metadata`); nothing is downloaded
//! beyond what the build already fetched.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Installs the extension files; `dir` overrides the directory the server reports.
pub(crate) async fn install(url: &str, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let source = pgmq_sources()?;
    let (dir, available) = match dir {
        Some(dir) => (dir, None),
        None => server_dir(url).await?,
    };
    let script_name = format!("pgmq--{}.sql", source.version);
    let control = dir.join("pgmq.control");
    let script = dir.join(&script_name);
    let unchanged = std::fs::read(&control).ok().as_deref() == Some(source.control.as_bytes())
        && std::fs::read(&script).ok().as_deref() == Some(source.script.as_bytes());
    if unchanged {
        return super::say(format_args!(
            "pgmq extension {} already installed in {}",
            source.version,
            dir.display()
        ));
    }
    if let Some(other) = available.filter(|v| *v != source.version) {
        super::say(format_args!(
            "replacing the server's default pgmq extension version {other} with {}",
            source.version
        ))?;
    }
    write_atomically(&script, &source.script)?;
    write_atomically(&control, &source.control)?;
    super::say(format_args!(
        "installed pgmq extension {} into {} (pgmq.control, {script_name})\n\
         `CREATE EXTENSION pgmq` now works in any database of that server; `cargo xtask db migrate` \
         leaves an installed extension alone and installs pgmq's SQL only where it is absent",
        source.version,
        dir.display()
    ))
}

struct PgmqSources {
    version: String,
    control: String,
    script: String,
}

/// Reads the control file and install script from the `pgmq` package the workspace builds with.
fn pgmq_sources() -> anyhow::Result<PgmqSources> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("failed to run `cargo metadata`")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed invalid JSON")?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|package| package["name"] == "pgmq")
        .and_then(|package| package["manifest_path"].as_str())
        .context("the `pgmq` package is not in the workspace's dependency graph")?;
    let embedded = Path::new(manifest)
        .parent()
        .context("the pgmq manifest path has no parent directory")?
        .join("src/install/embedded");
    let control = read(&embedded.join("pgmq.control"))?;
    let script = read(&embedded.join("sql/pgmq.sql"))?;
    let version = control
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "default_version").then(|| value.trim().trim_matches('\'').to_owned())
        })
        .with_context(|| format!("no default_version in {}", embedded.display()))?;
    Ok(PgmqSources {
        version,
        control,
        script,
    })
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "failed to read {} (the pgmq crate's embedded SQL; is its `install-sql-embedded` \
             feature still enabled?)",
            path.display()
        )
    })
}

/// Asks the server where it loads extensions from (on the server's `postgres` database).
async fn server_dir(url: &str) -> anyhow::Result<(PathBuf, Option<String>)> {
    let options = tasker_db::target::parse_url(url)
        .map_err(|err| anyhow::anyhow!("{err}; check DATABASE_URL"))?
        .database("postgres");
    let target = tasker_db::target::DatabaseTarget::from_options(&options);
    let config = tasker_db::pool::PoolConfig::from_options(options);
    let pool = super::connect_with(config, url, &target).await?;
    let result = tasker_db::migrate::server_extension_dir(&pool).await;
    pool.close().await;
    result.map_err(|err| {
        anyhow::anyhow!(
            "{} on {target} (reading `pg_config` needs a superuser; pass --dir to name the \
             extension directory yourself)",
            super::explain(&err, url)
        )
    })
}

/// Writes through a temporary file in the same directory, so the server never reads half a file.
fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tasker-tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| {
            format!(
                "failed to write {} (the server's extension directory usually needs root: run \
                 the command with sudo, or pass --dir)",
                path.display()
            )
        })
}
