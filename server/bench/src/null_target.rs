//! A null SCIM target, in process: it parses every request as a real target would and
//! answers success without keeping anything. The benchmarks push into it to measure
//! Ferry's own cost, free of any real target's speed. Kept ([`router_keeping`]), it
//! also keeps each user it creates and answers `GET /Users/{id}` and `id` filters
//! with them, for a reconciliation to read back.

use axum::{
    Json, Router,
    body::Bytes,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// How many operations the target has parsed.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

/// The users a keeping null target created, by id, as it would return them.
#[derive(Clone, Default)]
pub struct Kept(Arc<std::sync::RwLock<std::collections::HashMap<String, Bytes>>>);

impl Kept {
    fn keep(&self, id: String, mut user: Value) {
        user["id"] = json!(id);
        if let Some(user) = user.as_object_mut() {
            user.remove("password");
        }
        let bytes = Bytes::from(serde_json::to_vec(&user).unwrap_or_default());
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, bytes);
    }

    fn get(&self, id: &str) -> Option<Value> {
        let kept = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        serde_json::from_slice(kept.get(id)?).ok()
    }

    pub fn len(&self) -> usize {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The null target that keeps the users it creates (see the module's words).
pub fn router_keeping(counter: Counter, kept: Kept) -> Router {
    let (bulk_kept, list_kept, one_kept) = (kept.clone(), kept.clone(), kept);
    let bulk_counter = counter.clone();
    Router::new()
        .route("/v2/ServiceProviderConfig", get(config))
        .route("/v2/ResourceTypes", get(resource_types))
        .route("/v2/Schemas", get(schemas))
        .route(
            "/v2/Bulk",
            post(move |body: Bytes| keep_bulk(body, bulk_counter.clone(), bulk_kept.clone())),
        )
        .route(
            "/v2/Users",
            get(
                move |axum::extract::Query(query): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| by_filter(query, list_kept.clone()),
            ),
        )
        .route(
            "/v2/Users/{id}",
            get(
                move |axum::extract::Path(id): axum::extract::Path<String>| {
                    let kept = one_kept.clone();
                    async move {
                        match kept.get(&id) {
                            Some(user) => Json(user).into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                },
            ),
        )
        .route(
            "/v2/Groups",
            get(|| async { list_response(Vec::new()) }).post(group),
        )
}

/// Bulk creates, kept.
async fn keep_bulk(body: Bytes, counter: Counter, kept: Kept) -> Response {
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let Some(operations) = doc.get("Operations").and_then(Value::as_array) else {
        return invalid("no Operations");
    };
    let answers: Vec<Value> = operations
        .iter()
        .map(|op| {
            let n = counter.0.fetch_add(1, Ordering::Relaxed);
            let id = format!("null-{n}");
            if let Some(data) = op.get("data") {
                kept.keep(id.clone(), data.clone());
            }
            json!({
                "method": op.get("method").cloned().unwrap_or(Value::Null),
                "bulkId": op.get("bulkId").cloned().unwrap_or(Value::Null),
                "status": "201",
                "location": format!("/v2/Users/{id}"),
            })
        })
        .collect();
    Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
        "Operations": answers,
    }))
    .into_response()
}

/// `filter=id eq "a" or id eq "b" …`: the kept users among them; any other filter
/// (a look-up by `externalId` or `userName`) finds nobody.
async fn by_filter(query: std::collections::HashMap<String, String>, kept: Kept) -> Json<Value> {
    let filter = query.get("filter").cloned().unwrap_or_default();
    let found = filter
        .split(" or ")
        .filter_map(|term| {
            let id = term.trim().strip_prefix("id eq ")?.trim_matches('"');
            kept.get(id)
        })
        .collect();
    list_response(found)
}

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The routes under `/v2`: `ServiceProviderConfig` (bulk of 1000 operations and
/// 1 MiB, like WSO2's defaults), `Bulk`, `Users`, and `Groups` (found never, created
/// and patched without keeping anything), so a run's group phase has somewhere to go.
pub fn router(counter: Counter) -> Router {
    let bulk_counter = counter.clone();
    Router::new()
        .route("/v2/ServiceProviderConfig", get(config))
        .route("/v2/ResourceTypes", get(resource_types))
        .route("/v2/Schemas", get(schemas))
        .route(
            "/v2/Bulk",
            post(move |body: Bytes| bulk(body, bulk_counter.clone())),
        )
        .route(
            "/v2/Users",
            post({
                let counter = counter.clone();
                move |body: Bytes| create(body, counter.clone())
            })
            .get(move || list(counter.clone())),
        )
        .route(
            "/v2/Groups",
            get(|| async { list_response(Vec::new()) }).post(group),
        )
        .route(
            "/v2/Groups/{id}",
            axum::routing::patch(|| async { StatusCode::NO_CONTENT }),
        )
}

async fn group(body: Bytes) -> Response {
    let Ok(mut group) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    group["id"] = json!(format!("group-{}", uuid::Uuid::now_v7()));
    (StatusCode::CREATED, Json(group)).into_response()
}

async fn config() -> Json<Value> {
    Json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576},
        "filter": {"supported": true, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "Bearer"}]
    }))
}

