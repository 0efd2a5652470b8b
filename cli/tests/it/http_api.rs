use serde_json::json;

use crate::harness::*;

#[test]
fn routes_keep_the_original_shapes() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let health = loopsy.get("/api/v1/health", None);
    assert_eq!(health.status, 200);
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], "1.0.53");
    assert!(body["uptime"].is_u64());
    let node_id = body["nodeId"].as_str().expect("nodeId").to_owned();

    let identity = loopsy.get("/api/v1/identity", Some(&key));
    assert_eq!(identity.status, 200);
    let body = identity.json();
    for field in [
        "nodeId",
        "hostname",
        "platform",
        "version",
        "port",
        "capabilities",
    ] {
        assert!(
            body.get(field).is_some(),
            "identity.{field} missing: {body}"
        );
    }
    assert_eq!(body["nodeId"], node_id);
    assert_eq!(body["port"], loopsy.port);
    assert_eq!(body["platform"], "linux");

    let status = loopsy.get("/api/v1/status", Some(&key)).json();
    for pointer in [
        "/nodeId",
        "/hostname",
        "/platform",
        "/version",
        "/uptime",
        "/peers/total",
        "/peers/online",
        "/peers/offline",
        "/jobs/active",
        "/jobs/total",
        "/context/entries",
    ] {
        assert!(
            status.pointer(pointer).is_some(),
            "status{pointer} missing: {status}"
        );
    }
}

#[test]
fn missing_and_wrong_keys_get_the_original_errors() {
    let loopsy = Loopsy::started();
    let missing = loopsy.get("/api/v1/status", None);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json(),
        json!({"error":{"code":1001,"message":"Missing Authorization header"}})
    );
    let key = loopsy.key();
    // A near miss and a prefix of the real key are as wrong as anything else.
    for wrong in ["nope", &key[..32], &format!("{key}x"), ""] {
        let response = loopsy.http(
            "GET",
            "/api/v1/identity",
            &[("Authorization", &format!("Bearer {wrong}"))],
            None,
        );
        assert_eq!(response.status, 403, "{wrong}");
        assert_eq!(
            response.json(),
            json!({"error":{"code":1002,"message":"Invalid API key"}})
        );
    }
    // The original accepts the bare key without the Bearer prefix.
    assert_eq!(
        loopsy
            .http("GET", "/api/v1/identity", &[("Authorization", &key)], None)
            .status,
        200
    );
}

#[test]
fn unknown_routes_are_json_404s() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let response = loopsy.get("/api/v1/nothing-here", Some(&key));
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"]["code"], 9003);
    // Without a key, nothing about the route table is revealed.
    assert_eq!(loopsy.get("/api/v1/nothing-here", None).status, 401);
}

#[test]
fn web_pages_cannot_reach_the_daemon() {
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let bearer = format!("Bearer {key}");
    let own_origin = format!("http://127.0.0.1:{}", loopsy.port);
    // DNS rebinding: the attacker's name resolves to us, the Host header gives it away.
    for host in ["evil.example", "localhost.evil.example"] {
        let response = loopsy.http("GET", "/api/v1/health", &[("Host", host)], None);
        assert_eq!(response.status, 403, "Host {host}");
        let response = loopsy.http(
            "GET",
            "/api/v1/status",
            &[("Host", host), ("Authorization", &bearer)],
            None,
        );
        assert_eq!(response.status, 403, "Host {host} with a key");
    }
    // Another origin, even on localhost.
    for origin in ["https://evil.example", "http://localhost:3000", "null"] {
        let response = loopsy.http(
            "GET",
            "/api/v1/status",
            &[("Origin", origin), ("Authorization", &bearer)],
            None,
        );
        assert_eq!(response.status, 403, "Origin {origin}");
        assert!(response.header("access-control-allow-origin").is_none());
    }
    let response = loopsy.http(
        "GET",
        "/api/v1/health",
        &[("Sec-Fetch-Site", "cross-site")],
        None,
    );
    assert_eq!(response.status, 403);
    // A CORS preflight gets no permission either.
    let preflight = loopsy.http(
        "OPTIONS",
        "/api/v1/status",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_eq!(preflight.status, 403);
    assert!(preflight.header("access-control-allow-origin").is_none());
    // The daemon's own origin and plain clients are fine.
    let response = loopsy.http(
        "GET",
        "/api/v1/status",
        &[("Origin", &own_origin), ("Authorization", &bearer)],
        None,
    );
    assert_eq!(response.status, 200);
    assert!(
        response.header("access-control-allow-origin").is_none(),
        "never any CORS header"
    );
    let localhost = format!("localhost:{}", loopsy.port);
    assert_eq!(
        loopsy
            .http("GET", "/api/v1/health", &[("Host", &localhost)], None)
            .status,
        200
    );
}

#[test]
fn rpc_over_http_and_its_bad_input() {
    let loopsy = Loopsy::started();
    let bearer = format!("Bearer {}", loopsy.key());
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let ok = loopsy.http(
        "POST",
        "/rpc",
        &headers,
        Some(br#"{"jsonrpc":"2.0","id":7,"method":"identity"}"#),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["id"], 7);
    assert!(ok.json()["result"]["nodeId"].is_string());

    let garbled = loopsy.http(
        "POST",
        "/rpc",
        &headers,
        Some(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"meth"),
    );
    assert_eq!(garbled.status, 400);
    assert_eq!(garbled.json()["error"]["code"], -32700);
    assert!(
        garbled.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON"))
    );

    let unknown = loopsy.http(
        "POST",
        "/rpc",
        &headers,
        Some(br#"{"jsonrpc":"2.0","id":2,"method":"launch.missiles"}"#),
    );
    assert_eq!(unknown.json()["error"]["code"], -32601);

    let bad_params = loopsy.http(
        "POST",
        "/rpc",
        &headers,
        Some(br#"{"jsonrpc":"2.0","id":3,"method":"status","params":{"x":1}}"#),
    );
    assert_eq!(bad_params.status, 400);
    assert_eq!(bad_params.json()["error"]["code"], -32602);

    // Key management is for the owner on the Unix socket only, even with the owner key.
    let show = loopsy.http(
        "POST",
        "/rpc",
        &headers,
        Some(br#"{"jsonrpc":"2.0","id":4,"method":"key.show"}"#),
    );
    assert_eq!(show.status, 403);
    assert!(!show.body.contains(&loopsy.key()));

    // Unauthenticated garbage gets 401, not a parse error.
    let anonymous = loopsy.http("POST", "/rpc", &[], Some(b"garbage"));
    assert_eq!(anonymous.status, 401);

    let big = vec![b' '; 1024 * 1024 + 1];
    let too_large = loopsy.http("POST", "/rpc", &headers, Some(&big));
    assert_eq!(too_large.status, 413);

    assert_eq!(
        loopsy.get("/api/v1/health", None).status,
        200,
        "the daemon keeps serving"
    );
}
