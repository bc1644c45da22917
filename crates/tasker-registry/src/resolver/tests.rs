//! Tests for the resolver chain: tier and priority order, hints, the fallback, the explicit
//! mapping, whole-template resolution and the error messages.

use std::sync::Arc;

use tasker_models::template::{Strictness, ValidatedTemplate};

use super::chain::closest;
use super::*;
use crate::handler::{StepContext, StepOutcome};

/// A handler that says which resolver built it.
#[derive(Debug)]
struct Tagged {
    by: String,
    methods: &'static [&'static str],
}

#[async_trait::async_trait]
impl StepHandler for Tagged {
    async fn call(&self, _context: &StepContext) -> StepOutcome {
        StepOutcome::success(serde_json::json!(self.by))
    }

    fn supports_method(&self, method: &str) -> bool {
        self.methods.contains(&method)
    }
}

fn tagged(by: &str) -> Tagged {
    Tagged {
        by: by.to_owned(),
        methods: &["call"],
    }
}

/// A resolver that handles callables starting with `prefix` (every callable when it is empty),
/// knows `knows` and fails to build `fails`.
#[derive(Debug, Clone)]
struct Fake {
    name: &'static str,
    prefix: &'static str,
    knows: &'static [&'static str],
    fails: &'static [&'static str],
}

impl StepHandlerResolver for Fake {
    fn name(&self) -> &str {
        self.name
    }

    fn resolve(&self, request: &HandlerRequest<'_>) -> Resolution {
        let callable = request.callable();
        if !callable.starts_with(self.prefix) {
            Resolution::NotApplicable
        } else if self.knows.contains(&callable) {
            Resolution::Found(Arc::new(tagged(self.name)))
        } else if self.fails.contains(&callable) {
            Resolution::Failed(format!("no credentials configured for {callable}").into())
        } else {
            Resolution::NotFound
        }
    }

    fn callables(&self) -> Vec<String> {
        self.knows
            .iter()
            .map(|&callable| callable.to_owned())
            .collect()
    }
}

fn fake(name: &'static str, knows: &'static [&'static str]) -> Fake {
    Fake {
        name,
        prefix: "",
        knows,
        fails: &[],
    }
}

/// A template with one step per `(callable, hint, method)`, named `s0`, `s1`, ...
fn template(steps: &[(&str, Option<&str>, Option<&str>)]) -> ValidatedTemplate {
    let mut yaml = String::from("name: sample\nnamespace_name: tests\nversion: 1.0.0\nsteps:\n");
    for (index, (callable, hint, method)) in steps.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: s{index}\n    handler:\n      callable: \"{callable}\"\n"
        ));
        if let Some(hint) = hint {
            yaml.push_str(&format!("      resolver: {hint}\n"));
        }
        if let Some(method) = method {
            yaml.push_str(&format!("      method: {method}\n"));
        }
        yaml.push_str("      initialization: {region: eu}\n");
    }
    match ValidatedTemplate::from_yaml_str(&yaml, Strictness::Strict) {
        Ok(loaded) => loaded.template,
        Err(error) => panic!("{error}: {:?}", error.problems()),
    }
}

fn resolve_one(
    chain: &ResolverChain,
    callable: &str,
    hint: Option<&str>,
    method: Option<&str>,
) -> Result<ResolvedHandler, ResolveError> {
    let template = template(&[(callable, hint, method)]);
    let step = &template.steps()[0];
    chain.resolve(&HandlerRequest::for_step(template.template(), step))
}

/// explicit mapping `Known` and `Shared`, custom `payments` (20, `pay:` prefix) and `first`
/// (10), `second` (50), and a fallback that knows `Anything`.
fn standard_chain() -> ResolverChain {
    let mut chain = ResolverChain::new();
    chain.register("Known", tagged(EXPLICIT_MAPPING));
    chain.register("Shared", tagged(EXPLICIT_MAPPING));
    chain
        .add_resolver(
            50,
            Fake {
                name: "second",
                prefix: "",
                knows: &["Both", "OnlySecond", "Shared"],
                fails: &[],
            },
        )
        .expect("unique");
    chain
        .add_resolver(
            20,
            Fake {
                name: "payments",
                prefix: "pay:",
                knows: &["pay:charge"],
                fails: &["pay:refund"],
            },
        )
        .expect("unique");
    chain
        .add_resolver(
            10,
            Fake {
                name: "first",
                prefix: "",
                knows: &["Both", "Shared"],
                fails: &[],
            },
        )
        .expect("unique");
    chain
        .set_fallback(Fake {
            name: "fallback",
            prefix: "",
            knows: &["Anything", "pay:refund"],
            fails: &[],
        })
        .expect("unique");
    chain
}

