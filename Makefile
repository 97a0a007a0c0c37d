# neurodeploy — set up a fresh machine and run the main job (`make demo`) or the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch; override for another build, e.g. `make demo TORCH_SPEC=torch==2.13.0+cu126`.
TORCH_SPEC ?= torch==2.13.0
OUT ?= out
BIN := $(VENV)/bin
ND := $(BIN)/neurodeploy

.PHONY: setup demo delays lint test test-fast dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	@echo "setup: installing $(TORCH_SPEC) into $(VENV) (the CPU build: about a minute)"
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	@echo "setup: installing neurodeploy and its test tools; compiling the fused C++ kernel (a few minutes)"
	$(BIN)/pip install --quiet -e ".[test]"
	@echo "setup: done"
	touch $@

setup: $(VENV)/.installed

demo: setup
	@mkdir -p $(OUT)
	$(ND) train models/yinyang.yaml -o $(OUT)/yinyang.pt
	$(ND) map $(OUT)/yinyang.pt --target bss2 -o $(OUT)/yinyang.npz
	$(ND) evaluate $(OUT)/yinyang.pt --json > $(OUT)/yinyang.software.json
	$(ND) run $(OUT)/yinyang.npz --backend mock:ideal --json > $(OUT)/yinyang.mock.json
	# The same model file on the second target: Xylo's bit-exact emulator (it warns where Xylo's neurons differ).
	$(ND) map $(OUT)/yinyang.pt --target xylo -o $(OUT)/yinyang.xylo.npz
	$(ND) run $(OUT)/yinyang.xylo.npz --backend xylo-sim --json > $(OUT)/yinyang.xylo.json
	$(ND) train models/digits.yaml -o $(OUT)/digits.pt
	$(ND) map $(OUT)/digits.pt --target bss2 -o $(OUT)/digits.npz
	$(ND) evaluate $(OUT)/digits.pt --json > $(OUT)/digits.software.json
	$(ND) run $(OUT)/digits.npz --backend mock:ideal --json > $(OUT)/digits.mock.json
	# The chip path: calibrate emulated chip 0, map a hardware-aware model with and without it, run on the chip.
	# Its 5-input hidden layer spreads each weight over 25 synapses so that their mismatch averages out.
	$(ND) calibrate --backend mock:0 --target bss2 -o $(OUT)/calibration/mock-0.yaml
	$(ND) train models/yinyang_hw.yaml -o $(OUT)/yinyang_hw.pt
	$(ND) evaluate $(OUT)/yinyang_hw.pt --json > $(OUT)/yinyang_hw.software.json
	$(ND) map $(OUT)/yinyang_hw.pt --target bss2 --weight-copies 25 -o $(OUT)/yinyang_hw.npz
	$(ND) map $(OUT)/yinyang_hw.pt --target bss2 --weight-copies 25 --calibration $(OUT)/calibration/mock-0.yaml -o $(OUT)/yinyang_hw.chip0.npz
	$(ND) run $(OUT)/yinyang_hw.npz --backend mock:ideal --json > $(OUT)/yinyang_hw.mock.json
	$(ND) run $(OUT)/yinyang_hw.npz --backend mock:0 --json > $(OUT)/yinyang_hw.chip0-uncalibrated.json
	$(ND) run $(OUT)/yinyang_hw.chip0.npz --backend mock:0 --json > $(OUT)/yinyang_hw.chip0-calibrated.json
	# In-the-loop fine-tuning on chip 0 recovers part of what calibration left (prints accuracy before and after).
	$(ND) itl $(OUT)/yinyang_hw.pt --target bss2 --backend mock:0 --calibration $(OUT)/calibration/mock-0.yaml -o $(OUT)/yinyang_hw.itl-chip0.pt --epochs 2 --train-samples 2000 --weight-copies 25
	$(ND) map $(OUT)/yinyang_hw.itl-chip0.pt --target bss2 --calibration $(OUT)/calibration/mock-0.yaml -o $(OUT)/yinyang_hw.itl-chip0.npz
	$(ND) run $(OUT)/yinyang_hw.itl-chip0.npz --backend mock:0 --json > $(OUT)/yinyang_hw.chip0-itl.json
	# A Yin-Yang model trained with the neuron dynamics Xylo realises, on both targets.
	$(ND) train models/yinyang_xylo.yaml -o $(OUT)/yinyang_xylo.pt
	$(ND) evaluate $(OUT)/yinyang_xylo.pt --json > $(OUT)/yinyang_xylo.software.json
	$(ND) map $(OUT)/yinyang_xylo.pt --target xylo -o $(OUT)/yinyang_xylo.xylo.npz
	$(ND) run $(OUT)/yinyang_xylo.xylo.npz --backend xylo-sim --json > $(OUT)/yinyang_xylo.xylo.json
	$(ND) map $(OUT)/yinyang_xylo.pt --target bss2 -o $(OUT)/yinyang_xylo.npz
	$(ND) run $(OUT)/yinyang_xylo.npz --backend mock:ideal --json > $(OUT)/yinyang_xylo.mock.json
	$(BIN)/python scripts/accuracy_table.py $(OUT)

# Learnable delays (docs/delays.md): the delay task with and without delays, each BSS-2 delay strategy on
# mock:ideal, the seed's experiments, and the results table.
DELAY_STRATEGIES := multi-synapse spike-strength gradient-only
delays: setup
	@mkdir -p $(OUT)
	$(ND) train models/delay_task.yaml -o $(OUT)/delay_task.pt --json > $(OUT)/delay_task.train.json
	$(ND) train models/delay_task_nodelay.yaml -o $(OUT)/delay_task_nodelay.pt --json > $(OUT)/delay_task_nodelay.train.json
	$(ND) evaluate $(OUT)/delay_task.pt --json > $(OUT)/delay_task.software.json
	for s in $(DELAY_STRATEGIES); do \
	  $(ND) map $(OUT)/delay_task.pt --target bss2 --delays $$s --json -o $(OUT)/delay_task.$$s.npz > $(OUT)/delay_task.$$s.map.json && \
	  $(ND) run $(OUT)/delay_task.$$s.npz --backend mock:ideal --json > $(OUT)/delay_task.$$s.mock.json || exit 1; \
	done
	$(BIN)/python examples/delay_experiments.py --json > $(OUT)/delay_experiments.json
	$(BIN)/python scripts/delay_table.py $(OUT) | tee $(OUT)/delay_table.md

# Static checks: lint (ruff), types (mypy), and the architecture contracts (import-linter: no BSS-2
# module is imported by generic code or by another target).
lint: setup
	$(BIN)/ruff check neurodeploy tests benchmarks examples scripts
	$(BIN)/mypy neurodeploy
	$(BIN)/lint-imports

# The static checks and all tests, the slow end-to-end accuracy checks included (this is what CI runs).
test: lint
	$(BIN)/python -m pytest -m "slow or not slow"

# The fast tests only (a few minutes).
test-fast: setup
	$(BIN)/python -m pytest

# The sdist and the wheel in dist/ (docs/packaging.md): the wheel is built from the sdist, so a wheel that
# works proves the sdist complete. No build isolation: nothing is downloaded, the venv's setuptools builds.
dist: setup
	rm -rf dist
	$(BIN)/python -c "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])" dist
	$(BIN)/python -m pip wheel --no-deps --no-build-isolation -q -w dist dist/neurodeploy-*.tar.gz
	@ls -l dist

clean:
	rm -rf $(OUT) .pytest_cache build dist
