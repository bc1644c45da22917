//! Tests for tidy: the real workspace passes, and a small fixture workspace fails each rule.

use std::path::{Path, PathBuf};

use super::{Rule, check, edges::parse_allow_list};

/// The real workspace must be tidy: this is `cargo xtask tidy` as a test.
#[test]
fn workspace_is_tidy() {
    let root = crate::workspace_root();
    let violations = check(&root).expect("tidy runs");
    let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        report.is_empty(),
        "tidy found problems:\n{}",
        report.join("\n")
    );
}

/// A minimal tidy workspace in a fresh temporary directory.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = std::env::temp_dir().join(format!("tasker-tidy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let fixture = Fixture { root };
        fixture.write(
            "docs/ARCHITECTURE.md",
            "# Architecture\n\n<!-- tidy:edges:start -->\n```text\ntasker-state -> (none)\n\
             tasker-models -> tasker-state\n```\n<!-- tidy:edges:end -->\n",
        );
        fixture.krate("tasker-state", &[]);
        fixture.krate("tasker-models", &["tasker-state"]);
        fixture.krate("tasker-shared", &["tasker-state", "tasker-models"]);
        fixture.write(
            "xtask/Cargo.toml",
            "[package]\nname = \"xtask\"\n\n[dependencies]\ntasker-state = { path = \"../crates/tasker-state\" }\n",
        );
        fixture.write("xtask/src/main.rs", "//! Tasks.\nfn main() {}\n");
        fixture.write("migrations/20260101000000_init.sql", "select 1;\n");
        fixture
    }

    fn krate(&self, name: &str, deps: &[&str]) {
        let mut manifest = format!("[package]\nname = \"{name}\"\n\n[dependencies]\n");
        for dep in deps {
            manifest.push_str(&format!("{dep} = {{ path = \"../{dep}\" }}\n"));
        }
        self.write(&format!("crates/{name}/Cargo.toml"), &manifest);
        self.write(
            &format!("crates/{name}/src/lib.rs"),
            "//! A crate.\n\nmod inner;\n",
        );
        self.write(&format!("crates/{name}/src/inner.rs"), "//! A module.\n");
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn remove(&self, path: &str) {
        std::fs::remove_file(self.root.join(path)).unwrap();
    }

    /// The rules broken, with the path and message of each violation.
    fn violations(&self) -> Vec<(Rule, String)> {
        check(&self.root)
            .expect("tidy runs")
            .into_iter()
            .map(|violation| (violation.rule, violation.to_string()))
            .collect()
    }

    fn path(&self) -> &Path {
        &self.root
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.path());
    }
}

fn rules(violations: &[(Rule, String)]) -> Vec<Rule> {
    violations.iter().map(|(rule, _)| *rule).collect()
}

#[test]
fn fixture_is_tidy() {
    let fixture = Fixture::new("clean");
    assert_eq!(fixture.violations(), vec![]);
}

#[test]
fn module_without_doc_fails() {
    let fixture = Fixture::new("module-doc");
    fixture.write(
        "crates/tasker-state/src/inner.rs",
        "\n// just a comment\npub fn f() {}\n",
    );
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::ModuleDoc]);
    assert!(
        violations[0]
            .1
            .starts_with("crates/tasker-state/src/inner.rs:1: [module-doc]")
    );
}

#[test]
fn crate_depending_on_facade_fails() {
    let fixture = Fixture::new("facade");
    fixture.krate("tasker-temp", &["tasker-shared"]);
    fixture.write(
        "docs/ARCHITECTURE.md",
        "<!-- tidy:edges:start -->\ntasker-state -> (none)\ntasker-models -> tasker-state\n\
         tasker-temp -> tasker-shared\n<!-- tidy:edges:end -->\n",
    );
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::FacadeDependency]);
    assert!(
        violations[0]
            .1
            .contains("`tasker-temp` depends on the facade `tasker-shared`")
    );
}

#[test]
fn edge_not_in_allow_list_fails() {
    let fixture = Fixture::new("edge");
    fixture.krate("tasker-state", &["tasker-models"]);
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::DependencyEdge]);
    assert!(
        violations[0]
            .1
            .contains("edge `tasker-state -> tasker-models` is not in the allow-list")
    );
}

