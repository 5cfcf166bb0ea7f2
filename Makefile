# The two commands of the README:
#   make quickstart   set up, then train and evaluate the quickstart Focal-EIoU RetinaNet on CPU
#   make test         set up, then run the test suite
PY := $(if $(PYTHON),$(PYTHON),.venv/bin/python)

.PHONY: setup quickstart test format

setup:
	@scripts/setup_env.sh

quickstart: setup
	$(PY) -m focal_eiou_d2.tools.quickstart

test: setup
	$(PY) -m pytest -q tests

format: setup
	$(PY) -m ruff check --fix focal_eiou_d2 tests benchmarks demo train_net.py
	$(PY) -m black focal_eiou_d2 tests benchmarks demo train_net.py
