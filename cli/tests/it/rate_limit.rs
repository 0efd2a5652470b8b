use std::time::Duration;

use crate::harness::*;

#[test]
fn peers_get_429_with_retry_after_then_recover() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let peer_key = "0123456789abcdef".repeat(4);
    loopsy.write_config(|text| {
        with_peers(text, &[("laptop", &peer_key)]).replace("  default: 120", "  default: 30")
    });
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);

    let mut admitted = 0;
    let limited = loop {
        let response = loopsy.get("/api/v1/status", Some(&peer_key));
        if response.status == 429 {
            break response;
        }
        assert_eq!(response.status, 200);
        admitted += 1;
        // 30 as a burst, plus at most one refill (one every 2 s) on a slow machine.
        assert!(admitted <= 31, "the limit of 30/min was not enforced");
    };
    assert!(
        admitted >= 30,
        "a full minute's quota is admitted as a burst: {admitted}"
    );
    assert_eq!(limited.json()["error"]["code"], 9002);
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (1..=2).contains(&retry_after),
        "one request refills every 2 s: {retry_after}"
    );

    // The owner on this machine is never limited, and health is never metered.
    let key = loopsy.key();
    for _ in 0..100 {
        assert_eq!(loopsy.get("/api/v1/status", Some(&key)).status, 200);
    }
    assert_eq!(loopsy.get("/api/v1/health", None).status, 200);

    sleep(Duration::from_secs(retry_after));
    assert_eq!(
        loopsy.get("/api/v1/status", Some(&peer_key)).status,
        200,
        "recovered after Retry-After"
    );
    assert_eq!(
        loopsy.get("/api/v1/status", Some(&peer_key)).status,
        429,
        "and limited again"
    );
}
