# The two commands of the README, plus the benchmarks.
.PHONY: run test bench
run:
	scripts/run.sh
test:
	scripts/test.sh
bench:
	scripts/bootstrap.sh test && .venv/bin/python -m pip install -q -e '.[dev]' && \
	  .venv/bin/python bench/retrieve.py
