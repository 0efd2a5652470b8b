//! Builds the phone web app (this folder) for the relay and the daemon to
//! serve at `/app/`: `npm ci` when its dependencies are missing or older than
//! the lockfile, `npm run build` when its sources changed, then a copy of
//! `dist` into OUT_DIR for `include_bytes!`. A fresh clone needs no manual npm
//! step. Without npm everything still builds, serving a page that says the app
//! was not built.

use std::path::Path;
use std::process::Command;

const FILES: [&str; 10] = [
    "index.html",
    "assets/app.js",
    "assets/app.js.br",
    "assets/app.js.gz",
    "assets/app.css",
    "assets/app.css.br",
    "assets/app.css.gz",
    "assets/icon.svg",
    "manifest.webmanifest",
    "sw.js",
];

fn npm(web: &Path, args: &[&str]) -> bool {
    match Command::new("npm").args(args).current_dir(web).status() {
        Ok(status) if status.success() => true,
        Ok(status) => {
            println!(
                "cargo:warning=`npm {}` in web/ failed ({status})",
                args.join(" ")
            );
            false
        }
        Err(e) => {
            println!(
                "cargo:warning=cannot run npm ({e}); install Node.js and npm to build the phone web app"
            );
            false
        }
    }
}

fn main() {
    // Read at run time: a build script binary may be reused for another checkout.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let web = Path::new(&manifest).to_path_buf();
    for watched in ["package-lock.json", "package.json", "src", "scripts"] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed < lock,
        _ => true,
    };
    // `--ignore-scripts`: no dependency runs code at install, on any cargo build
    // (esbuild finds its binary through its optional dependencies).
    let ready = !stale || npm(&web, &["ci", "--ignore-scripts", "--no-audit", "--no-fund"]);
    // Cargo reruns this script when the sources change, so build every time it runs.
    let built = ready && npm(&web, &["run", "build"]);
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("webapp");
    let _ = std::fs::create_dir_all(out.join("assets"));
    for file in FILES {
        let copied = built && std::fs::copy(web.join("dist").join(file), out.join(file)).is_ok();
        if !copied {
            let placeholder: &[u8] = if file == "index.html" {
                b"<!doctype html><title>loopsy</title><p>The phone web app was not built: install Node.js and npm, then rebuild loopsy.</p>"
            } else {
                b""
            };
            let _ = std::fs::write(out.join(file), placeholder);
        }
    }
}
