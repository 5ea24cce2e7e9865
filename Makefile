# Colony's entry points. `make demo` and `make test` are the two commands README.md
# opens with; both build everything they need first.

CARGO ?= cargo
GUEST_TARGET := wasm32-wasip2
GUEST_PROFILE := guest
GUESTS := echo-agent silent-agent failing-agent chat-agent agent-loop \
          probe-fixture hostile-fixture missing-export-fixture unknown-import-fixture

.PHONY: setup guests demo test bench lint clean

## Install the toolchain pieces the build needs (idempotent).
setup:
	rustup target add $(GUEST_TARGET)

## Build every guest component into target/$(GUEST_TARGET)/$(GUEST_PROFILE)/.
guests: setup
	$(CARGO) build --profile $(GUEST_PROFILE) --target $(GUEST_TARGET) $(addprefix -p ,$(GUESTS))

## The main job: a demo colony (an overseer plus fanned-out workers), events printed.
demo: guests
	$(CARGO) run -p colony -- demo

## The whole test suite: host unit tests, integration tests against real guests, doc tests.
test: guests
	$(CARGO) test -p colony -p colony-tests

## Benchmarks (release build), printed as the Markdown tables of BENCHMARKS.md.
bench: guests
	$(CARGO) run --release -p colony-bench

## Formatting and lints, as CI expects them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p colony -p colony-tests -p colony-bench --all-targets -- -D warnings
	$(CARGO) clippy --target $(GUEST_TARGET) $(addprefix -p ,$(GUESTS)) -p colony-guest-sdk -- -D warnings

clean:
	$(CARGO) clean