#[test]
fn stale_allow_list_entry_fails() {
    let fixture = Fixture::new("stale");
    fixture.krate("tasker-models", &[]);
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::DependencyEdge]);
    assert!(
        violations[0]
            .1
            .contains("names `tasker-models -> tasker-state` but the crate does not")
    );
}

#[test]
fn crate_missing_from_allow_list_fails() {
    let fixture = Fixture::new("missing");
    fixture.krate("tasker-cache", &[]);
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::DependencyEdge]);
    assert!(
        violations[0]
            .1
            .contains("crate `tasker-cache` is missing from the allow-list")
    );
}

#[test]
fn long_file_fails_unless_generated() {
    let fixture = Fixture::new("length");
    let long = format!("//! Long.\n{}", "fn f() {}\n".repeat(800));
    fixture.write("crates/tasker-state/src/inner.rs", &long);
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::FileLength]);
    assert!(violations[0].1.contains("801 lines, over the limit of 800"));

    let generated = format!(
        "//! Generated.\n// @generated by cargo xtask codegen\n{}",
        "fn f() {}\n".repeat(800)
    );
    fixture.write("crates/tasker-state/src/inner.rs", &generated);
    assert_eq!(fixture.violations(), vec![]);
}

#[test]
fn unfinished_code_fails() {
    let cases = [
        concat!("#[test]\n#[", "ignore]\nfn t() {}\n"),
        concat!("fn f() { todo", "!() }\n"),
        concat!("fn f() { unimplemented", "!(\"x\") }\n"),
    ];
    for (index, body) in cases.into_iter().enumerate() {
        let fixture = Fixture::new(&format!("unfinished-{index}"));
        fixture.write(
            "crates/tasker-models/src/inner.rs",
            &format!("//! A module.\n{body}"),
        );
        assert_eq!(
            rules(&fixture.violations()),
            vec![Rule::UnfinishedCode],
            "case {body:?}"
        );
    }
}

#[test]
fn sql_outside_db_fails() {
    let fixture = Fixture::new("sql");
    fixture.write(
        "crates/tasker-models/src/inner.rs",
        concat!(
            "//! A module.\nfn f() { let _ = sqlx::",
            "query(\"select 1\"); }\n"
        ),
    );
    assert_eq!(rules(&fixture.violations()), vec![Rule::SqlOutsideDb]);

    // SQL reaching sqlx by other routes: a transaction's opening statement, SQL text.
    for line in [
        concat!("let tx = pool.begin", "_with(BEGIN_ASYNC).await;"),
        concat!(
            "const BEGIN_ASYNC: &str = \x22BEG",
            "IN; SET LO",
            "CAL synchronous_commit = off\x22;"
        ),
        concat!("let sql = \x22SEL", "ECT 1\x22;"),
    ] {
        fixture.remove("crates/tasker-models/src/inner.rs");
        fixture.write(
            "crates/tasker-models/src/inner.rs",
            &format!("//! A module.\nfn f() {{ {line} }}\n"),
        );
        let found = fixture.violations();
        assert!(
            rules(&found).contains(&Rule::SqlOutsideDb),
            "{line}: {found:?}"
        );
    }

    // The same line inside tasker-db is where SQL belongs.
    fixture.remove("crates/tasker-models/src/inner.rs");
    fixture.write("crates/tasker-models/src/inner.rs", "//! A module.\n");
    fixture.krate("tasker-db", &[]);
    fixture.write(
        "crates/tasker-db/src/inner.rs",
        concat!(
            "//! A module.\nfn f() { let _ = sqlx::",
            "query(\"select 1\"); }\n"
        ),
    );
    fixture.write(
        "docs/ARCHITECTURE.md",
        "<!-- tidy:edges:start -->\ntasker-state -> (none)\ntasker-models -> tasker-state\n\
         tasker-db -> (none)\n<!-- tidy:edges:end -->\n",
    );
    assert_eq!(fixture.violations(), vec![]);
}

