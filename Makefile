# The same gates as CI. `make test` is the README's test command.
.PHONY: demo test lint ci

demo:
	cargo run --release -- fetch

test:
	bash scripts/test-deps.sh
	cargo test

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

ci: lint test
