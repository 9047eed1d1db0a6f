# bench/bench.mk - the load generator and the side-by-side benchmark.
# Included from the top Makefile (which sets CC, BUILD and PYTHON).
#   make build/loadgen   the load generator (bench/loadgen/*.c)
#   make build/nullserver  the null server of bench/perf25.py (bench/nullserver.c)
#   make bench           build everything, run bench/run.py, append to
#                        bench/HISTORY.md (BENCH_ARGS passes options on)
#   make loadgen-test    the generator's own checks (bench/selftest.sh)
#   make bench-deps      install the servers to compare with (Debian's prosody
#                        and ejabberd; run.py skips those not installed)

LOADGEN_SRC := $(wildcard bench/loadgen/*.c)
LOADGEN_OBJ := $(LOADGEN_SRC:%.c=$(BUILD)/obj/%.o)
LOADGEN_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -D_GNU_SOURCE -pthread \
	$(shell pkg-config --cflags openssl expat 2>/dev/null)
LOADGEN_LIBS := $(shell pkg-config --libs openssl expat 2>/dev/null) -lev -lm -pthread

$(BUILD)/obj/bench/loadgen/%.o: bench/loadgen/%.c bench/loadgen/lg.h
	@mkdir -p $(dir $@)
	$(CC) $(LOADGEN_CFLAGS) -c -o $@ $<

$(BUILD)/loadgen: $(LOADGEN_OBJ)
	$(CC) $(LOADGEN_CFLAGS) -o $@ $^ $(LOADGEN_LIBS)

# The generator's latency floor (bench/perf25.py): a server that does
# nothing but canned logins and forwarding bytes.
$(BUILD)/nullserver: bench/nullserver.c
	@mkdir -p $(dir $@)
	$(CC) $(LOADGEN_CFLAGS) -o $@ $<

# A server that does not build is skipped by run.py (and said so), not fatal.
bench: deps
	$(MAKE) $(BUILD)/loadgen
	-$(MAKE) all
	$(PYTHON) bench/run.py --build $(BUILD) $(BENCH_ARGS)

BENCH_DEPS := prosody ejabberd lua-dbi-sqlite3

bench-deps: deps
	$(call need_pkgs,$(BENCH_DEPS))

loadgen-test: $(BUILD)/loadgen
	sh bench/selftest.sh $(BUILD)

.PHONY: bench bench-deps loadgen-test
