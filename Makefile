# kfp-examplegen. `make run` and `make test` work on a fresh machine: they build .venv from
# requirements.lock (every package pinned) first.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= output

.PHONY: venv run test bench compile image image-beam lock-beam clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-test.lock pyproject.toml
	$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3 setuptools==80.9.0 wheel==0.48.0
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock -r requirements-test.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

# The main job on the embedded defaults: the bundled taxi CSV, SQLite ML Metadata.
run: venv
	mkdir -p $(OUT)
	$(BIN)/examplegen ingest --input-base examples/data/taxi --output $(OUT)/taxi_examples \
	    --mlmd sqlite:///$(OUT)/mlmd.sqlite
	@echo "Lineage: $(BIN)/examplegen lineage $(OUT)/taxi_examples --mlmd sqlite:///$(OUT)/mlmd.sqlite"

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python bench/run_bench.py

compile: venv
	$(BIN)/examplegen compile --output-dir pipelines/compiled

# The component image; IMAGE (or EXAMPLEGEN_IMAGE) names it, default kfp-examplegen:<version>,
# the name the compiled YAML refers to.
image: venv
	tag=$$(EXAMPLEGEN_IMAGE="$(or $(IMAGE),$(EXAMPLEGEN_IMAGE))" $(BIN)/python -c 'from kfp_examplegen import components; print(components.image())') && \
	docker build --platform linux/amd64 -f images/Dockerfile -t "$$tag" . && echo "built $$tag"

# The Beam flavour (target beam: apache-beam and Beam's worker boot entrypoint), named after
# the component image with -beam appended to its tag (components.beam_image()), e.g.
# kfp-examplegen:0.1.0-beam. BEAM_USER=0:0 builds it to run as root (Dataflow, see README).
image-beam: venv
	tag=$$(EXAMPLEGEN_IMAGE="$(or $(IMAGE),$(EXAMPLEGEN_IMAGE))" $(BIN)/python -c 'from kfp_examplegen import components; print(components.beam_image())') && \
	docker build --platform linux/amd64 -f images/Dockerfile --target beam \
	    $(if $(BEAM_USER),--build-arg BEAM_USER=$(BEAM_USER)) -t "$$tag" . && echo "built $$tag"

# requirements-beam.lock from the installed metadata of the `beam` extra (images/beam_lock.py).
lock-beam: venv
	$(BIN)/python images/beam_lock.py > requirements-beam.lock.new && mv requirements-beam.lock.new requirements-beam.lock

clean:
	rm -rf $(OUT) local_outputs .pytest_cache
