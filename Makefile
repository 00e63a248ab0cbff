# The commands a newcomer uses. Each first installs what is missing.
SHELL := /bin/bash
BUILD      ?= build/release
TEST_BUILD ?= build/asan
TSAN_BUILD ?= build/tsan
FUZZ_BUILD ?= build/fuzz
CLANG_BUILD ?= build/clang
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)

.PHONY: deps deps-vms deps-libvirt deps-test build demo demo-vms demo-libvirt demo-simulate test tsan locks bench fuzz install clean

# What each command needs, and no more: the partition demo needs no QEMU,
# kernel or browser.
deps:
	@bash scripts/install-deps build
deps-vms:
	@bash scripts/install-deps build vms
deps-libvirt:
	@bash scripts/install-deps build vms libvirt
deps-test:
	@bash scripts/install-deps test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMM_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@$(BUILD)/src/cli/cmm demo

# The main job with real QEMU guests: three 512 MiB VMs (Linux's own
# virtio_balloon) on a 768 MiB pool, their workloads running inside.
demo-vms: deps-vms build
	@scripts/make-guest-image $(BUILD)/guest $(BUILD)/src/vmguest/cmm-vm-workload >/dev/null
	@$(BUILD)/src/cli/cmm demo --vms --image $(BUILD)/guest

# The same guests as transient libvirt domains beside libvirtd (which must
# be running: systemctl start libvirtd), managed by `cmm hv --libvirt`.
demo-libvirt: deps-libvirt build
	@scripts/make-guest-image $(BUILD)/guest $(BUILD)/src/vmguest/cmm-vm-workload >/dev/null
	@$(BUILD)/src/cli/cmm demo --libvirt --image $(BUILD)/guest

# The simulate-mode story of one partition (no hypervisor), about 10 s.
demo-simulate: build
	@bash scripts/demo-simulate $(BUILD)/src/cli/cmm

test: deps-test
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMM_SANITIZE=ON -DCMM_BENCH=OFF >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The whole suite again under ThreadSanitizer: the hypervisor serves each
# partition on a thread, the balloon polls on one; any data race fails.
tsan: deps-test
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMM_TSAN=ON -DCMM_BENCH=OFF >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	@cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS) --timeout 300

# Every source under clang with its thread-safety analysis as errors: a
# field marked GUARDED_BY touched without its mutex, or a function marked
# REQUIRES called without it, fails the build.
locks: deps-test
	@cmake -S . -B $(CLANG_BUILD) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMM_TESTS=OFF \
	  -DCMM_BENCH=OFF >/dev/null
	@cmake --build $(CLANG_BUILD) -j $(JOBS)
	@echo "locks: every source builds under clang -Wthread-safety -Werror"

# Every benchmark, then one table of their figures; the same as JSON in
# $(BUILD)/bench.json.
bench: deps-vms build
	@rm -f $(BUILD)/bench.jsonl
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_balloon
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_migrate
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_hv
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_micro
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_vm
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_sim
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_policy
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_giveback
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_giveback_partitions
	@CMM_BENCH_JSON=$(BUILD)/bench.jsonl $(BUILD)/bench/cmm_bench_libvirt
	@$(BUILD)/bench/cmm_bench_report $(BUILD)/bench.jsonl $(BUILD)/bench.json

# Each boundary where another side's bytes come in, under libFuzzer (clang,
# ASan, UBSan), FUZZ_SECONDS each from its seed corpus in fuzz/corpus: the
# wire decoder, a QEMU monitor's stream and decoders, the VM member driven
# by a program of replies and events, and the hcall dispatcher driven by a
# program of wire messages over a socket. What each finds new stays in
# $(FUZZ_BUILD)/corpus; a finding stops the run with its input saved there.
FUZZ_TARGETS ?= messages qmp_stream vm_member hcall
fuzz: deps-test
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMM_FUZZ=ON \
	  -DCMM_TESTS=OFF -DCMM_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) $(foreach t,$(FUZZ_TARGETS),--target cmm_fuzz_$(t))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/findings; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz/cmm_fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/findings/$$t- $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t 2>&1 \
	    | grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|.*check failed)' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# The binary to $(PREFIX)/bin and the systemd units to $(UNITDIR) (run as root).
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system
install: build
	install -D -m 0755 $(BUILD)/src/cli/cmm $(DESTDIR)$(PREFIX)/bin/cmm
	install -D -m 0644 contrib/systemd/cmm-hv.service $(DESTDIR)$(UNITDIR)/cmm-hv.service
	install -D -m 0644 contrib/systemd/cmm-guest@.service $(DESTDIR)$(UNITDIR)/cmm-guest@.service
	install -D -m 0644 contrib/systemd/cmm-hv-libvirt.conf $(DESTDIR)$(UNITDIR)/cmm-hv.service.d/libvirt.conf.example

clean:
	rm -rf build
