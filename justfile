# Recipes for working on loopsy. `just` is optional: every recipe is a plain
# cargo command you can run yourself (install just with `pip install rust-just`).

data_dir := ".loopsy-dev"

# Build and run the main job: daemon + local relay, printing the pairing QR code.
run:
    cargo run --release -p loopsy -- --data-dir {{data_dir}} up

# The whole test suite (what CI runs after fmt and clippy).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks of the real binary; prints ratios against baselines measured in the same run.
# Exec is also compared with the daemon of revision `before` (by default the one before
# the Router, sessions and the relay link got threads of their own), built from an export
# of that revision into target/bench-before.
bench before="fb140b4": (build-before before)
    LOOPSY_BENCH_BEFORE={{justfile_directory()}}/target/bench-before/release/loopsy cargo bench -p loopsy --bench daemon --bench phone --bench web --bench relay --bench peers --bench mcp

# Builds revision `rev`'s loopsy (release) into target/bench-before, for `bench`.
build-before rev:
    rm -rf target/bench-before-src && mkdir -p target/bench-before-src
    git archive {{rev}} | tar -x -C target/bench-before-src
    # Hard links, not a symlink: removing the export never touches web/node_modules.
    if [ -d web/node_modules ]; then cp -al web/node_modules target/bench-before-src/web/; fi
    cd target/bench-before-src && cargo build --release -p loopsy --target-dir ../bench-before

# Format the code.
fmt:
    cargo fmt --all