#[test]
fn only_the_metrics_crate_may_depend_on_the_otel_sdk() {
    let fixture = Fixture::new("metrics-sdk");
    fixture.write(
        "docs/ARCHITECTURE.md",
        "<!-- tidy:edges:start -->\ntasker-state -> (none)\ntasker-models -> tasker-state\n\
         tasker-metrics -> (none)\n<!-- tidy:edges:end -->\n",
    );
    fixture.krate("tasker-metrics", &[]);
    fixture.write(
        "crates/tasker-metrics/Cargo.toml",
        "[package]\nname = \"tasker-metrics\"\n\n[dependencies]\nopentelemetry_sdk = \"0.33\"\n",
    );
    assert_eq!(fixture.violations(), vec![]);

    // The exception is the SDK only: a subscriber is still the binaries' business.
    fixture.write(
        "crates/tasker-metrics/Cargo.toml",
        "[package]\nname = \"tasker-metrics\"\n\n[dependencies]\nopentelemetry_sdk = \"0.33\"\n\
         tracing-subscriber = \"0.3\"\n",
    );
    assert_eq!(
        rules(&fixture.violations()),
        vec![Rule::SubscriberInLibrary]
    );

    // ...unless it is optional (the `subscriber` feature only binaries enable).
    fixture.write(
        "crates/tasker-metrics/Cargo.toml",
        "[package]\nname = \"tasker-metrics\"\n\n[dependencies]\nopentelemetry_sdk = \"0.33\"\n\
         tracing-subscriber = { version = \"0.3\", optional = true }\n\
         opentelemetry-otlp = { version = \"0.33\", optional = true }\n",
    );
    assert_eq!(fixture.violations(), vec![]);

    // Any other library with the SDK fails.
    fixture.write(
        "crates/tasker-metrics/Cargo.toml",
        "[package]\nname = \"tasker-metrics\"\n",
    );
    fixture.write(
        "crates/tasker-state/Cargo.toml",
        "[package]\nname = \"tasker-state\"\n\n[dependencies]\nopentelemetry_sdk = \"0.33\"\n",
    );
    assert_eq!(
        rules(&fixture.violations()),
        vec![Rule::SubscriberInLibrary]
    );
}

#[test]
fn subscriber_in_library_fails() {
    let fixture = Fixture::new("subscriber");
    fixture.write(
        "crates/tasker-state/Cargo.toml",
        "[package]\nname = \"tasker-state\"\n\n[dependencies]\ntracing-subscriber = \"0.3\"\n",
    );
    assert_eq!(
        rules(&fixture.violations()),
        vec![Rule::SubscriberInLibrary]
    );

    // Tests may install a subscriber.
    fixture.write(
        "crates/tasker-state/Cargo.toml",
        "[package]\nname = \"tasker-state\"\n\n[dev-dependencies]\ntracing-subscriber = \"0.3\"\n",
    );
    assert_eq!(fixture.violations(), vec![]);
}

#[test]
fn bad_migration_names_fail() {
    let fixture = Fixture::new("migrations");
    fixture.write("migrations/2026_init.sql", "");
    fixture.write("migrations/20260101000000_Other.sql", "");
    fixture.write("migrations/20260101000000_again.sql", "");
    let violations = fixture.violations();
    assert_eq!(rules(&violations), vec![Rule::MigrationName; 3]);
    assert!(
        violations
            .iter()
            .any(|(_, message)| message.contains("is also used by"))
    );
}

#[test]
fn allow_list_parses_lines_and_rejects_garbage() {
    let allow = parse_allow_list(
        "x\n<!-- tidy:edges:start -->\n```text\na -> b, c\nd -> (none)\n```\n<!-- tidy:edges:end -->",
    )
    .unwrap();
    assert_eq!(allow["a"].iter().collect::<Vec<_>>(), ["b", "c"]);
    assert!(allow["d"].is_empty());

    let error =
        parse_allow_list("<!-- tidy:edges:start -->\na b\n<!-- tidy:edges:end -->").unwrap_err();
    assert_eq!(
        error.to_string(),
        "allow-list line `a b` is not `crate -> dep, dep`"
    );
    assert!(parse_allow_list("no markers").is_err());
}
