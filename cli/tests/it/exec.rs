use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

fn post(loopsy: &Loopsy, path: &str, body: &Value) -> Http {
    let bearer = format!("Bearer {}", loopsy.key());
    loopsy.http(
        "POST",
        path,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        Some(body.to_string().as_bytes()),
    )
}

fn jobs(loopsy: &Loopsy) -> Vec<Value> {
    loopsy
        .get("/api/v1/execute/jobs", Some(&loopsy.key()))
        .json()["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The next SSE `data:` event (chunk-size lines and keep-alive comments are skipped).
fn next_event(stream: &mut BufReader<std::net::TcpStream>) -> Option<Value> {
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(data) = line.trim().strip_prefix("data: ") {
            return serde_json::from_str(data).ok();
        }
    }
}

/// Opens a streaming run on a raw socket and returns it after the response headers.
fn open_stream(loopsy: &Loopsy, body: &Value) -> BufReader<std::net::TcpStream> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", loopsy.port)).expect("connect");
    let body = body.to_string();
    let request = format!(
        "POST /api/v1/execute/stream HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        loopsy.port,
        loopsy.key(),
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" {
            return reader;
        }
    }
}

#[test]
fn buffered_run_keeps_the_original_shape() {
    let loopsy = Loopsy::started();
    let response = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "sh", "args": ["-c", "echo out; echo err >&2; exit 7"]}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let result = response.json();
    assert_eq!(result["exitCode"], 7);
    assert_eq!(result["stdout"], "out\n");
    assert_eq!(result["stderr"], "err\n");
    assert_eq!(result["killed"], false);
    assert!(result["jobId"].is_string() && result["duration"].is_u64());
    // No shell unless asked for: the argument is passed verbatim.
    let literal = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "echo", "args": ["$HOME; ls"]}),
    )
    .json();
    assert_eq!(literal["stdout"], "$HOME; ls\n");
    let status = loopsy.get("/api/v1/status", Some(&loopsy.key())).json();
    assert_eq!(status["jobs"]["total"], 2);
}

#[test]
fn denylist_bypass_attempts_are_refused_on_both_routes() {
    let loopsy = Loopsy::started();
    let victim = loopsy.dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    let v = victim.display().to_string();
    let attempts: Vec<Value> = vec![
        json!({"command": "rm", "args": [v]}),
        json!({"command": "/bin/rm", "args": [v]}),
        json!({"command": "RM", "args": [v]}),
        json!({"command": "sh", "args": ["-c", format!("rm {v}")]}),
        json!({"command": "env", "args": ["rm", v]}),
        json!({"command": "sudo", "args": ["rm", v]}),
        json!({"command": "xargs", "args": ["rm"]}),
        json!({"command": "find", "args": [loopsy.dir.path().display().to_string(), "-name", "victim", "-exec", "rm", "{}", ";"]}),
        json!({"command": "timeout", "args": ["5", "rm", v]}),
        json!({"command": "busybox", "args": ["rm", v]}),
        json!({"command": "bash", "args": ["-c", format!("r\"\"m {v}")]}),
    ];
    for attempt in &attempts {
        for route in ["/api/v1/execute", "/api/v1/execute/stream"] {
            let response = post(&loopsy, route, attempt);
            assert_eq!(response.status, 400, "{route} {attempt}: {}", response.body);
            assert_eq!(response.json()["error"]["code"], 3001, "{attempt}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim survives"),
        "precious"
    );
}

#[test]
fn malformed_runs_get_clear_errors() {
    let loopsy = Loopsy::started();
    for body in [
        json!({"command": ""}),
        json!({"args": ["x"]}),
        json!({"command": "ls", "timeout": -1}),
        json!({"command": 5}),
    ] {
        let response = post(&loopsy, "/api/v1/execute", &body);
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            response.json()["error"]["code"],
            9003,
            "{body}: {}",
            response.body
        );
    }
    let missing = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "/no/such/program"}),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"]["code"], 3004);
    let bad_cwd = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "ls", "cwd": "/no/such/dir"}),
    );
    assert_eq!(bad_cwd.json()["error"]["code"], 3004);
    let unknown = loopsy.http(
        "DELETE",
        "/api/v1/execute/nope",
        &[("Authorization", &format!("Bearer {}", loopsy.key()))],
        None,
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], 3006);
}

#[test]
fn timeout_and_output_cap() {
    let loopsy = Loopsy::started_with(|text| {
        text.replace("maxOutputBytes: 10485760", "maxOutputBytes: 1024")
    });
    let began = Instant::now();
    let result = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "sh", "args": ["-c", "sleep 30 & sleep 30"], "timeout": 300}),
    )
    .json();
    assert_eq!(result["timedOut"], true);
    assert_eq!(result["killed"], true);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "the whole group was stopped"
    );
    let big = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "head", "args": ["-c", "200000", "/dev/zero"]}),
    )
    .json();
    assert_eq!(big["stdout"].as_str().map(str::len), Some(1024));
    assert_eq!(big["stdoutTruncated"], true);
    assert_eq!(big["exitCode"], 0);
}

#[test]
fn children_get_a_clean_environment() {
    let mut loopsy = Loopsy::new();
    loopsy.env.push(("CLAUDECODE".into(), "1".into()));
    loopsy
        .env
        .push(("LOOPSY_SECRET_THING".into(), "s3cret".into()));
    loopsy.ok(&["init"]);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let result = post(
        &loopsy,
        "/api/v1/execute",
        &json!({"command": "env", "env": {"MINE": "yes"}}),
    )
    .json();
    let env = result["stdout"].as_str().expect("env output");
    assert!(env.contains("MINE=yes"));
    assert!(
        !env.contains("CLAUDECODE") && !env.contains("LOOPSY_") && !env.contains("s3cret"),
        "{env}"
    );
}

