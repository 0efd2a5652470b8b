//! A bare WebSocket client for the relay benchmarks: blocking std sockets,
//! so ten thousand idle connections cost this process one descriptor and a
//! few bytes each, and nothing here is measured by accident.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Opens `path` on `host:port` as a relay WebSocket with `bearer`; the socket
/// once the relay answered 101.
pub fn upgrade(host_port: &str, path: &str, bearer: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(host_port)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: loopsy.relay.v1, loopsy.bearer.{bearer}\r\n\r\n"
    )?;
    // The answer's head, byte by byte: nothing past it may be swallowed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during the upgrade",
            ));
        }
        head.push(byte[0]);
        if head.len() > 8192 {
            return Err(io::Error::other("an upgrade answer over 8 KiB"));
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = BufReader::new(&head[..])
            .lines()
            .next()
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(io::Error::other(format!("refused: {line}")));
    }
    Ok(stream)
}

/// Sends a text frame (masked, as a client must; the key may be any value).
pub fn send_text(stream: &mut TcpStream, text: &str) -> io::Result<()> {
    let payload = text.as_bytes();
    let mut frame = vec![0x81u8];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}

/// The next text frame's payload (pings and binary frames are skipped).
pub fn read_text(stream: &mut TcpStream) -> io::Result<String> {
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head)?;
        let length = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                stream.read_exact(&mut n)?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n)?;
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; length as usize];
        stream.read_exact(&mut payload)?;
        match head[0] & 0x0f {
            0x1 => return String::from_utf8(payload).map_err(io::Error::other),
            0x8 => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed")),
            _ => {}
        }
    }
}

/// Whether the relay closed the socket (read returns end of stream or a close).
pub fn wait_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            return;
        }
    }
}
