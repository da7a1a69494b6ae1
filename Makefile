# Two entry points (see README): `make demo` and `make test`. Both build their own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SOURCES := setup.py pyproject.toml $(wildcard impl/*/*.pyx impl/*/*.pxd impl/*/*.h refine/*.pyx)

.PHONY: demo test test-slow test-hostile cpython install verify mutants explore bench check campaign clean

install: $(VENV)/.installed $(VENV)/.runtimes

$(VENV)/.installed: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68" wheel "Cython>=3.0"
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

# The Linux runtimes (musl, QuickJS, MicroPython) from Debian source packages, cached by source
# hash in $$NANVIX_CACHE: a few minutes the first time, nothing after.
RUNTIME_SOURCES := $(wildcard impl/guest/linux/*.py impl/guest/linux/*.h impl/guest/linux/runtimes/*.c \
                   impl/guest/linux/runtimes/micropython/*.py impl/guest/linux/runtimes/micropython/*/* \
                   impl/guest/linux/runtimes/micropython/modules/nanvix/*)
$(VENV)/.runtimes: $(VENV)/.installed $(RUNTIME_SOURCES)
	$(PY) -m nanvix.impl.guest.linux.toolchain
	touch $@

# The slow target: CPython 3.11 for Python functions (`nanvix run --runtime cpython FILE.py`), from
# Debian's python3.11 source package, cached by source hash: a few minutes, once.
cpython: install
	nice -n 19 $(PY) -m nanvix.impl.guest.linux.cpython

demo: install
	$(VENV)/bin/nanvix demo

test: install
	$(PY) -m pytest -q tests

# The slow tier: a 10^5-step refinement campaign (about 5 minutes).
test-slow: install
	$(PY) -m pytest -q -m slow tests

# The hostile-tenant suite, its slow attacks included (make test runs only the fast ones).
test-hostile: install
	$(PY) -m pytest -q -m 'slow or not slow' tests/hostile

verify: install
	$(VENV)/bin/nanvix verify

# Both mutation scores: the spec's mutants against the proofs (about a minute), the
# implementation's against the lock-step check (about 5 minutes on 2 shared cores).
mutants: install
	$(VENV)/bin/nanvix verify --mutants
	$(VENV)/bin/nanvix check --mutants

explore: install
	$(VENV)/bin/nanvix explore --tenants 2 --user-vms 2 --ring 1
	$(VENV)/bin/nanvix explore --tenants 1 --user-vms 2 --pages 4 --ring 2 --quota-uvms 1 --quota-pages 2

bench: install
	$(VENV)/bin/nanvix bench

check: install
	$(VENV)/bin/nanvix check --steps 2000 --require-coverage

# A long lock-step campaign on KVM (10^5 steps, a few minutes): `make campaign SEED=7`.
SEED ?= 1
STEPS ?= 100000
campaign: install
	$(VENV)/bin/nanvix check --steps $(STEPS) --seed $(SEED) --require-coverage

clean:
	rm -rf build *.egg-info impl/*/*.so refine/*.so impl/abi/abi.c impl/kvm/kvm.c impl/channel/ring.c \
	       impl/sched/sched.c refine/cplants.c .pytest_cache .hypothesis
