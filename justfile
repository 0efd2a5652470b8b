# Recipes for working on loopsy. `just` is optional: every recipe is a plain
# cargo command you can run yourself (install just with `pip install rust-just`).

data_dir := ".loopsy-dev"

# Build and run the daemon in the foreground with a local data dir.
run:
    cargo build --release -p loopsy
    ./target/release/loopsy --data-dir {{data_dir}} init --if-missing
    ./target/release/loopsy --data-dir {{data_dir}} start --foreground

# The whole test suite (what CI runs after fmt and clippy).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks of the real binary; prints ratios against baselines measured in the same run.
bench:
    cargo bench -p loopsy --bench daemon

# Format the code.
fmt:
    cargo fmt --all
