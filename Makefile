# The two commands of README.md, and what they stand on. Every target runs the
# project's setup first (idempotent; a second or two when everything is installed).
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: setup configure build demo test test-asan test-tsan fuzz clean

setup:
	bash scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the known-answer self-check (a second), then the CPU/GPU comparison run
# on its defaults (`sectorcrypt compare`, about ten seconds), which also writes its JSON
# and SVG plot into the build folder.
demo: build
	./$(BUILD)/host/sectorcrypt-selfcheck
	./$(BUILD)/host/cli/sectorcrypt compare --json $(BUILD)/compare.json --plot $(BUILD)/compare.svg

# Builds and runs every test.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Issue 7: the suite under ASan+UBSan and under TSan (CPU only, -O1, own trees
# build-asan, build-tsan; see scripts/ci_sanitizers.sh for what is left out and why), and
# the libFuzzer targets for FUZZ_SECONDS each (clang, tree build-fuzz).
FUZZ_SECONDS ?= 45
test-asan: setup
	JOBS=$(JOBS) bash scripts/ci_sanitizers.sh asan

test-tsan: setup
	JOBS=$(JOBS) bash scripts/ci_sanitizers.sh tsan

fuzz: setup
	JOBS=$(JOBS) bash scripts/ci_fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD)
