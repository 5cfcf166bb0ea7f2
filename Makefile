# The two commands of the README:
#   make quickstart   set up, then train and evaluate the quickstart Focal-EIoU RetinaNet on CPU
#   make test         set up, then run the test suite against Detectron2 0.6 and against its git
#                     main (the second leg is skipped with one line where its snapshot is absent)
# Also: make test-quick (the suite without the tests marked slow), make format, make tables
# (the protocol's tables and plots from the committed result files, docs/reproduction.md).
PY := $(if $(PYTHON),$(PYTHON),.venv/bin/python)

.PHONY: setup quickstart test test-quick format tables

setup:
	@scripts/setup_env.sh

quickstart: setup
	$(PY) -m focal_eiou_d2.tools.quickstart

test: setup
	$(PY) -m pytest -q tests
	scripts/test_detectron2_main.sh -q

test-quick: setup
	$(PY) -m pytest -q -m "not slow" tests

tables: setup
	PYTHON=$(PY) scripts/reproduction_tables.sh

format: setup
	$(PY) -m ruff check --fix focal_eiou_d2 tests benchmarks demo scripts train_net.py lazy_train_net.py
	$(PY) -m black focal_eiou_d2 tests benchmarks demo scripts train_net.py lazy_train_net.py
