# The README's two commands: `make demo` (the simulated dock with its page) and
# `make test` (the whole test suite). Each sets up what it needs: a virtual environment
# in .venv with the project and its test tools, and (for tests) Debian's Chromium,
# OpenSSH server, FUSE and systemd tools when it may install them (root or sudo).

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
PORT ?= 8080
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] && echo "" || echo "sudo")
TEST_PACKAGES := chromium openssh-server fuse3 systemd wrk mosquitto nginx-light libnss3-tools postgresql
# npm fetches axe-core for the browser tests; a nodejs from elsewhere (NodeSource) ships its
# own npm and conflicts with Debian's package, so npm is asked for only when the command is missing.

SYSTEM_TEST_PACKAGES := mmdebstrap qemu-system-x86 qemu-utils openssh-client e2fsprogs

.PHONY: demo demo-clinic demo-chain lint test test-fast test-hil test-system wheels bench bundle deps-system clean translations

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "python3-venv is missing: installing it with apt-get"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/pendock demo --port $(PORT)

# Two simulated docks sharing one history through a local Mosquitto (Debian's package;
# installed here when root or sudo allows). Ctrl-C stops all three.
demo-clinic: $(STAMP)
	@command -v mosquitto >/dev/null || { \
	  echo "mosquitto is missing: installing Debian's package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }
	$(VENV)/bin/python -m appliance.demo_clinic --port $(PORT)

# A chain on one machine: PostgreSQL, a central Mosquitto, two clinics of two docks each with
# their brokers bridged to it, and the ingest worker (Debian's mosquitto and postgresql,
# installed here when root or sudo allows). Ctrl-C stops everything.
demo-chain: $(STAMP)
	@missing=""; for p in mosquitto postgresql; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian's$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@$(VENV)/bin/python -c 'import psycopg' 2>/dev/null || $(VENV)/bin/python -m pip install -q -e '.[chain]'
	$(VENV)/bin/python -m appliance.demo_chain --port $(PORT)

deps-system:
	@missing=""; for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
	    echo "installing Debian packages for the tests:$$missing"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "not root and no sudo: tests needing$$missing will be skipped"; fi; \
	fi

# The page's catalogues: extract every shown string, merge into web/translations/*/messages.po,
# compile the .mo files (committed; tests/web/test_i18n.py checks they match). Then translate
# the new empty msgstr lines of the German .po and run it again.
translations: $(STAMP)
	$(VENV)/bin/python -m appliance.page.i18n

# ruff (pyflakes, pycodestyle, bugbear) over the tree, mypy (strict on the pure core);
# both configured in pyproject.toml. The tests run only on a clean lint.
lint: $(STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy

test: $(STAMP) deps-system lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-hil; \
	else echo "test-hil: skipped: the hardware-in-the-loop run needs root (make test-hil as root)"; fi
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory test-system; \
	else echo "test-system: skipped: the booted image needs root (make test-system as root)"; fi

# Hardware in the loop (tests/hil): Debian's kernel under qemu with a simulated GPIO chip,
# the dock on it through lgpio. Root only: it installs the kernel headers, qemu and busybox
# with apt, downloads the kernel image and source with apt-get download (cached in
# /var/cache/pendock-hil) and adds lgpio to the venv. About 2 minutes once cached.
test-hil: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
	  $(VENV)/bin/python -c 'import lgpio' 2>/dev/null || $(VENV)/bin/python -m pip install -q 'lgpio>=0.2.2'; \
	  [ -n "$$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || \
	    env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	fi
	$(VENV)/bin/python -m tests.hil.run

# The booted appliance (tests/bootimage): Debian 12 amd64 built with mmdebstrap from Debian's
# archive (cached in /var/cache/pendock-system by its package list), this checkout installed
# by hw/install.sh in it, booted with systemd under qemu (TCG), checked over SSH and the
# serial console. Root only (mmdebstrap, apt-get). About 2 minutes to build the image once,
# then 6-10 minutes a run (README, "The system test").
test-system: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then 	  missing=""; for p in $(SYSTEM_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; 	  if [ -n "$$missing" ]; then echo "installing Debian packages for the system test:$$missing"; 	    env DEBIAN_FRONTEND=noninteractive apt-get update -qq && 	    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; 	fi
	$(VENV)/bin/python -m tests.bootimage.run

# pen-dock's wheel and its dependencies' for this machine's Python, in dist/wheels: what
# `hw/install.sh --offline dist/wheels` installs on a dock without internet.
wheels: $(STAMP)
	rm -rf dist/wheels
	$(VENV)/bin/python -m pip wheel -q --no-deps -w dist/wheels .
	$(VENV)/bin/python -m pip download -q --only-binary=:all: -d dist/wheels dist/wheels/pen_dock-*.whl

test-fast: $(STAMP) lint
	PENDOCK_FAST=1 $(VENV)/bin/python -m pytest -m "not browser and not slow and not process" $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python -m tests.bench.run_all $(BENCH_ARGS)

# A signed release bundle for `pendock upgrade` (README, Updates): this checkout's wheel
# and its dependencies' wheels (pip wheel: PyPI or pip's cache), hashed and signed.
bundle: $(STAMP)
	@test -n "$(KEY)" || { echo "make bundle KEY=FILE: FILE is the release's Ed25519 private key (README, Updates)"; exit 2; }
	$(VENV)/bin/python -m appliance.release.build --key "$(KEY)" --out dist

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts
