//! The phone app as a browser gets it: the page revalidated with its ETag (a
//! warm open is one 304), the bundles by content name, cached for good and sent
//! compressed as the browser accepts.

use actix_web::http::header;

use crate::support::*;

/// `GET url` with `headers`, without decompressing; status, headers and body.
async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, header::HeaderMap, Vec<u8>) {
    let mut request = awc::Client::new().get(url).no_decompress();
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
    let (status, headers, page) = get(&format!("{}/app", relay.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(value(&headers, "cache-control"), "no-cache");
    let etag = value(&headers, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let page = String::from_utf8(page).unwrap();
    let script = page
        .split('"')
        .find(|part| part.starts_with("/app/assets/app.") && part.ends_with(".js"))
        .unwrap_or_else(|| panic!("no content-named script in {page}"))
        .to_owned();
    assert_eq!(
        script.len(),
        "/app/assets/app.".len() + 12 + ".js".len(),
        "{script}"
    );

    let (status, _, body) = get(&format!("{}/app", relay.url), &[("If-None-Match", &etag)]).await;
    assert_eq!(
        (status, body.len()),
        (304, 0),
        "a warm open revalidates for nothing"
    );

    let url = format!("{}{script}", relay.url);
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
