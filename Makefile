# The two commands of the README, plus the benchmarks and the binaries.
.PHONY: run test bench binary install-desktop
run:
	scripts/run.sh
test:
	scripts/test.sh
bench:
	scripts/bootstrap.sh test && .venv/bin/python -m pip install -q -e '.[dev]' && \
	  .venv/bin/python bench/retrieve.py
binary:
	build/build.sh both
install-desktop:
	build/install-desktop.sh
