//! Prepares the phone web app's toolchain (`web/`): `npm ci` when its
//! dependencies are missing or older than the lockfile, so a fresh clone needs
//! no manual npm step (the relay will serve the built app). Without npm the
//! build goes on with a warning; the web tests then say what is missing.

use std::path::Path;
use std::process::Command;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package-lock.json").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package.json").display()
    );
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stale = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed < lock,
        _ => true,
    };
    if !stale || !lock.exists() {
        return;
    }
    match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&web)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "cargo:warning=`npm ci` in web/ failed ({status}); the web app's tests will fail until it succeeds"
        ),
        Err(e) => println!(
            "cargo:warning=cannot run npm ({e}); install Node.js and npm to build and test the web app"
        ),
    }
}
