# The commands a newcomer uses. Each first installs what is missing.
BUILD      ?= build/release
TEST_BUILD ?= build/asan
JOBS       ?= $(shell nproc)

.PHONY: deps build demo test bench clean

deps:
	@bash scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMM_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@bash scripts/demo-simulate $(BUILD)/src/cli/cmm

test: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMM_SANITIZE=ON -DCMM_BENCH=OFF >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

bench: build
	@$(BUILD)/bench/cmm_bench_balloon
	@$(BUILD)/bench/cmm_bench_migrate
	@$(BUILD)/bench/cmm_bench_hv

clean:
	rm -rf build
