//! `cargo xtask ci`: the whole CI sequence, in the order `.ci/run` runs it.
//!
//! Each step prints a header and its duration; the first failing step stops the run and is named
//! in the error.

use std::{
    net::TcpStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;

/// One step of the sequence.
#[derive(Debug)]
enum Step {
    /// An external command: program and arguments, plus extra environment.
    Cargo {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    Codegen,
    Tidy,
}

/// The sequence documented in README.md.
fn steps(nextest: bool) -> Vec<(&'static str, Step)> {
    let tests = if nextest {
        Step::Cargo {
            args: &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--profile",
                "ci",
            ],
            env: &[],
        }
    } else {
        Step::Cargo {
            args: &[
                "test",
                "--workspace",
                "--all-features",
                "--lib",
                "--bins",
                "--tests",
            ],
            env: &[],
        }
    };
    vec![
        (
            "format",
            Step::Cargo {
                args: &["fmt", "--all", "--check"],
                env: &[],
            },
        ),
        (
            "clippy",
            Step::Cargo {
                args: &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--locked",
                    "--",
                    "-D",
                    "warnings",
                ],
                env: &[],
            },
        ),
        ("tests", tests),
        (
            "doctests",
            Step::Cargo {
                args: &["test", "--doc", "--workspace", "--all-features"],
                env: &[],
            },
        ),
        (
            "docs",
            Step::Cargo {
                args: &["doc", "--workspace", "--no-deps", "--all-features"],
                env: &[("RUSTDOCFLAGS", "-D warnings")],
            },
        ),
        ("codegen", Step::Codegen),
        ("tidy", Step::Tidy),
    ]
}

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    ensure_memcached()?;
    ensure_promtool()?;
    let nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    let steps = steps(nextest);
    let total = steps.len();
    let started = Instant::now();
    for (index, (name, step)) in steps.into_iter().enumerate() {
        println!("\n==> [{}/{total}] {name}", index + 1);
        let step_started = Instant::now();
        match step {
            Step::Cargo { args, env } => {
                println!("    cargo {}", args.join(" "));
                let status = Command::new("cargo")
                    .args(args)
                    .envs(env.iter().copied())
                    .current_dir(root)
                    .status()
                    .with_context(|| format!("starting `cargo {}`", args.join(" ")))?;
                anyhow::ensure!(status.success(), "ci step `{name}` failed ({status})");
            }
            Step::Codegen => crate::codegen::run(root, true)?,
            Step::Tidy => crate::tidy::run(root)?,
        }
        println!("    {name}: ok in {}", human(step_started.elapsed()));
    }
    println!(
        "\nci: all {total} steps passed in {}",
        human(started.elapsed())
    );
    Ok(())
}

/// Where tasker-cache's tests expect memcached.
const MEMCACHED: (&str, u16) = ("127.0.0.1", 11211);

/// tasker-cache's tests need memcached on 127.0.0.1:11211 (`.ci/run` starts it too). Starts it
/// when it is not answering, installing it first when the binary is missing and we are root.
fn ensure_memcached() -> anyhow::Result<()> {
    if TcpStream::connect(MEMCACHED).is_ok() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    let installed = || Command::new("memcached").arg("-V").output().is_ok();
    if !installed() {
        anyhow::ensure!(
            root,
            "memcached is not installed and the tests need it on 127.0.0.1:11211; \
             install it (`sudo apt-get install -y memcached`) or run as root"
        );
        println!("==> installing memcached (apt-get install -y memcached)");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "memcached"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|status| status.success())
        };
        if !install() {
            let _ = Command::new("apt-get").args(["update", "-qq"]).status();
            anyhow::ensure!(install(), "`apt-get install -y memcached` failed");
        }
    }
    println!("==> starting memcached on 127.0.0.1:11211 (tasker-cache's tests need it)");
    let mut command = Command::new("memcached");
    command.args(["-d", "-l", MEMCACHED.0, "-p", "11211", "-m", "64"]);
    if root {
        command.args(["-u", "root"]);
    }
    let status = command.status().context("starting memcached")?;
    anyhow::ensure!(status.success(), "memcached did not start ({status})");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(MEMCACHED).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "memcached started but does not answer on 127.0.0.1:11211"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// tasker-metrics's tests check the Prometheus exposition with `promtool check metrics`, and
/// fail under `CI=true` without it. Installs Debian's `prometheus` package (which provides
/// promtool) when promtool is missing and we are root; otherwise says how to install it.
fn ensure_promtool() -> anyhow::Result<()> {
    let installed = || Command::new("promtool").arg("--version").output().is_ok();
    if installed() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    anyhow::ensure!(
        root,
        "promtool is not installed and tasker-metrics's tests need it to check the Prometheus \
         exposition; install it (`sudo apt-get install -y --no-install-recommends prometheus`) \
         or run as root"
    );
    println!(
        "==> installing promtool (apt-get install -y --no-install-recommends prometheus; \
         tasker-metrics's tests need it)"
    );
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "prometheus",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        anyhow::ensure!(
            install(),
            "`apt-get install -y --no-install-recommends prometheus` failed"
        );
    }
    anyhow::ensure!(
        installed(),
        "the `prometheus` package is installed but `promtool` does not run"
    );
    Ok(())
}

fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}
