//! What the machine itself allows, for the benches' baselines: durable
//! writes, disk throughput, loopback TCP throughput.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

/// Durable writes per second the disk allows: 1-byte write + fdatasync, for the
/// context store's durable-set figure.
pub fn fsync_rate(dir: &Path, count: usize) -> f64 {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let began = Instant::now();
    for _ in 0..count {
        file.write_all(b"x").unwrap();
        file.sync_data().unwrap();
    }
    count as f64 / began.elapsed().as_secs_f64()
}

/// Writing `bytes` to a file and fsyncing it: the ceiling for a durable push.
pub fn disk_write_rate(dir: &Path, bytes: u64) -> f64 {
    let path = dir.join("disk-probe");
    let chunk = vec![3u8; 1024 * 1024];
    let began = Instant::now();
    let mut file = std::fs::File::create(&path).unwrap();
    let mut written = 0;
    while written < bytes {
        file.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
    }
    file.sync_all().unwrap();
    let rate = written as f64 / began.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    rate
}

/// Plain loopback TCP copy of `bytes`: the ceiling for transfer throughput.
pub fn tcp_copy_rate(bytes: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::io::copy(&mut stream, &mut std::io::sink()).unwrap()
    });
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let chunk = vec![7u8; 256 * 1024];
    let began = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        stream.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    drop(stream);
    reader.join().unwrap();
    sent as f64 / began.elapsed().as_secs_f64()
}
