//! Helpers: paths of the repository, scratch config roots.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The shipped config root, `config/tasker`.
pub(crate) fn shipped_root() -> PathBuf {
    repo_root().join("config/tasker")
}

/// The predecessor's reference configuration (`../shared/fixtures/reference/config/tasker`).
pub(crate) fn reference_root() -> PathBuf {
    repo_root().join("../shared/fixtures/reference/config/tasker")
}

/// A fresh, empty directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tasker-config-tests")
        .join(format!("{name}-{}-{n}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("clean scratch dir");
    }
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A config root in a scratch directory with the given files (`relative path`, contents).
pub(crate) fn root_with(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = scratch(name);
    for (path, contents) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
        fs::write(path, contents).expect("write file");
    }
    root
}

/// A minimal valid root: empty base files for every section.
pub(crate) fn minimal_root(name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let mut files = vec![
        ("base/common.toml", ""),
        ("base/orchestration.toml", ""),
        ("base/worker.toml", ""),
    ];
    files.extend_from_slice(extra);
    root_with(name, &files)
}
