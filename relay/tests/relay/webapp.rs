//! The phone app as a browser gets it: the page revalidated with its ETag (a
//! warm open is one 304), the bundles by content name, cached for good and sent
//! compressed as the browser accepts.

use actix_web::http::header;

use crate::support::*;

/// `GET url` with `headers`, without decompressing or following redirects;
/// status, headers and body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, header::HeaderMap, Vec<u8>) {
    // Redirects are not followed: the tests look at them.
    let mut request = awc::Client::builder()
        .max_redirects(0)
        .finish()
        .get(url)
        .no_decompress();
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let map = response.headers().clone();
    let body = response.body().limit(4 << 20).await.unwrap().to_vec();
    (status, map, body)
}

fn value<'a>(headers: &'a header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[actix_rt::test]
async fn the_app_is_cached_for_good_and_the_page_revalidated() {
    let relay = start_relay(&[]).await;
    let (status, headers, page) = get(&format!("{}/app/", relay.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(value(&headers, "cache-control"), "no-cache");
    let etag = value(&headers, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let page = String::from_utf8(page).unwrap();
    let script = page
        .split('"')
        .find(|part| part.starts_with("assets/app.") && part.ends_with(".js"))
        .unwrap_or_else(|| panic!("no content-named script in {page}"))
        .to_owned();
    assert_eq!(
        script.len(),
        "assets/app.".len() + 12 + ".js".len(),
        "{script}"
    );

    let (status, _, body) = get(&format!("{}/app/", relay.url), &[("If-None-Match", &etag)]).await;
    assert_eq!(
        (status, body.len()),
        (304, 0),
        "a warm open revalidates for nothing"
    );

    let url = format!("{}/app/{script}", relay.url);
    let (status, plain_headers, plain) = get(&url, &[("Accept-Encoding", "identity")]).await;
    assert_eq!(status, 200);
    assert_eq!(value(&plain_headers, "content-encoding"), "");
    assert!(value(&plain_headers, "cache-control").contains("immutable"));
    for (accepted, coding) in [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
    ] {
        let (status, headers, body) = get(&url, &[("Accept-Encoding", accepted)]).await;
        assert_eq!(status, 200, "{accepted}");
        assert_eq!(value(&headers, "content-encoding"), coding, "{accepted}");
        assert_eq!(value(&headers, "vary"), "Accept-Encoding");
        assert!(
            value(&headers, "cache-control").contains("max-age=31536000"),
            "{accepted}"
        );
        assert!(
            body.len() * 3 < plain.len(),
            "{coding}: {} of {} bytes",
            body.len(),
            plain.len()
        );
    }
    let (status, _, _) = get(
        &format!("{}/app/assets/app.000000000000.js", relay.url),
        &[],
    )
    .await;
    assert_eq!(status, 404, "a name of another build");
}

#[actix_rt::test]
async fn the_page_lives_in_a_folder_and_its_worker_is_revalidated() {
    let relay = start_relay(&[]).await;
    // The page's paths are relative: `/app` sends the browser to `/app/`.
    let (status, headers, _) = get(&format!("{}/app", relay.url), &[]).await;
    assert_eq!((status, value(&headers, "location")), (308, "/app/"));
    let (status, headers, worker) = get(&format!("{}/app/sw.js", relay.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(value(&headers, "cache-control"), "no-cache");
    assert!(value(&headers, "content-type").starts_with("text/javascript"));
    let etag = value(&headers, "etag").to_owned();
    let worker = String::from_utf8(worker).unwrap();
    assert!(worker.contains("take-over"), "{worker}");
    let (status, _, _) = get(
        &format!("{}/app/sw.js", relay.url),
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(status, 304);
}

/// `--app-origin`: the relay serves no app, says where it is, lets that origin
/// (and only it, besides its own) open WebSockets and ask to revoke itself,
/// and tells the daemon where its pairing links should point.
#[actix_rt::test]
async fn a_relay_with_an_app_origin_serves_no_app_and_allows_that_origin() {
    let app = "https://app.example.com";
    let relay = start_relay(&["--app-origin", app]).await;
    for path in ["/app", "/app/", "/app/assets/app.js"] {
        let (status, _, body) = get(&format!("{}{path}", relay.url), &[]).await;
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("https://app.example.com/"), "{path}: {body}");
        assert!(!body.contains("<script"), "{path}: {body}");
    }

    // A phone that once ran this relay's app has its worker replaced by one that retires it.
    let (status, _, worker) = get(&format!("{}/app/sw.js", relay.url), &[]).await;
    let worker = String::from_utf8(worker).unwrap();
    assert_eq!(status, 200);
    assert!(
        worker.contains("unregister()") && worker.contains("caches.delete"),
        "{worker}"
    );

    let (device, secret) = register(&relay).await;
    let (status, issued) = post(
        format!("{}/pair/issue?device_id={device}", relay.url),
        Some(&secret),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(issued["appUrl"], "https://app.example.com/");

    let laptop = |origin: &'static str| {
        awc::Client::new()
            .ws(format!("{}/laptop/connect?device_id={device}", relay.url))
            .origin(origin)
            .protocols([
                loopsy_transports::relay_wire::SUBPROTOCOL.to_owned(),
                format!("loopsy.bearer.{secret}"),
            ])
            .connect()
    };
    assert!(laptop(app).await.is_ok(), "the app's origin may connect");
    assert!(matches!(
        laptop("https://evil.example").await,
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) if s == 403
    ));

    let preflight = |origin: &'static str| {
        awc::Client::new()
            .request(
                actix_web::http::Method::OPTIONS,
                format!("{}/device/{device}/phones/self?phone_id=x", relay.url),
            )
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "DELETE"))
            .insert_header(("Access-Control-Request-Headers", "authorization"))
            .send()
    };
    let allowed = preflight(app).await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(value(allowed.headers(), "access-control-allow-origin"), app);
    assert!(value(allowed.headers(), "access-control-allow-headers").contains("authorization"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(value(refused.headers(), "access-control-allow-origin"), "");

    // A wrong phone secret from the app's origin: refused, readable by the app.
    let answer = awc::Client::new()
        .delete(format!(
            "{}/device/{device}/phones/self?phone_id=x",
            relay.url
        ))
        .insert_header(("Origin", app))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(value(answer.headers(), "access-control-allow-origin"), app);
}

#[actix_rt::test]
async fn an_app_origin_that_is_no_page_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loopsy-relay"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--app-origin", "app.example.com"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("must start with https://"), "{said}");
}

#[actix_rt::test]
async fn pages_of_a_sandboxed_frame_spend_no_registration() {
    let relay = start_relay(&[]).await;
    let answer = awc::Client::new()
        .post(format!("{}/device/register", relay.url))
        .insert_header(("Origin", "null"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        403,
        "Origin: null is any site's sandboxed frame"
    );
    let native = awc::Client::new()
        .post(format!("{}/device/register", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(native.status(), 201, "a native client sends no Origin");
}
