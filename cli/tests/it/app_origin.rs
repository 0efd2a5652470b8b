//! The app away from the relay: `loopsy-relay --app-origin`, the daemon's
//! `relay.appOrigin` and `mobile.pair`'s `appUrl`, and, in Chromium, an app on
//! a static host of its own behind a hostile relay that serves other code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::*;

/// A relay front that serves its own page at `/app/` (code that marks the
/// document as tampered) and passes everything else on to `relay_url`: what
/// a relay that wants to run its code on phones would do.
fn hostile_relay(relay_url: &str) -> String {
    let upstream = relay_url.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::spawn(move || serve_or_pass(client, &upstream));
        }
    });
    url
}

const TAMPERED_PAGE: &str =
    "<!doctype html><title>loopsy</title><script src=\"assets/app.js\"></script>";
const TAMPERED_SCRIPT: &str =
    "document.documentElement.dataset.tampered = 'yes'; document.title = 'tampered';";

fn serve_or_pass(client: TcpStream, upstream: &str) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
    if text.starts_with("get /app") && !text.contains("upgrade: websocket") {
        let (kind, body) = if path.ends_with(".js") {
            ("text/javascript", TAMPERED_SCRIPT)
        } else {
            ("text/html", TAMPERED_PAGE)
        };
        let mut client = client;
        let _ = write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = server.write_all(&head);
    // Whatever the reader had buffered past the head belongs upstream too.
    let _ = server.write_all(reader.buffer());
    let (mut to_server, mut from_server) = (server.try_clone().unwrap(), server);
    let mut from_client = client.try_clone().unwrap();
    let mut to_client = client;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(n) = from_server.read(&mut buffer) {
        if n == 0 || to_client.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to_client.shutdown(std::net::Shutdown::Both);
}

#[test]
fn an_app_on_its_own_origin_pairs_and_the_relays_code_never_runs() {
    app_on_its_own_origin("390x844");
}

#[test]
fn an_app_on_its_own_origin_works_on_a_small_phone() {
    app_on_its_own_origin("360x740");
}

fn app_on_its_own_origin(viewport: &str) {
    let app_port = free_port();
    let app = format!("http://127.0.0.1:{app_port}/loopsy/");
    let stack = crate::phone::stack_with_relay_flags(
        Loopsy::started(),
        &["--app-origin".into(), app],
        hostile_relay,
    );
    let front = stack
        .loopsy
        .ok(&["relay", "status", "--json"])
        .parse::<Value>()
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::web::browser_run_with(
        "app-origin",
        stack,
        &[
            ("LOOPSY_APP_PORT", &app_port.to_string()),
            ("LOOPSY_RELAY", &front),
            ("VIEWPORT", viewport),
        ],
    );
}

fn pairing_url(loopsy: &Loopsy, params: Value) -> Result<String, Value> {
    let answer = Socket::connect(loopsy).request("mobile.pair", params);
    match answer.get("result") {
        Some(result) => Ok(result["url"].as_str().unwrap().to_owned()),
        None => Err(answer["error"].clone()),
    }
}

#[test]
fn the_link_points_where_asked_then_where_configured_then_where_the_relay_says() {
    let configured = "https://you.example.io/loopsy";
    let loopsy = Loopsy::started_with(|text| {
        text.replace(
            "  pingIntervalSec: 25\n",
            &format!("  pingIntervalSec: 25\n  appOrigin: {configured}\n"),
        )
    });
    let stack = crate::phone::stack_with_relay_flags(
        loopsy,
        &[
            "--app-origin".into(),
            "https://relay-choice.example/".into(),
        ],
        str::to_owned,
    );
    let relay = stack.relay_url.clone();
    let link_relay = |url: &str| {
        let fragment = url.split_once('#').unwrap().1;
        loopsy_transports::e2e::pairing_link::parse_fragment(fragment)
            .expect("a link")
            .relay_url
    };
    let url = pairing_url(&stack.loopsy, json!({})).unwrap();
    assert!(url.starts_with("https://you.example.io/loopsy/#"), "{url}");
    assert_eq!(link_relay(&url).as_deref(), Some(relay.as_str()));

    let asked = pairing_url(
        &stack.loopsy,
        json!({ "appUrl": "http://10.1.2.3:19532/app/" }),
    )
    .unwrap();
    assert!(asked.starts_with("http://10.1.2.3:19532/app/#"), "{asked}");
    assert_eq!(link_relay(&asked).as_deref(), Some(relay.as_str()));

    for bad in ["javascript:alert(1)", "10.1.2.3", "https://x/?q=1"] {
        let error = pairing_url(&stack.loopsy, json!({ "appUrl": bad })).unwrap_err();
        assert_eq!(error["data"]["httpStatus"], 400, "{bad}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("app's address"),
            "{error}"
        );
    }
}

#[test]
fn without_a_choice_the_link_opens_the_relays_own_app_and_names_no_relay() {
    let stack = crate::phone::stack();
    let url = pairing_url(&stack.loopsy, json!({})).unwrap();
    assert!(
        url.starts_with(&format!("{}/app/#", stack.relay_url)),
        "{url}"
    );
    let fragment = url.split_once('#').unwrap().1;
    let link = loopsy_transports::e2e::pairing_link::parse_fragment(fragment).unwrap();
    assert_eq!(link.relay_url, None);
}

#[test]
fn a_config_with_an_app_origin_that_is_no_page_address_is_refused() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| {
        text.replace(
            "  pingIntervalSec: 25\n",
            "  pingIntervalSec: 25\n  appOrigin: app.example.com\n",
        )
    });
    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("relay.appOrigin"), "{said}");
    assert!(said.contains("must start with https://"), "{said}");
}

