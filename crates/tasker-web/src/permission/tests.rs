//! The permission vocabulary and its grants: exact parsing, wildcards, matching.

use super::*;

#[test]
fn every_permission_round_trips_through_its_text() {
    for &permission in Permission::ALL {
        let text = permission.to_string();
        assert_eq!(Permission::parse(&text), Some(permission), "{text}");
        assert_eq!(Grant::parse(&text), Ok(Grant::Permission(permission)));
    }
    assert_eq!(Permission::ALL.len(), 17);
}

#[test]
fn grants_parse_exactly_the_vocabulary() {
    use UnknownGrantReason::*;
    let cases: &[(&str, Result<Grant, UnknownGrantReason>)] = &[
        (
            "tasks:create",
            Ok(Grant::Permission(Permission::TasksCreate)),
        ),
        ("tasks:*", Ok(Grant::Resource(Resource::Tasks))),
        ("worker:*", Ok(Grant::Resource(Resource::Worker))),
        ("task:*", Err(UnknownResource)),
        ("tasks:", Err(UnknownAction)),
        ("*:read", Err(UnknownResource)),
        ("tasks:*x", Err(UnknownAction)),
        ("tasks:**", Err(UnknownAction)),
        ("*", Err(NotResourceAction)),
        ("*:*", Err(UnknownResource)),
        ("", Err(NotResourceAction)),
        ("tasks", Err(NotResourceAction)),
        ("Tasks:create", Err(UnknownResource)),
        ("tasks:Create", Err(UnknownAction)),
        (" tasks:create", Err(UnknownResource)),
        ("tasks:create ", Err(UnknownAction)),
        ("tasks:create:extra", Err(UnknownAction)),
        ("tasks:read", Ok(Grant::Permission(Permission::TasksRead))),
        ("steps:create", Err(UnknownAction)),
    ];
    for (text, expected) in cases {
        let parsed = Grant::parse(text).map_err(|error| {
            assert_eq!(error.grant, *text);
            error.reason
        });
        assert_eq!(&parsed, expected, "{text:?}");
    }
}

#[test]
fn a_resource_wildcard_allows_its_resource_only() {
    let grants = Grants::new(vec![Grant::Resource(Resource::Tasks)]);
    for &permission in Permission::ALL {
        assert_eq!(
            grants.allows(permission),
            permission.resource() == Resource::Tasks,
            "{permission}"
        );
    }
}

#[test]
fn unknown_grants_are_reported_beside_the_known_ones() {
    let (grants, unknown) = Grants::parse(["tasks:read", "*", "templates:*"]);
    assert!(grants.allows(Permission::TasksRead));
    assert!(grants.allows(Permission::TemplatesValidate));
    assert!(!grants.allows(Permission::TasksCreate));
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        unknown[0].to_string(),
        r#"unknown permission "*": not of the form `resource:action` or `resource:*`"#
    );
}

#[test]
fn no_grants_allow_nothing_and_everything_allows_all() {
    for &permission in Permission::ALL {
        assert!(!Grants::default().allows(permission));
        assert!(Grants::everything().allows(permission));
    }
}
