//! A daemon under test: its own temp data dir and port, the real binary, a clean
//! environment, and waits on conditions with deadlines (never fixed sleeps).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use loopsy_transports::framing::{Frame, read_frame_blocking, write_frame_blocking};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_loopsy");

/// Deadline for conditions; `LOOPSY_TEST_TIMEOUT_SECS` stretches it on slow machines.
pub fn patience() -> Duration {
    let secs = std::env::var("LOOPSY_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Polls `condition` until it holds; panics with `what` and the daemon log if it never does.
#[expect(
    clippy::disallowed_methods,
    reason = "tests poll a condition between checks"
)]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience();
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests wait out a rate limiter's refill"
)]
pub fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Loopsy {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The TLS port for peers (a free one of its own, not `port + 1`).
    pub peer_port: u16,
    /// Extra environment for every command.
    pub env: Vec<(String, String)>,
    /// A program every command runs under (`ip netns exec <name>`), if any.
    pub wrapper: Vec<String>,
}

pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Loopsy {
    pub fn new() -> Self {
        let port = free_port();
        // Two probes can hand out the same just-freed port.
        let peer_port = std::iter::repeat_with(free_port)
            .find(|p| *p != port)
            .expect("a second free port");
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            port,
            peer_port,
            env: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    /// A daemon with a config from `init` changed by `edit`, already started.
    pub fn started_with(edit: impl FnOnce(&str) -> String) -> Self {
        let loopsy = Self::new();
        loopsy.ok(&["init"]);
        loopsy.write_config(edit);
        loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
        loopsy
    }

    /// A daemon with a config from `init`, already started.
    pub fn started() -> Self {
        let loopsy = Self::new();
        loopsy.ok(&["init"]);
        loopsy.ok(&["start", "--port", &loopsy.port.to_string()]);
        loopsy
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.data().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LOOPSY_SERVER__PEER_PORT", self.peer_port.to_string())
            .arg("--data-dir")
            .arg(self.data())
            .args(args);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run loopsy")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "loopsy {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn key(&self) -> String {
        self.ok(&["key", "show"]).trim().to_owned()
    }

    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path("daemon.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn write_config(&self, edit: impl FnOnce(&str) -> String) {
        let path = self.path("config.yaml");
        let text = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, edit(&text)).expect("write config");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Any HTTP request; `headers` are sent as given (Host included).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Http {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut response = match body {
            Some(body) => agent.run(builder.body(body.to_vec()).expect("request")),
            None => agent.run(builder.body(()).expect("request")),
        }
        .expect("HTTP exchange");
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Http {
            status: response.status().as_u16(),
            headers,
            body: response.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Http {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        self.http("GET", path, &headers, None)
    }

    pub fn is_running(&self) -> bool {
        self.run(&["status"]).status.code() == Some(0)
    }
}

impl Drop for Loopsy {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").mode() & 0o777
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process that is killed when the test ends, even by a panic.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` to a process of ours; panics if it cannot be delivered.
pub fn signal(pid: impl TryInto<i32>, sig: rustix::process::Signal) {
    let pid = pid
        .try_into()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a valid pid");
    rustix::process::kill_process(pid, sig).expect("deliver the signal");
}

/// A raw client of the daemon's Unix socket, speaking the frame format by hand.
pub struct Socket {
    pub stream: std::os::unix::net::UnixStream,
    next_id: u64,
}

/// A frame from the daemon.
pub enum Received {
    Json(Value),
    Binary(Vec<u8>),
}

impl Socket {
    pub fn connect(loopsy: &Loopsy) -> Self {
        let stream =
            std::os::unix::net::UnixStream::connect(loopsy.path("loopsyd.sock")).expect("connect");
        stream.set_read_timeout(Some(patience())).expect("timeout");
        Self { stream, next_id: 1 }
    }

    /// A JSON (`kind` 1) or binary (2) frame, encoded by the daemon's own framing.
    pub fn send(&mut self, kind: u8, payload: &[u8]) {
        let payload = bytes::Bytes::copy_from_slice(payload);
        let frame = match kind {
            1 => Frame::Json(payload),
            _ => Frame::Binary(payload),
        };
        write_frame_blocking(&mut self.stream, frame).expect("write frame");
    }

    pub fn receive(&mut self) -> Received {
        match read_frame_blocking(&mut self.stream, usize::MAX).expect("a frame") {
            Frame::Json(payload) => {
                Received::Json(serde_json::from_slice(&payload).expect("JSON frame"))
            }
            Frame::Binary(payload) => Received::Binary(payload.to_vec()),
        }
    }

    /// Sends a call and returns its id.
    pub fn call(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let message =
            serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send(1, message.to_string().as_bytes());
        id
    }

    /// A call whose answer comes back before anything else.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.call(method, params);
        loop {
            if let Received::Json(answer) = self.receive()
                && answer["id"] == id
            {
                return answer;
            }
        }
    }
}

/// `config.yaml` text with `auth.allowedKeys` set to `peers` (name, key).
pub fn with_peers(text: &str, peers: &[(&str, &str)]) -> String {
    let entries: String = peers
        .iter()
        .map(|(name, key)| format!("\n    {name}: \"{key}\""))
        .collect();
    text.replace("allowedKeys: {}", &format!("allowedKeys:{entries}"))
}

/// A JSON-RPC call over the LAN API's `POST /rpc` with `key`; the parsed answer.
pub fn rpc_with_key(loopsy: &Loopsy, key: &str, method: &str, params: Value) -> Value {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
        .to_string();
    loopsy
        .http(
            "POST",
            "/rpc",
            &[("Authorization", &format!("Bearer {key}"))],
            Some(body.as_bytes()),
        )
        .json()
}

/// `config.yaml` text with `auth.allowedKeys` set to `peers` (name, key, capabilities).
pub fn with_capable_peers(text: &str, peers: &[(&str, &str, &[&str])]) -> String {
    let entries: String = peers
        .iter()
        .map(|(name, key, capabilities)| {
            format!(
                "\n    {name}:\n      key: \"{key}\"\n      capabilities: [{}]",
                capabilities
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    text.replace("allowedKeys: {}", &format!("allowedKeys:{entries}"))
}

impl Loopsy {
    /// Puts an executable `name` running `script` first on the daemon's PATH
    /// (a stand-in for an agent CLI that is not installed here).
    pub fn fake_program(&mut self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        let program = bin.join(name);
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).expect("fake program");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if !self.env.iter().any(|(k, _)| k == "PATH") {
            let path = format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            self.env.push(("PATH".into(), path));
        }
    }
}