#[test]
fn resolvers_are_listed_in_the_order_they_are_asked() {
    let chain = standard_chain();
    let listed: Vec<(String, String)> = chain
        .resolvers()
        .into_iter()
        .map(|info| (info.name, info.tier.to_string()))
        .collect();
    let expected = [
        ("explicit_mapping", "explicit"),
        ("first", "custom, priority 10"),
        ("payments", "custom, priority 20"),
        ("second", "custom, priority 50"),
        ("fallback", "fallback"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, tier)| ((*name).to_owned(), (*tier).to_owned()))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn equal_priorities_keep_the_order_they_were_added_in() {
    let mut chain = ResolverChain::new();
    for name in ["b", "a", "c"] {
        chain
            .add_resolver(30, fake(name, &["X"]))
            .expect("unique names");
    }
    chain.add_resolver(29, fake("early", &[])).expect("unique");
    let names: Vec<String> = chain
        .resolvers()
        .into_iter()
        .map(|info| info.name)
        .collect();
    assert_eq!(names, ["explicit_mapping", "early", "b", "a", "c"]);
    let resolved = resolve_one(&chain, "X", None, None).expect("b knows X");
    assert_eq!(resolved.resolver(), "b");
}

/// `(callable, hint, method)` → the resolver that gives the handler.
#[test]
fn resolution_picks_the_first_resolver_that_knows_the_callable() {
    let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        // The explicit mapping comes before every custom resolver, whatever their priority.
        ("Known", None, None, "explicit_mapping"),
        ("Shared", None, None, "explicit_mapping"),
        // Among custom resolvers, the lower priority wins.
        ("Both", None, None, "first"),
        // A resolver that does not know the callable passes it on.
        ("OnlySecond", None, None, "second"),
        // A prefix resolver handles its own form.
        ("pay:charge", None, None, "payments"),
        // The fallback comes last.
        ("Anything", None, None, "fallback"),
        // A hint selects one resolver directly, even a later one.
        ("Both", Some("second"), None, "second"),
        ("Shared", Some("second"), None, "second"),
        ("Known", Some("explicit_mapping"), None, "explicit_mapping"),
        ("Anything", Some("fallback"), None, "fallback"),
        // `call` is what every handler supports, named or not.
        ("Known", None, Some("call"), "explicit_mapping"),
    ];
    let chain = standard_chain();
    for &(callable, hint, method, expected) in cases {
        let resolved = resolve_one(&chain, callable, hint, method).unwrap_or_else(|error| {
            panic!("{callable} (hint {hint:?}) should resolve, got: {error}")
        });
        assert_eq!(
            resolved.resolver(),
            expected,
            "{callable} with hint {hint:?}"
        );
        assert_eq!(resolved.callable(), callable);
        assert_eq!(resolved.method(), method.unwrap_or("call"));
    }
}

/// The kind of error each unresolvable step gives.
#[test]
fn unresolvable_steps_give_typed_errors() {
    let chain = standard_chain();
    let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        ("Nobody", None, None, "not_resolved"),
        ("Nobody", Some("payments_v2"), None, "unknown_resolver"),
        ("Known", Some("payments"), None, "hinted_declined"),
        ("pay:unknown", Some("payments"), None, "hinted_declined"),
        // A resolver that knows the callable but cannot build it stops the search: the
        // fallback, which knows `pay:refund` too, is not asked.
        ("pay:refund", None, None, "handler_failed"),
        ("Known", None, Some("refund"), "unsupported_method"),
    ];
    for &(callable, hint, method, expected) in cases {
        let error =
            resolve_one(&chain, callable, hint, method).expect_err("the case must not resolve");
        let kind = match &error {
            ResolveError::NotResolved { .. } => "not_resolved",
            ResolveError::UnknownResolver { .. } => "unknown_resolver",
            ResolveError::HintedResolverDeclined { .. } => "hinted_declined",
            ResolveError::HandlerFailed { .. } => "handler_failed",
            ResolveError::UnsupportedMethod { .. } => "unsupported_method",
        };
        assert_eq!(kind, expected, "{callable} with hint {hint:?}: {error}");
        assert_eq!(error.callable(), callable);
        assert_eq!(error.step().as_str(), "s0");
    }
}

