# wasmts: containerd shim v2 for WASI preview1 modules, on node:wasi.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib/wasmts
BINDIR ?= $(PREFIX)/bin
NODE ?= $(shell command -v node)
TESTS ?= $(shell find test -name '*.test.ts' | sort)

.PHONY: all deps build proto typecheck lint format modules test bench soak fuzz install uninstall clean

all: build

deps:
	@bash scripts/ensure-deps.sh

node_modules: package.json
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	@touch node_modules

build: node_modules
	@node scripts/build.mjs

proto: node_modules
	npx buf generate

typecheck: node_modules
	npx tsc --noEmit -p .

# ESLint (typescript-eslint, type-aware) and Prettier; `make format` rewrites what Prettier would change.
lint: node_modules
	npx eslint src test scripts
	npx prettier --check src test scripts
	node scripts/import-cycles.mjs src

format: node_modules
	npx prettier --write src test scripts

modules:
	@bash scripts/build-modules.sh

# Installs what the tests need (Debian packages, npm packages), builds, then runs every suite.
test: deps build typecheck lint modules
	node --import tsx --test --test-reporter=spec $(TESTS)

# Side-by-side benchmark against runc on a private containerd (table + JSON; see docs/performance.md).
bench: deps build modules
	node --import tsx scripts/bench/index.ts

# 1000 sequential lifecycles, a long-lived pod daemon, 50 containers at once; fails on any leak.
soak: deps build modules
	node --import tsx scripts/soak.ts $(SOAK_FLAGS)

# The fuzz properties (ttrpc frames, bundles), longer than in the suite: make fuzz FUZZ_FLAGS="--seconds 300".
fuzz: deps build
	node --import tsx scripts/fuzz.ts $(FUZZ_FLAGS)

# What the Wasm child loads from node_modules at run time, for WASI 0.2
# components only (src/child/component.ts), with their native bindings.
COMPONENT_PACKAGES = @bytecodealliance/jco-transpile @bytecodealliance/preview2-shim @bytecodealliance/jco-node-fs oxc-minify

# Copies the built shim to $(LIBDIR) and puts the front end, containerd-shim-wasmts-v1, on containerd's PATH.
install: build
	install -d $(LIBDIR)/dist $(BINDIR)
	install -m 0644 dist/*.cjs dist/build-id $(LIBDIR)/dist/
	rm -rf $(LIBDIR)/node_modules
	for p in $(COMPONENT_PACKAGES) $$(cd node_modules && ls -d @bytecodealliance/jco-node-fs-* @oxc-minify/binding-* 2>/dev/null); do \
	  install -d $(LIBDIR)/node_modules/$$(dirname $$p) && cp -R node_modules/$$p $(LIBDIR)/node_modules/$$p || exit 1; \
	done
	sed -e '/# wasmts:dist-link/d' -e 's|^dist=.*# wasmts:dist.*|dist=$(LIBDIR)/dist|' -e 's|^node=.*# wasmts:node.*|node=$(NODE)|' \
	  bin/containerd-shim-wasmts-v1 > $(BINDIR)/containerd-shim-wasmts-v1.tmp
	chmod 0755 $(BINDIR)/containerd-shim-wasmts-v1.tmp
	mv -f $(BINDIR)/containerd-shim-wasmts-v1.tmp $(BINDIR)/containerd-shim-wasmts-v1

uninstall:
	rm -rf $(LIBDIR) $(BINDIR)/containerd-shim-wasmts-v1

clean:
	rm -rf dist build test-output

# Command 1: installs what is missing (apt, npm), builds, installs the shim, then runs the demo:
# a private containerd, a Wasm container, its trace as a waterfall. Options: make demo DEMO_FLAGS="--no-keep".
.PHONY: demo
demo:
	@if [ ! -x node_modules/.bin/tsx ]; then \
	  echo "demo: installing the npm packages the demo script runs on (npm ci, about a minute)"; \
	  if [ ! -f package-lock.json ]; then npm install --no-audit --no-fund --loglevel=error >/dev/null; \
	  elif ! npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>npm-ci.log; then \
	    echo "demo: npm ci failed ($$(grep -m1 -o 'Missing: .*' npm-ci.log || tail -n1 npm-ci.log)); trying npm install --no-save"; \
	    npm install --no-save --no-audit --no-fund --loglevel=error >/dev/null; \
	  fi; rm -f npm-ci.log; \
	fi
	@node --import tsx scripts/demo.ts --shim-dir $(BINDIR) $(DEMO_FLAGS)
