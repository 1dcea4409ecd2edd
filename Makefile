# Two commands do all the set-up on a fresh machine:
#   make demo   - virtual environment + package, then measure the bundled sample scans
#   make test   - virtual environment + package with all extras (train, dicom, scale, test), then the tests
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test browser system-deps fonts serve bench-node bench-cine bench-page bench-accuracy bench-speed bench-robustness bench-scale bench-trust bench-load train cv compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[train,dicom,scale,web,validate,test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/fetalhead measure samples --pixel-size-csv samples/pixel_size_and_HC.csv \
		--out out/demo/results.csv --overlay out/demo/overlays --print-rows
	@echo "overlays in out/demo/overlays, results in out/demo/results.csv"

# Debian's packages the tests use (command:package): Chromium for the browser tests (Playwright drives it;
# no browser download), strace for the test that a measurement opens no network connection, npm for
# axe-core, DCMTK (dcmsend as the scanner, dsrdump to read the SR), Orthanc as the PACS and
# dicom3tools' dciodvfy (checks the SR and the overlay capture against their IODs), poppler's pdftoppm and
# pdftotext (the reports' pixels and text as printed).
SYSTEM_TOOLS = chromium:chromium strace:strace npm:npm dcmsend:dcmtk Orthanc:orthanc dciodvfy:dicom3tools pdftoppm:poppler-utils openssl:openssl
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || test -x /usr/sbin/$${t%%:*} || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) || \
	  echo "could not install$$missing (not root?): the tests that need them will be skipped"; fi

browser: system-deps

# axe-core (npm, version locked in tests/js/package-lock.json): the browser tests inject it into the page
AXE = tests/js/node_modules/axe-core/axe.min.js
$(AXE): tests/js/package.json tests/js/package-lock.json | system-deps
	cd tests/js && npm ci --no-audit --no-fund --silent || echo "could not install axe-core: the accessibility test will be skipped"

test: $(VENV)/.installed-dev system-deps $(AXE)
	$(BIN)/python -m pytest -q

serve: $(VENV)/.installed-dev
	$(BIN)/fetalhead serve

bench-accuracy: $(VENV)/.installed
	$(BIN)/python bench/accuracy.py

bench-node: $(VENV)/.installed-dev system-deps
	$(BIN)/python bench/node.py

bench-cine: $(VENV)/.installed-dev
	$(BIN)/python bench/cine.py

bench-page: $(VENV)/.installed-dev system-deps
	$(BIN)/python bench/page_weight.py

# The page's WOFF2 font subsets (committed; rerun after changing a translation)
fonts: $(VENV)/.installed-dev
	$(BIN)/python tools/subset_fonts.py

bench-speed: $(VENV)/.installed-dev
	$(BIN)/python bench/speed.py

bench-robustness: $(VENV)/.installed
	$(BIN)/python bench/robustness.py

bench-scale: $(VENV)/.installed-dev
	$(BIN)/python bench/scale.py

# Reproduce the shipped model (about 70 minutes on 2 CPU cores), export it into the package, make its INT8
# copy, and calibrate the 90 % intervals and review flag of both out of fold: every labelled image measured
# by the fold model of the same recipe that never saw its subject (training-artifacts/cv/r030/fold<k>.onnx,
# made by `make cv CV=runs/cv/r030` and `fetalhead export`), with the shipped pipeline settings (two fine
# passes); the records are measured once (out/calibration-records.pkl) for both models.
MODEL = src/fetalhead/model/weights/fetalhead_unet.onnx
FOLD_MODELS = training-artifacts/cv/r030/fold0.onnx training-artifacts/cv/r030/fold1.onnx training-artifacts/cv/r030/fold2.onnx
train: $(VENV)/.installed-dev
	$(BIN)/fetalhead train --data ../shared/data/hc18 --out runs/shipped --seed 0
	$(BIN)/fetalhead export runs/shipped/last.pt $(MODEL) --weights training-artifacts/fetalhead_unet.pt
	$(BIN)/fetalhead quantize --data ../shared/data/hc18 --model $(MODEL)
	$(BIN)/fetalhead calibrate --data ../shared/data/hc18 --model $(MODEL) --refine-passes 2 \
		--fold-models $(FOLD_MODELS) --records-cache out/calibration-records.pkl
	$(BIN)/fetalhead calibrate --data ../shared/data/hc18 --model $(MODEL:.onnx=_int8.onnx) --refine-passes 2 \
		--fold-models $(FOLD_MODELS) --records-cache out/calibration-records.pkl

# The yardstick of model changes (issue 20): a recipe trained once per fold of the fixed subject-grouped
# 3-fold split (training-artifacts/cv/folds.csv), each run without its fold (about 40 minutes a fold on
# 2 CPU cores, resumable), then compared image by image with model 0.3.0's recipe on the held-out images.
# A recipe is fetalhead train's options: CV_OPTS (e.g. CV_OPTS="--epochs 60").
CV ?= runs/cv/candidate
CV_OPTS ?=
cv: $(VENV)/.installed-dev
	for k in 0 1 2; do $(BIN)/fetalhead train --data ../shared/data/hc18 --out $(CV)/fold$$k --seed 0 --folds 3 \
		--fold $$k --val-every 40 --no-progress $(CV_OPTS) || exit 1; done

compare: $(VENV)/.installed-dev
	$(BIN)/python bench/compare_models.py r030=training-artifacts/cv/r030 candidate=$(CV)

bench-trust: $(VENV)/.installed-dev
	$(BIN)/python bench/trust.py

bench-load: $(VENV)/.installed-dev
	$(BIN)/python bench/load.py

clean:
	rm -rf $(VENV) out .pytest_cache