#[test]
fn an_unknown_callable_lists_every_resolver_asked_in_order() {
    let chain = standard_chain();
    let Err(ResolveError::NotResolved { tried, .. }) = resolve_one(&chain, "Nobody", None, None)
    else {
        panic!("Nobody must not resolve");
    };
    let tried: Vec<(&str, Declined)> = tried
        .iter()
        .map(|attempt| (attempt.resolver.as_str(), attempt.declined))
        .collect();
    assert_eq!(
        tried,
        [
            ("explicit_mapping", Declined::NotFound),
            ("first", Declined::NotFound),
            ("payments", Declined::NotApplicable),
            ("second", Declined::NotFound),
            ("fallback", Declined::NotFound),
        ]
    );

    // A chain with only its (empty) explicit mapping asks just that.
    let Err(ResolveError::NotResolved { tried, .. }) =
        resolve_one(&ResolverChain::new(), "Nobody", None, None)
    else {
        panic!("an empty chain resolves nothing");
    };
    assert_eq!(tried.len(), 1);
    assert_eq!(tried[0].resolver, EXPLICIT_MAPPING);
}

#[test]
fn a_hint_bypasses_the_rest_of_the_chain() {
    let chain = standard_chain();
    // `first` knows `Both`, but the hint sends it to `payments`, which does not handle it.
    let Err(ResolveError::HintedResolverDeclined { attempt, .. }) =
        resolve_one(&chain, "Both", Some("payments"), None)
    else {
        panic!("the hinted resolver must be the only one asked");
    };
    assert_eq!(attempt.resolver, "payments");
    assert_eq!(attempt.declined, Declined::NotApplicable);
    assert_eq!(attempt.tier, ResolverTier::Custom { priority: 20 });
}

#[test]
fn the_explicit_mapping_shares_instances_and_builds_from_factories() {
    let mut chain = ResolverChain::new();
    assert!(!chain.register("Instance", tagged("one")));
    chain.register_factory("Factory", |request| {
        let region = request
            .initialization()
            .get("region")
            .and_then(|value| value.as_str())
            .ok_or("initialization.region is required")?;
        Ok(Arc::new(tagged(region)) as Arc<dyn StepHandler>)
    });
    let template = template(&[
        ("Instance", None, None),
        ("Instance", None, None),
        ("Factory", None, None),
        ("Factory", None, None),
    ]);
    let handlers = chain.resolve_template(&template).expect("all registered");
    let handler = |step: &str| Arc::clone(handlers.get(step).expect("resolved").handler());
    assert!(
        Arc::ptr_eq(&handler("s0"), &handler("s1")),
        "one shared instance"
    );
    assert!(
        !Arc::ptr_eq(&handler("s2"), &handler("s3")),
        "one instance per step"
    );

    // Registering again replaces; unregistering makes the callable unknown.
    assert!(chain.register("Instance", tagged("two")));
    let again = chain.resolve_template(&template).expect("all registered");
    assert!(!Arc::ptr_eq(
        &handler("s0"),
        again.get("s0").expect("resolved").handler()
    ));
    assert!(chain.explicit_mut().unregister("Instance"));
    assert!(!chain.explicit().contains("Instance"));
    assert!(!chain.explicit_mut().unregister("Instance"));
    assert!(matches!(
        resolve_one(&chain, "Instance", None, None),
        Err(ResolveError::NotResolved { .. })
    ));
    chain.explicit_mut().clear();
    assert!(chain.explicit().is_empty());
}

#[test]
fn a_failing_factory_reports_its_error_as_the_source() {
    let mut chain = ResolverChain::new();
    chain.register_factory("NeedsKey", |request| {
        Err(format!(
            "initialization.api_key is missing for step {}",
            request.step_name
        )
        .into())
    });
    let error = resolve_one(&chain, "NeedsKey", None, None).expect_err("factory fails");
    assert!(matches!(error, ResolveError::HandlerFailed { .. }));
    let source = std::error::Error::source(&error).expect("the factory's error is the source");
    assert_eq!(
        source.to_string(),
        "initialization.api_key is missing for step s0"
    );
}

#[test]
fn handlers_may_support_other_methods() {
    let mut chain = ResolverChain::new();
    chain.register(
        "Refunds",
        Tagged {
            by: "refunds".to_owned(),
            methods: &["call", "refund"],
        },
    );
    let resolved = resolve_one(&chain, "Refunds", None, Some("refund")).expect("supported");
    assert_eq!(resolved.method(), "refund");
    assert!(matches!(
        resolve_one(&chain, "Refunds", None, Some("void")),
        Err(ResolveError::UnsupportedMethod { .. })
    ));
}

