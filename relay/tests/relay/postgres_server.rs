//! A real PostgreSQL for the tests: `initdb` into a temp dir and `postgres`
//! on a free loopback port, started once per test binary, as the `postgres`
//! user when the tests run as root (the server refuses root). It ends with the
//! test process: a shell holds it and stops it when its stdin (a pipe from
//! this process) closes. Each relay gets a database of its own.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct PostgresServer {
    pub port: u16,
    _holder: Mutex<Child>,
    _dir: tempfile::TempDir,
}

/// Where Debian puts the server's programs (they are not on PATH).
fn bin(program: &str) -> PathBuf {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin").join(program))
        .filter(|path| path.exists())
        .max();
    debian.unwrap_or_else(|| PathBuf::from(program))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// `program args` as the server's user.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A wait in a test's setup, off any actor.
#[expect(clippy::disallowed_methods)]
fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn start() -> PostgresServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&data)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot give the data dir to the postgres user"
        );
    }
    let out = as_server_user(&bin("initdb"))
        .args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("initdb (install Debian's postgresql)");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let server = format!(
        "{} -D {} -p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c max_connections=300",
        bin("postgres").display(),
        data.display()
    );
    // The holder: runs the server, and stops it once this process's end of the pipe closes.
    let holder = as_server_user(Path::new("sh"))
        .args([
            "-c",
            &format!("{server} & pid=$!; cat > /dev/null; kill -INT $pid; wait $pid"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "postgres did not come up");
        pause(50);
    }
    PostgresServer {
        port,
        _holder: Mutex::new(holder),
        _dir: dir,
    }
}

/// The test binary's server.
pub fn server() -> &'static PostgresServer {
    static SERVER: OnceLock<PostgresServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A fresh database on the server; its URL.
pub fn fresh_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let name = format!(
        "relay_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
            ])
            .arg(format!("CREATE DATABASE {name}"))
            .arg("-p")
            .arg(server.port.to_string())
            .output()
            .expect("psql (install Debian's postgresql-client)");
        if out.status.success() {
            break;
        }
        // Just started: the server may still be coming up.
        assert!(
            Instant::now() < deadline,
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pause(100);
    }
    let _ = std::io::stdout().flush();
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}
