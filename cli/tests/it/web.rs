//! The phone web app's own checks, run from the Rust suite so that one command
//! tests everything: TypeScript type checks and the browser's Noise against the
//! vectors the Rust side makes and checks (`transports/tests/vectors/`).

use std::path::Path;
use std::process::Command;

#[test]
fn the_browser_crypto_agrees_with_the_rust_vectors() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    assert!(
        web.join("node_modules").is_dir(),
        "web/node_modules is missing: run `npm ci` in web/ (cargo's build of loopsy-relay does it when npm is installed)"
    );
    let out = Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(&web)
        .output()
        .expect("npm runs (install Node.js and npm)");
    assert!(
        out.status.success(),
        "npm test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("# pass 5") && report.contains("# fail 0"),
        "{report}"
    );
}
