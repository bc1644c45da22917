//! The route table, the document and the request schema agree with the code.

use std::collections::BTreeSet;

use tasker_models::request::TaskRequest;

use super::ROUTES;

#[test]
fn every_route_of_the_table_is_in_the_document_and_back() {
    let document: serde_json::Value =
        serde_json::from_str(&super::openapi_json()).expect("the document is JSON");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let declared: BTreeSet<_> = ROUTES
        .iter()
        .map(|route| (route.method.to_string(), route.path.to_owned()))
        .collect();
    assert_eq!(documented, declared);
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
}

#[test]
fn the_request_schema_lists_the_wire_type_s_fields() {
    let document: serde_json::Value =
        serde_json::from_str(&super::openapi_json()).expect("the document is JSON");
    let schema = &document["components"]["schemas"]["TaskRequest"]["properties"];
    let documented: BTreeSet<String> = schema
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    let mut request = TaskRequest::new("ns", "name", "1.0.0", serde_json::json!({}));
    request.parent_correlation_id = Some(tasker_models::ids::CorrelationId::new_v7());
    request.idempotency_key = Some("k".to_owned());
    request.options = Some(serde_json::Map::new());
    let wire: BTreeSet<String> = serde_json::to_value(&request)
        .expect("a request serializes")
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(documented, wire);
}
