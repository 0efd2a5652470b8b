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
bench:
    cargo bench -p loopsy --bench daemon --bench phone --bench web

# Format the code.
fmt:
    cargo fmt --all
