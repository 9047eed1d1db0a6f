# tests/fuzz/fuzz.mk - libFuzzer targets; included by the top Makefile
# after its variables (CORE_SRC, HEADERS, XCFLAGS, XLDLIBS, BUILD) and its
# need_pkgs macro. docs/FUZZING.md says what each target does.
#
#   make fuzz-build   build-fuzz/fuzz_<target>: clang, libFuzzer, ASan, UBSan
#   make fuzz         each target for FUZZ_SECONDS (60) from its seeds; the
#                     growing corpus is build-fuzz/corpus/<target>, crashes
#                     go to build-fuzz/findings/<target>/
#   make fuzz-ci      the regression inputs once, then each target for
#                     FUZZ_CI_SECONDS (20)
#   make fuzz-coverage  line coverage of the work corpora (llvm-cov)
#   make fuzz-deps    the Debian packages: clang and its runtime (and
#                     llvm-14 for fuzz-coverage)
#   FUZZ_TARGETS=jid make fuzz     one target only

FUZZ_CC ?= clang
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 20
FUZZ_TARGETS ?= xmlstream sasl jid value config
FUZZ_FLAGS ?= -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
FUZZ_PKGS := clang libclang-rt-14-dev
FUZZ_COV_PKGS := llvm-14

FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	$(XCFLAGS) -DSTARLING_FUZZ_LUA_DIR='"$(CURDIR)/lua"'
FUZZ_OBJ := $(CORE_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB := $(FUZZ_BUILD)/libcore.a
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_COMMON := tests/fuzz/fuzz_common.h

$(FUZZ_BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# An archive: each target links only the core files it needs.
$(FUZZ_LIB): $(FUZZ_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(FUZZ_LIB) $(HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DSTARLING_LIBFUZZER -fsanitize=fuzzer \
		-o $@ $< $(FUZZ_LIB) \
		$(XLDLIBS) $(LDLIBS)

# The unit test that replays the seeds and regression inputs includes the
# targets' sources.
$(BUILD)/obj/tests/unit/test_fuzz_regress.o: $(wildcard tests/fuzz/*.c) $(FUZZ_COMMON)

fuzz-deps:
	$(call need_pkgs,$(FUZZ_PKGS))

fuzz-build: $(FUZZ_BIN)

# The packages first (quick when they are there).
$(FUZZ_OBJ) $(FUZZ_BIN): | deps fuzz-deps

# $(1): seconds per target. Every target runs even when one fails; the
# recipe fails at the end if any did.
define fuzz_run
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
		seed=tests/fuzz/seed_$$(echo $$t | sed 's/^xmlstream$$/xml/'); \
		work=$(FUZZ_BUILD)/corpus/$$t; \
		out=$(FUZZ_BUILD)/findings/$$t; \
		mkdir -p $$work $$out; \
		cp -n $$seed/* $$work/ 2>/dev/null || true; \
		if [ -d tests/fuzz/regress_$$t ]; then \
			cp -n tests/fuzz/regress_$$t/* $$work/ 2>/dev/null || true; \
		fi; \
		dict=""; \
		if [ -f tests/fuzz/$$t.dict ]; then dict=-dict=tests/fuzz/$$t.dict; fi; \
		echo "== fuzz_$$t: $(1) s, corpus $$work"; \
		$(FUZZ_BUILD)/fuzz_$$t $(FUZZ_FLAGS) $$dict -max_total_time=$(1) \
			-artifact_prefix=$$out/ $$work || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "fuzz: findings in:$$failed (see $(FUZZ_BUILD)/findings/)"; \
		exit 1; \
	fi
endef

fuzz: fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

# The seeds and regression inputs once each (libFuzzer runs the files
# given as arguments without fuzzing); the log of a failure is shown.
fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		seed=tests/fuzz/seed_$$(echo $$t | sed 's/^xmlstream$$/xml/'); \
		files=$$(ls -d $$seed/* tests/fuzz/regress_$$t/* 2>/dev/null || true); \
		echo "== fuzz_$$t: replaying $$(echo $$files | wc -w) inputs"; \
		[ -z "$$files" ] || $(FUZZ_BUILD)/fuzz_$$t $$files >/dev/null 2>$(FUZZ_BUILD)/replay_$$t.log \
			|| { cat $(FUZZ_BUILD)/replay_$$t.log; exit 1; }; \
	done

# For CI: the replay, then a short run of every target.
fuzz-ci: fuzz-regress
	$(call fuzz_run,$(FUZZ_CI_SECONDS))

# Line coverage of what the work corpora reach: the targets again, built
# with clang's source-based coverage (no sanitizers), run once over
# build-fuzz/corpus/<target> (the seeds when there is none yet).
FUZZ_COV := $(FUZZ_BUILD)/cov
FUZZ_COV_CFLAGS := -g -O0 -fprofile-instr-generate -fcoverage-mapping \
	$(XCFLAGS) -DSTARLING_FUZZ_LUA_DIR='"$(CURDIR)/lua"'
FUZZ_COV_OBJ := $(CORE_SRC:%.c=$(FUZZ_COV)/obj/%.o)
FUZZ_COV_FILES_xmlstream := core/xmpp/xmlstream.c core/xmpp/xmlstream_mem.c \
	core/xmpp/stanza.c
FUZZ_COV_FILES_sasl := core/xmpp/sasl.c
FUZZ_COV_FILES_jid := core/xmpp/jid.c
FUZZ_COV_FILES_value := storage/value.c core/lua/lx_value.c
FUZZ_COV_FILES_config := core/lua/lx_config.c
LLVM_PROFDATA ?= llvm-profdata-14
LLVM_COV ?= llvm-cov-14

$(FUZZ_COV)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) -c -o $@ $<

$(FUZZ_COV)/libcore.a: $(FUZZ_COV_OBJ)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_COV)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_COMMON) $(FUZZ_COV)/libcore.a $(HEADERS)
	$(FUZZ_CC) $(FUZZ_COV_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_COV)/libcore.a $(XLDLIBS) $(LDLIBS)

$(FUZZ_COV_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_COV)/fuzz_%): | deps fuzz-deps fuzz-cov-deps

fuzz-cov-deps:
	$(call need_pkgs,$(FUZZ_COV_PKGS))

fuzz-coverage: $(FUZZ_TARGETS:%=$(FUZZ_COV)/fuzz_%)
	@set -e; $(foreach t,$(FUZZ_TARGETS), \
		corpus=$(FUZZ_BUILD)/corpus/$(t); \
		[ -d $$corpus ] || corpus=tests/fuzz/seed_$(if $(filter xmlstream,$(t)),xml,$(t)); \
		echo "== fuzz_$(t) over $$corpus"; \
		rm -f $(FUZZ_COV)/$(t).profraw; \
		LLVM_PROFILE_FILE=$(FUZZ_COV)/$(t).profraw $(FUZZ_COV)/fuzz_$(t) \
			-runs=0 $$corpus >/dev/null 2>&1; \
		$(LLVM_PROFDATA) merge -sparse -o $(FUZZ_COV)/$(t).profdata \
			$(FUZZ_COV)/$(t).profraw; \
		$(LLVM_COV) report $(FUZZ_COV)/fuzz_$(t) \
			-instr-profile=$(FUZZ_COV)/$(t).profdata \
			$(FUZZ_COV_FILES_$(t));)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

clean: fuzz-clean

.PHONY: fuzz fuzz-build fuzz-ci fuzz-regress fuzz-deps fuzz-clean fuzz-coverage \
	fuzz-cov-deps
