//! The OpenAPI document (`GET /api/openapi.json`) against the router: every route of the
//! route table (`natter_server::http::API_ROUTES`, the same table the router is built
//! from) is in the document with exactly its methods, the document has no other paths, and
//! every operation documents the API's error responses.

use natter_server::http::{openapi::ERRORS, API_ROUTES};
use natter_testkit::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

#[tokio::test]
async fn every_route_is_in_the_document_with_its_methods() {
    let server = TestServer::start().await;
    let resp = reqwest::get(server.http("/api/openapi.json"))
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().expect("type"),
        "application/json"
    );
    let doc: Value = resp.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeMap<String, BTreeSet<String>> = paths
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let routed: BTreeMap<String, BTreeSet<String>> = API_ROUTES
        .iter()
        .map(|(path, methods)| {
            (
                path.to_string(),
                methods.iter().map(|m| m.to_string()).collect(),
            )
        })
        .collect();
    for (path, methods) in &routed {
        assert_eq!(
            documented.get(path),
            Some(methods),
            "{path}: the router's methods and the document's"
        );
    }
    for path in documented.keys() {
        assert!(
            routed.contains_key(path),
            "{path} is documented but not routed"
        );
    }
    for path in ["/healthz", "/hooks/{secret}", "/api/rooms/{id}/messages"] {
        assert!(routed.contains_key(path), "{path}");
    }
    // Every operation documents the error statuses, with the error body.
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            for (status, _) in ERRORS {
                let response = &op["responses"][*status];
                assert!(
                    response["content"]["application/json"]["schema"]["$ref"]
                        == "#/components/schemas/Error",
                    "{method} {path} documents {status}"
                );
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