#[test]
fn resolver_names_are_unique() {
    let mut chain = standard_chain();
    for name in ["explicit_mapping", "first", "fallback"] {
        let error = chain
            .add_resolver(99, fake(name, &[]))
            .expect_err("duplicate name");
        assert_eq!(error.name, name);
    }
    assert!(chain.set_fallback(fake("second", &[])).is_err());
    // Replacing the fallback may keep its name.
    chain
        .set_fallback(fake("fallback", &["Other"]))
        .expect("replacing the fallback");
    let resolved = resolve_one(&chain, "Other", None, None).expect("the new fallback");
    assert_eq!(resolved.resolver(), "fallback");
    assert!(
        resolve_one(&chain, "Anything", None, None).is_err(),
        "old fallback gone"
    );
}

#[test]
fn callables_are_the_sorted_union_of_every_resolver() {
    let chain = standard_chain();
    assert_eq!(
        chain.callables(),
        [
            "Anything",
            "Both",
            "Known",
            "OnlySecond",
            "Shared",
            "pay:charge",
            "pay:refund",
        ]
    );
}

#[test]
fn a_template_resolves_every_step_or_reports_every_missing_one() {
    let chain = standard_chain();
    let good = template(&[
        ("Known", None, None),
        ("Both", None, None),
        ("Anything", Some("fallback"), None),
    ]);
    let handlers = chain.resolve_template(&good).expect("every step resolves");
    assert_eq!(handlers.template(), "tests/sample:1.0.0");
    assert_eq!(handlers.len(), 3);
    let by: Vec<(&str, &str)> = handlers
        .iter()
        .map(|(step, resolved)| (step, resolved.resolver()))
        .collect();
    assert_eq!(
        by,
        [
            ("s0", "explicit_mapping"),
            ("s1", "first"),
            ("s2", "fallback")
        ]
    );
    assert!(handlers.get("missing").is_none());

    let bad = template(&[
        ("Known", None, None),
        ("Payments::Capture", None, None),
        ("Both", Some("explicit_mappings"), None),
        ("Known", Some("payments"), None),
        ("pay:refund", None, None),
        ("Known", None, Some("refund")),
    ]);
    let error = chain
        .resolve_template(&bad)
        .expect_err("five steps cannot resolve");
    let steps: Vec<&str> = error
        .errors
        .iter()
        .map(|error| error.step().as_str())
        .collect();
    assert_eq!(steps, ["s1", "s2", "s3", "s4", "s5"]);
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn error_messages() {
    let chain = standard_chain();
    let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
        ("not_resolved", "Payments::Capture", None, None),
        (
            "unknown_resolver_with_suggestion",
            "Known",
            Some("ExplicitMappingResolver"),
            None,
        ),
        ("unknown_resolver", "Known", Some("grpc"), None),
        ("hinted_not_applicable", "Known", Some("payments"), None),
        ("hinted_not_found", "pay:unknown", Some("payments"), None),
        ("handler_failed", "pay:refund", None, None),
        ("unsupported_method", "Known", None, Some("refund")),
    ];
    for &(name, callable, hint, method) in cases {
        let error = resolve_one(&chain, callable, hint, method).expect_err("must fail");
        let mut text = error.to_string();
        if let Some(source) = std::error::Error::source(&error) {
            text.push_str(&format!("\ncaused by: {source}"));
        }
        insta::assert_snapshot!(name, text);
    }
    let duplicate = ResolverChain::new()
        .add_resolver(10, fake(EXPLICIT_MAPPING, &[]))
        .expect_err("taken");
    insta::assert_snapshot!("duplicate_resolver", duplicate.to_string());
}

#[test]
fn mistyped_hints_get_a_suggestion() {
    let names: Vec<String> = ["explicit_mapping", "payments", "grpc_handlers", "fallback"]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let cases = [
        ("ExplicitMappingResolver", Some("explicit_mapping")),
        ("explicit-mapping", Some("explicit_mapping")),
        ("Payments", Some("payments")),
        ("paymnets", Some("payments")),
        ("grpc", Some("grpc_handlers")),
        ("kafka", None),
        ("", None),
        ("---", None),
    ];
    for (hint, expected) in cases {
        assert_eq!(closest(hint, &names).as_deref(), expected, "hint {hint:?}");
    }
}

#[test]
fn chains_and_their_results_are_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<ResolverChain>();
    shared::<ExplicitMapping>();
    shared::<ResolvedHandler>();
    shared::<TemplateHandlers>();
    shared::<ResolveError>();
    shared::<UnresolvedHandlers>();
}
