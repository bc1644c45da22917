//! The exposition passes the real `promtool check metrics` (Prometheus's parser and linter),
//! from Debian's `prometheus` package. Without promtool the test notes it and checks nothing,
//! except under `CI=true`, where a missing promtool is a failure (`.ci/run` and `cargo xtask
//! ci` install it).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::{installed, record_everything};

#[test]
fn promtool_accepts_the_exposition() -> anyhow::Result<()> {
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    if Command::new("promtool").arg("--version").output().is_err() {
        anyhow::ensure!(
            !in_ci,
            "promtool is missing and CI=true; install it (`apt-get install -y prometheus`)"
        );
        #[expect(clippy::print_stderr, reason = "a note in the test output, not a log")]
        {
            eprintln!("note: promtool is not installed; the exposition was not checked by it");
        }
        return Ok(());
    }
    let metrics = installed();
    record_everything(&metrics);
    let text = metrics.render_prometheus();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())?;
    let output = child.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "promtool rejected the exposition ({}):\n{}{}\n--- exposition ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    Ok(())
}
