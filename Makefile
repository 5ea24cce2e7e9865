# Colony's entry points. `make demo` and `make test` are the two commands README.md
# opens with; both build everything they need first.

CARGO ?= cargo
GUEST_TARGET := wasm32-wasip2
GUEST_PROFILE := guest
GUESTS := echo-agent silent-agent failing-agent chat-agent agent-loop rust-worker rust-overseer \
          probe-fixture hostile-fixture missing-export-fixture unknown-import-fixture

LANG_OUT := target/lang-guests
LANG_GUESTS := $(foreach l,js py c,$(foreach a,worker overseer,$(LANG_OUT)/$(l)_$(a).wasm))
PYVENV := target/pyvenv
# The Python package (python/): a venv with maturin and pytest, the package built into it.
PYHOST := target/pyhost

.PHONY: setup browser guests lang-guests demo test bench lint clean python-package python-test python-bench mcp-servers mcp-test

## Install the toolchains the guests need (idempotent): the wasm32-wasip2 target, and
## Debian's clang 19 + wasi-libc for C guests, nats-server for the scale-out tests.
setup:
	scripts/install-toolchains.sh

## Debian's chromium and chromedriver, for the web view's browser tests (`colony serve`).
browser:
	scripts/install-toolchains.sh --browser

## Build every Rust guest component into target/$(GUEST_TARGET)/$(GUEST_PROFILE)/.
guests: setup
	$(CARGO) build --profile $(GUEST_PROFILE) --target $(GUEST_TARGET) $(addprefix -p ,$(GUESTS))

## The same two agents in JavaScript, Python and C (examples/js, examples/python,
## examples/c), built with each language's toolchain into target/lang-guests/.
lang-guests: $(LANG_GUESTS)

examples/js/node_modules/.package-lock.json: examples/js/package.json examples/js/package-lock.json
	cd examples/js && npm ci --no-audit --no-fund

$(LANG_OUT)/js_%.wasm: examples/js/%/agent.js guest-sdk/js/colony.js wit/agent.wit examples/js/node_modules/.package-lock.json
	mkdir -p $(LANG_OUT)
	examples/js/node_modules/.bin/componentize-js --wit wit --world-name agent -d http -d fetch-event \
		-o $@ examples/js/$*/agent.js

$(PYVENV)/bin/componentize-py: examples/python/requirements.txt
	python3 -m venv $(PYVENV)
	$(PYVENV)/bin/pip install -q -r examples/python/requirements.txt
	touch $@

$(LANG_OUT)/py_%.wasm: examples/python/%/app.py guest-sdk/python/colony_sdk.py wit/agent.wit $(PYVENV)/bin/componentize-py
	mkdir -p $(LANG_OUT)
	$(PYVENV)/bin/componentize-py -d wit -w agent componentize -p examples/python/$* -p guest-sdk/python app -o $@

$(LANG_OUT)/c_%.wasm: examples/c/%/agent.c guest-sdk/c/colony.h wit/agent.wit
	$(CARGO) run -q -p xtask -- c-guest examples/c/$* $@

## The main job: a demo colony (an overseer plus fanned-out workers), events printed.
## It builds every guest first (all four languages), as the set-up step.
demo: guests lang-guests
	$(CARGO) run -p colony -- demo

## The whole test suite: host unit tests, integration tests against real guests (all four
## languages), doc tests, then the Python package's pytest suite.
test: guests lang-guests mcp-servers browser
	$(CARGO) test -p colony -p colony-tests
	$(MAKE) mcp-test
	$(MAKE) python-test

$(PYHOST)/bin/maturin: python/requirements-dev.txt
	python3 -m venv $(PYHOST)
	$(PYHOST)/bin/pip install -q -r python/requirements-dev.txt
	touch $@

## Build the `colony` Python package (python/) into $(PYHOST) with `maturin develop`.
python-package: $(PYHOST)/bin/maturin
	VIRTUAL_ENV=$(abspath $(PYHOST)) PATH=$(abspath $(PYHOST))/bin:$$PATH \
		$(PYHOST)/bin/maturin develop -q -m python/Cargo.toml

## Python-driven fan-out beside the reference Worker (release build into target/pybench).
python-bench: guests $(PYHOST)/bin/maturin
	test -x target/pybench/bin/python || python3 -m venv target/pybench
	VIRTUAL_ENV=$(abspath target/pybench) PATH=$(abspath target/pybench)/bin:$$PATH \
		$(PYHOST)/bin/maturin develop --release -q -m python/Cargo.toml
	target/pybench/bin/python python/bench/fanout.py

## Third-party MCP software the MCP tests run against (PyPI): target/mcpvenv.
MCPVENV := target/mcpvenv
$(MCPVENV)/bin/mcp-server-time: tests/mcp-servers/requirements.txt
	python3 -m venv $(MCPVENV)
	$(MCPVENV)/bin/pip install -q -r tests/mcp-servers/requirements.txt
	touch $@

mcp-servers: $(MCPVENV)/bin/mcp-server-time

## `colony mcp` driven by the official MCP Python SDK (stdio and streamable HTTP).
mcp-test: guests mcp-servers
	$(CARGO) build -q -p colony
	$(MCPVENV)/bin/python -m pytest -q tests/mcp-clients

## The Python package's tests (pytest, against the guests `make guests` built).
python-test: guests python-package
	$(CARGO) build -q -p colony
	$(PYHOST)/bin/python -m pytest -q python/tests

## Benchmarks (release build), printed as the Markdown tables of BENCHMARKS.md.
bench: guests
	$(CARGO) run --release -p colony-bench

## Formatting and lints, as CI runs them (also on the core alone, and with each optional
## part of the library on its own).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p colony -p colony-tests -p colony-bench -p xtask -p colony-python --all-targets -- -D warnings
	$(CARGO) clippy -p colony --no-default-features -- -D warnings
	$(CARGO) clippy -p colony --no-default-features --features colony -- -D warnings
	$(CARGO) clippy -p colony --no-default-features --features nats -- -D warnings
	$(CARGO) clippy -p colony --no-default-features --features mcp -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p colony --no-deps
	$(CARGO) clippy --target $(GUEST_TARGET) $(addprefix -p ,$(GUESTS)) -p colony-guest-sdk -- -D warnings

clean:
	$(CARGO) clean
