# The same gates as CI. `make test` is the README's test command.
.PHONY: demo test lint ci

demo:
	cargo run --release -- fetch

# The behaviour suites again with state on PostgreSQL (a private server the tests start); all
# but the SQLite file's own faults, and the split roles' suite, which is on PostgreSQL already.
POSTGRES_TESTS := $(patsubst %,--test %,$(filter-out state_faults scale_out,$(basename $(notdir $(wildcard tests/*.rs)))))

test:
	bash scripts/test-deps.sh
	cargo test
	GAZETTE_TEST_STATE=postgres cargo test $(POSTGRES_TESTS)

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

ci: lint test
