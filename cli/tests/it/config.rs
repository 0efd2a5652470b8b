use crate::harness::*;

#[test]
fn a_wrong_type_stops_start_and_names_the_key() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| text.replace("port: 19532", "port: \"nineteen\""));
    let out = loopsy.run(&["start"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("server.port"), "{err}");
    assert!(!loopsy.is_running());
    let fg = loopsy.run(&["start", "--foreground"]);
    assert!(!fg.status.success());
    assert!(stderr(&fg).contains("server.port"));
}

#[test]
fn broken_yaml_and_missing_files_are_errors_not_defaults() {
    let loopsy = Loopsy::new();
    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("loopsy init"), "{}", stderr(&out));

    loopsy.ok(&["init"]);
    loopsy.write_config(|text| format!("{text}\nserver: [unclosed\n"));
    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("YAML"), "{}", stderr(&out));
}

#[test]
fn unknown_keys_are_warned_about() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    loopsy.write_config(|text| text.replace("  port: 19532", "  port: 19532\n  prot: 1"));
    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("`server.prot`"), "{}", stderr(&out));
    let doctor = loopsy.ok(&["doctor"]);
    assert!(
        doctor.contains("[WARN] config: unknown key `server.prot`"),
        "{doctor}"
    );
}

#[test]
fn flags_beat_env_beat_file() {
    let mut loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let file_port = free_port();
    let env_port = free_port();
    loopsy.write_config(|text| text.replace("port: 19532", &format!("port: {file_port}")));
    loopsy
        .env
        .push(("LOOPSY_SERVER__PORT".into(), env_port.to_string()));
    loopsy.ok(&["start"]);
    let status: serde_json::Value =
        serde_json::from_str(&loopsy.ok(&["status", "--json"])).expect("JSON");
    assert_eq!(
        status["daemon"]["listen"],
        format!("127.0.0.1:{env_port}"),
        "env beats the file"
    );
    loopsy.ok(&["stop"]);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let status: serde_json::Value =
        serde_json::from_str(&loopsy.ok(&["status", "--json"])).expect("JSON");
    assert_eq!(
        status["daemon"]["listen"],
        format!("127.0.0.1:{}", loopsy.port),
        "the flag beats env"
    );
}

#[test]
fn a_weak_key_is_refused() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let key = loopsy.key();
    loopsy.write_config(|text| text.replace(&key, "password123"));
    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("auth.apiKey") && stderr(&out).contains("key generate"),
        "{}",
        stderr(&out)
    );
    let doctor = loopsy.run(&["doctor", "--json"]);
    assert_eq!(doctor.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&doctor)).expect("doctor JSON");
    let key_check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "api key")
        .cloned();
    assert_eq!(
        key_check.as_ref().map(|c| c["level"].clone()),
        Some("fail".into()),
        "{report}"
    );
    assert!(
        !stdout(&doctor).contains("password123"),
        "doctor never prints the key"
    );
}

#[test]
fn loose_permissions_are_flagged_then_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    std::fs::set_permissions(loopsy.data(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    std::fs::set_permissions(
        loopsy.path("config.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod file");

    let doctor = loopsy.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1), "doctor fails");
    let text = stdout(&doctor);
    assert!(
        text.contains("[FAIL] data dir") && text.contains("chmod 700"),
        "{text}"
    );
    assert!(
        text.contains("[FAIL] config file") && text.contains("chmod 600"),
        "{text}"
    );

    let out = loopsy.run(&["start", "--port", &loopsy.port.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&loopsy.data()), 0o700);
    assert_eq!(mode(&loopsy.path("config.yaml")), 0o600);
    let log = std::fs::read_to_string(loopsy.path("logs/daemon.log")).unwrap_or_default();
    assert!(
        log.contains("tightened"),
        "the daemon says what it fixed: {log}"
    );

    let doctor = loopsy.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&doctor)).expect("doctor JSON");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(doctor.status.code(), Some(0));
}

#[test]
fn doctor_reports_a_busy_port() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    loopsy.write_config(|text| text.replace("port: 19532", &format!("port: {port}")));
    let doctor = loopsy.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(
        stdout(&doctor).contains("[FAIL] port"),
        "{}",
        stdout(&doctor)
    );
    let start = loopsy.run(&["start"]);
    assert!(!start.status.success());
    assert!(
        stderr(&start).contains("--port"),
        "start says how to fix it: {}",
        stderr(&start)
    );
}