/// What `loopsy up --lan` does, on loopback: the daemon serves the app it
/// embeds, its CSP lets the page reach the daemon's relay (and no other),
/// and a phone pairs from that page and drives a shell; the app and the
/// laptop agree on the build.
#[test]
fn the_daemon_serves_the_app_it_embeds_and_a_phone_pairs_from_it() {
    let loopsy = Loopsy::started();
    let origin = format!("http://127.0.0.1:{}", loopsy.port);
    let stack = crate::phone::stack_with_relay_flags(
        loopsy,
        &["--allowed-origin".into(), origin.clone()],
        str::to_owned,
    );
    let page = stack.loopsy.get("/app/", None);
    assert_eq!(page.status, 200);
    let policy = page
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    let relay_socket = stack.relay_url.replace("http://", "ws://");
    assert!(policy.contains(&format!(" {relay_socket}")), "{policy}");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("*"), "{policy}");
    let status: Value =
        Socket::connect(&stack.loopsy).request("status", json!({}))["result"].clone();
    let build = status["daemon"]["webApp"].as_str().unwrap().to_owned();
    assert_eq!(build.len(), 12, "{status}");
    assert!(
        page.body.contains(&format!("assets/app.{build}.js")),
        "the page is the build the daemon reports"
    );

    crate::web::browser_run_paired_by(
        "pair-and-type",
        stack,
        &[],
        &["--app-url", &format!("{origin}/app/")],
    );
}

/// The script run inside a network namespace of its own: this machine's LAN
/// address is 10.77.0.2 there (on `lo`, with a default route), so `loopsy up
/// --lan` binds every interface without touching a real network. It runs
/// `up --lan`, reads the pairing URL and code it prints, asks the relay for
/// its `/app/`, and has Chromium pair from the URL and drive a shell.
const LAN_UP_SCRIPT: &str = r#"
set -u
ip link set lo up && ip addr add 10.77.0.2/32 dev lo && ip route add default dev lo || exit 90
"$@" > "$OUT/up.log" 2>&1 &
up=$!
i=0
until grep -q "Then type this code" "$OUT/up.log"; do
  i=$((i+1)); [ $i -gt 300 ] && { kill -INT $up; exit 91; }; sleep 0.1
done
url=$(grep -o 'http://10\.77\.0\.2:[0-9]*/app/#[A-Za-z0-9_-]*' "$OUT/up.log" | head -n 1)
code=$(sed -n 's/.*Then type this code on the phone: *\([0-9][0-9]*\).*/\1/p' "$OUT/up.log")
node -e 'fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text()))' http://10.77.0.2:8787/app/ > "$OUT/relay-app.txt" 2>&1
(cd "$WEB" && node e2e/pair-and-type.mjs "$url" "$code" "$SHOTS") > "$OUT/browser.log" 2>&1
status=$?
kill -INT $up
wait $up
exit $status
"#;

#[test]
fn up_lan_has_the_daemon_serve_the_app_and_a_phone_on_the_network_pairs() {
    if !Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: this machine cannot make a network namespace (`unshare -rn` failed)");
        return;
    }
    let loopsy = Loopsy::new();
    let out = tempfile::tempdir().unwrap();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/lan-up");
    let daemon_port = loopsy.port.to_string();
    let up = loopsy.command(&["up", "--lan", "--port", &daemon_port]);
    let mut words = vec![
        "env".to_owned(),
        format!("HOME={}", loopsy.data().parent().unwrap().display()),
        format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
        up.get_program().to_string_lossy().into_owned(),
    ];
    words.extend(up.get_args().map(|a| a.to_string_lossy().into_owned()));
    let status = Command::new("unshare")
        .args(["-rn", "sh", "-c", LAN_UP_SCRIPT, "lan-up"])
        .args(&words)
        .env("OUT", out.path())
        .env("WEB", &web)
        .env("SHOTS", &shots)
        .status()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap_or_default();
    let (log, browser, relay_app) = (read("up.log"), read("browser.log"), read("relay-app.txt"));
    assert!(
        status.success(),
        "{status}\nup:\n{log}\nbrowser:\n{browser}\nrelay /app/:\n{relay_app}"
    );
    let page = format!("http://10.77.0.2:{daemon_port}/app/");
    assert!(
        log.contains(&format!("phone app served by the daemon at {page}")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{page}#")),
        "the QR opens the daemon's page: {log}"
    );
    assert!(!log.contains("on this machine only"), "{log}");
    assert!(
        relay_app.starts_with("404") && relay_app.contains(&page),
        "the relay serves no app, only where it is: {relay_app}"
    );
}