fn list_response(resources: Vec<Value>) -> Json<Value> {
    Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    }))
}

/// Nothing is kept, so every list and every filter is empty.
async fn list(counter: Counter) -> Json<Value> {
    let mut answer = list_response(Vec::new());
    answer.0["totalResults"] = json!(0);
    let _ = counter;
    answer
}

async fn resource_types() -> Json<Value> {
    list_response(vec![
        json!({"name": "User", "endpoint": "/Users", "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
               "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "required": false}]}),
        json!({"name": "Group", "endpoint": "/Groups", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}),
    ])
}

/// The core User attributes a migration maps (RFC 7643 §4.1), enough for a real
/// mapping to check against.
async fn schemas() -> Json<Value> {
    let attribute = |name: &str, kind: &str, required: bool| {
        json!({"name": name, "type": kind, "multiValued": false, "required": required,
               "mutability": "readWrite", "uniqueness": if required { "server" } else { "none" }})
    };
    let complex = |name: &str, multi: bool, subs: Vec<Value>| {
        json!({"name": name, "type": "complex", "multiValued": multi, "required": false,
               "mutability": "readWrite", "uniqueness": "none", "subAttributes": subs})
    };
    let text = |name: &str| attribute(name, "string", false);
    let mut password = text("password");
    password["mutability"] = json!("writeOnly");
    list_response(vec![json!({
        "id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "name": "User",
        "attributes": [
            attribute("userName", "string", true),
            text("displayName"),
            text("externalId"),
            text("nickName"),
            text("title"),
            attribute("active", "boolean", false),
            password,
            complex("name", false, vec![text("givenName"), text("familyName"), text("formatted")]),
            complex("emails", true, vec![text("value"), text("type"), attribute("primary", "boolean", false)]),
            complex("phoneNumbers", true, vec![text("value"), text("type"), attribute("primary", "boolean", false)]),
        ],
    })])
}

fn invalid(detail: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "400", "scimType": "invalidSyntax", "detail": detail
        })),
    )
        .into_response()
}

async fn bulk(body: Bytes, counter: Counter) -> Response {
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let Some(operations) = doc.get("Operations").and_then(Value::as_array) else {
        return invalid("no Operations");
    };
    let answers: Vec<Value> = operations
        .iter()
        .map(|op| {
            let n = counter.0.fetch_add(1, Ordering::Relaxed);
            json!({
                "method": op.get("method").cloned().unwrap_or(Value::Null),
                "bulkId": op.get("bulkId").cloned().unwrap_or(Value::Null),
                "status": "201",
                "location": format!("/v2/Users/null-{n}"),
            })
        })
        .collect();
    Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
        "Operations": answers,
    }))
    .into_response()
}

async fn create(body: Bytes, counter: Counter) -> Response {
    let Ok(mut user) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let n = counter.0.fetch_add(1, Ordering::Relaxed);
    user["id"] = json!(format!("null-{n}"));
    (StatusCode::CREATED, Json(user)).into_response()
}