#[test]
fn streaming_runs_are_jobs_that_can_be_listed_and_cancelled() {
    let loopsy = Loopsy::started();
    let mut stream = open_stream(
        &loopsy,
        &json!({"command": "sh", "args": ["-c", "echo started; sleep 30"]}),
    );
    let mut line = String::new();
    let event = next_event(&mut stream).expect("first event");
    assert_eq!(event["type"], "stdout");
    assert_eq!(event["data"], "started\n");
    let job_id = event["jobId"].as_str().expect("jobId").to_owned();

    let listed = jobs(&loopsy);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["jobId"], job_id.as_str());
    assert_eq!(listed[0]["command"], "sh");
    let bearer = format!("Bearer {}", loopsy.key());
    let cancelled = loopsy.http(
        "DELETE",
        &format!("/api/v1/execute/{job_id}"),
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(cancelled.json(), json!({"success": true, "jobId": job_id}));
    line.clear();
    let mut last = None;
    while let Some(event) = next_event(&mut stream) {
        let exit = event["type"] == "exit";
        last = Some(event);
        if exit {
            break;
        }
    }
    assert_eq!(last.map(|e| e["type"].clone()), Some(json!("exit")));
    wait_until("the cancelled job to leave the list", || {
        jobs(&loopsy).is_empty()
    });
}

#[test]
fn a_departed_stream_client_stops_its_job() {
    let loopsy = Loopsy::started();
    let stream = open_stream(&loopsy, &json!({"command": "sleep", "args": ["30"]}));
    wait_until("the job to be listed", || jobs(&loopsy).len() == 1);
    drop(stream);
    wait_until("the job to be stopped", || jobs(&loopsy).is_empty());
}

#[test]
fn max_concurrent_counts_every_job() {
    let loopsy = Loopsy::new();
    loopsy.ok(&["init"]);
    loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
    let slots = loopsy.dir.path().join("slots");
    let seen = loopsy.dir.path().join("seen");
    std::fs::create_dir_all(&slots).expect("slots");
    std::fs::create_dir_all(&seen).expect("seen");
    let done = loopsy.dir.path().join("done");
    std::fs::create_dir_all(&done).expect("done");
    let script = format!(
        "mkdir {slots}/$$; ls {slots} | wc -l > {seen}/$$; sleep 0.3; mv {slots}/$$ {done}/$$",
        slots = slots.display(),
        seen = seen.display(),
        done = done.display()
    );
    let key = loopsy.key();
    let port = loopsy.port;
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (script, key) = (script.clone(), key.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let body = json!({"command": "sh", "args": ["-c", script]}).to_string();
                agent
                    .post(format!("http://127.0.0.1:{port}/api/v1/execute"))
                    .header("Authorization", format!("Bearer {key}"))
                    .send(body.as_str())
                    .map(|mut r| {
                        (
                            r.status().as_u16(),
                            r.body_mut().read_to_string().unwrap_or_default(),
                        )
                    })
                    .expect("request")
            })
        })
        .collect();
    let results: Vec<(u16, String)> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let ran = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&(u16, String)> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ran + refused.len(), 100, "only 200 or 429: {results:?}");
    assert!(ran >= 10, "the first ten ran: {ran}");
    assert!(refused.iter().all(|(_, body)| body.contains("3003")));
    let max_seen = std::fs::read_dir(&seen)
        .expect("seen")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (1..=10).contains(&max_seen),
        "at most 10 ran at once, saw {max_seen}"
    );

    // Streaming jobs count too.
    let _held: Vec<_> = (0..10)
        .map(|_| open_stream(&loopsy, &json!({"command": "sleep", "args": ["30"]})))
        .collect();
    wait_until("ten streaming jobs", || jobs(&loopsy).len() == 10);
    let over = post(&loopsy, "/api/v1/execute", &json!({"command": "true"}));
    assert_eq!(over.status, 429);
    assert_eq!(over.json()["error"]["code"], 3003);
}

#[test]
fn cli_exec_streams_and_exits_with_the_code() {
    let loopsy = Loopsy::started();
    let out = loopsy.run(&["exec", "--", "sh", "-c", "echo one; echo two >&2; exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(stdout(&out), "one\n");
    assert_eq!(stderr(&out), "two\n");
    let json_out = loopsy.run(&["exec", "--json", "--", "echo", "hi"]);
    assert_eq!(json_out.status.code(), Some(0));
    let result: Value = serde_json::from_str(&stdout(&json_out)).expect("JSON");
    assert_eq!(result["stdout"], "hi\n");
    let denied = loopsy.run(&["exec", "--", "rm", "-rf", "/tmp/nothing-here"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("denied"), "{}", stderr(&denied));
    let timed = loopsy.run(&["exec", "--timeout", "0.3", "--", "sleep", "10"]);
    assert_eq!(timed.status.code(), Some(128 + 15));
    assert!(stderr(&timed).contains("timed out"));
    let cwd = loopsy.run(&[
        "exec",
        "--cwd",
        "/tmp",
        "--env",
        "A=b",
        "--",
        "sh",
        "-c",
        "pwd; echo $A",
    ]);
    assert_eq!(stdout(&cwd), "/tmp\nb\n");
}
