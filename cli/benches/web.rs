//! `just bench`, the web app part: the phone app in Debian's headless
//! Chromium against a real daemon and relay (`web/bench/app.mjs` does the
//! browser work). Each figure stands next to a baseline from the same run:
//! the time to the first byte of a live session against the time to the
//! app's own first screen, and at a phone's pixel ratio of 3 against 1; the bytes an agent-like redraw puts on the wire
//! during a rotation with the app's resize discipline against the same
//! rotation with every step committed; rendering 10 MB of output through the
//! app against writing the same bytes into a bare xterm.js in the same page.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::*;

/// What a full-history agent TUI does on a resize: a width change repaints
/// all of its history (as Claude Code does), a height change only the frame.
const REDRAW_SCRIPT: &str = r#"#!/bin/sh
history=600
last_cols=$(stty size | cut -d' ' -f2)
draw_history() {
  printf '\033[2J\033[3J\033[H'
  i=1
  while [ $i -le $history ]; do
    printf 'history %04d: the agent said something long enough to wrap on a phone screen\n' $i
    i=$((i+1))
  done
}
draw_frame() {
  printf '\033[H\033[J'
  i=1
  rows=$(stty size | cut -d' ' -f1)
  while [ $i -lt "$rows" ]; do printf 'frame row %d\n' $i; i=$((i+1)); done
}
on_winch() {
  cols=$(stty size | cut -d' ' -f2)
  if [ "$cols" != "$last_cols" ]; then draw_history; else draw_frame; fi
  last_cols=$cols
}
trap on_winch WINCH
draw_history
echo redraw-ready
while :; do sleep 0.05; done
"#;

fn write_ten_megabytes(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0u64;
    let mut written = 0usize;
    while written < 10 << 20 {
        let line = format!(
            "render {n:>8} \x1b[32mgreen\x1b[0m and plain text to fill a phone-wide line\n"
        );
        out.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_daemon, _relay, data) = daemon_at_relay(tmp.path());
    let window: Value = serde_json::from_str(&ok(&data, &["mobile", "pair", "--json"])).unwrap();
    // A second phone, for the opens at a pixel ratio of 3.
    let window3: Value = serde_json::from_str(&ok(&data, &["mobile", "pair", "--json"])).unwrap();
    let text = tmp.path().join("ten-megabytes.txt");
    write_ten_megabytes(&text);
    let redraw = tmp.path().join("redraw.sh");
    std::fs::write(&redraw, REDRAW_SCRIPT).unwrap();
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let setup = json!({
        "url": window["url"],
        "code": window["code"],
        "url3": window3["url"],
        "code3": window3["code"],
        "text": text,
        "redraw": redraw,
        "shots": Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-web"),
    });
    let out = Command::new("node")
        .arg("bench/app.mjs")
        .arg(setup.to_string())
        .current_dir(&web)
        .output()
        .expect("node (install Node.js; `npm ci` in web/)");
    assert!(
        out.status.success(),
        "the browser benchmark failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = |k: &str| figures[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "phone web app in headless Chromium ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "open the app cold (nothing cached)     {:>8.0} KiB {:>6.0} ms   warm (reload, service worker) {:>5.1} KiB {:>5.0} ms   bytes ratio {:.3}x (medians of 5; for reference, the build before content names and compression sent its 546 KB script on every open)",
        f("coldOpenBytes") / 1024.0,
        f("coldOpenMs"),
        f("warmOpenBytes") / 1024.0,
        f("warmOpenMs"),
        f("warmOpenBytes") / f("coldOpenBytes"),
    );
    println!(
        "open to first byte of a live session  {:>8.1} ms   app's first screen {:>7.1} ms   ratio {:.2}x (median of {})",
        f("firstByteMs"),
        f("appShellMs"),
        f("firstByteMs") / f("appShellMs"),
        figures["samples"]
    );
    println!(
        "  of which: the laptop's sessions on screen at {:.1} ms (taps made from inside the page)",
        f("sessionsListedMs"),
    );
    println!(
        "  at a pixel ratio of 3 (renderer {}): {:>6.1} ms   at 1 (renderer {}): {:.1} ms   ratio {:.2}x (interleaved, medians of {})",
        figures["renderer3"].as_str().unwrap_or("?"),
        f("firstByteMs3"),
        figures["renderer1"].as_str().unwrap_or("?"),
        f("firstByteMs"),
        f("firstByteMs3") / f("firstByteMs"),
        figures["samples"]
    );
    println!(
        "rotation + keyboard, agent redraw     {:>8.0} KiB  every step committed {:>5.0} KiB   ratio {:.2}x ({} vs {} resizes)",
        f("disciplinedBytes") / 1024.0,
        f("undisciplinedBytes") / 1024.0,
        f("disciplinedBytes") / f("undisciplinedBytes"),
        figures["disciplinedResizes"],
        figures["undisciplinedResizes"]
    );
    println!(
        "render 10 MB through the app           {:>8.0} ms   bare xterm.js {:>12.0} ms   ratio {:.2}x (renderer: {})",
        f("appRenderMs"),
        f("bareRenderMs"),
        f("appRenderMs") / f("bareRenderMs"),
        figures["renderer"].as_str().unwrap_or("?")
    );
}
