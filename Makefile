# Starling - build, run, test.
#   make            build/starling and build/starlingctl
#   make run        a server for localhost in the foreground (example.cfg)
#   make test       every test a fresh machine can run
#   make test-asan  the same suite on an ASan + UBSan build
#   make test-tsan  the same suite on a ThreadSanitizer build
#   make deps       install the Debian packages needed (root), or say which
#   make deb        build/deb/starling_*.deb (packaging/: unit, config, debian/)

PREFIX ?= /usr/local
CC ?= cc
BUILD ?= build
PYTHON ?= /usr/bin/python3
# The config file starling and starlingctl read without -c.
DEFAULT_CONFIG ?= starling.cfg

PKGS := lua5.4 libidn openssl expat libpq hiredis
CFLAGS ?= -O2 -g
SANFLAGS ?=
# One folder a layer, each built as its own static library (see
# docs/ARCHITECTURE.md); the server links what it needs. Headers are found
# by name from every layer's folder.
LAYERS := core/base core/net core/xmpp core/http core/events core/features core/lua storage
INCLUDES := -Icore $(LAYERS:%=-I%)
XCFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -D_GNU_SOURCE -pthread $(INCLUDES) \
	-DSTARLING_DEFAULT_CONFIG='"$(DEFAULT_CONFIG)"' \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libunbound (DNS, core/net/dns.c) uses libevent, and libev exports
# libevent's names too (its emulation layer): libevent is linked before
# libev so that libunbound's event_set() is libevent's, not libev's (which
# writes past libevent's struct event). Not through pkg-config: Debian's
# libunbound.pc requires libevent.pc, in libevent-dev only.
XLDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lunbound \
	-Wl,--push-state,--no-as-needed -levent -Wl,--pop-state -lev -llmdb \
	-lhttp_parser -lwslay -lm -pthread
CC_ALL = $(CC) $(CFLAGS) $(SANFLAGS) $(XCFLAGS)
LINK_ALL = $(CC) $(CFLAGS) $(SANFLAGS) $(LDFLAGS)

BUILD_DEPS := gcc make pkg-config libev-dev libexpat1-dev libssl-dev \
	liblua5.4-dev liblmdb-dev libidn-dev libunbound-dev libevent-dev openssl \
	libhttp-parser-dev libwslay-dev libpq-dev libhiredis-dev
TEST_DEPS := python3 python3-slixmpp python3-aioxmpp python3-nbxmpp python3-openssl lua-check lmdb-utils prosody prosody-modules \
	go-sendxmpp mcabber tmux sendxmpp profanity nsd ldnsutils \
	lua-unbound ejabberd python3-websockets python3-prometheus-client \
	biboumi ngircd debhelper dpkg-dev fakeroot lintian systemd \
	nodejs libjs-strophe node-xmldom \
	python3-aiohttp coturn chromium postgresql redis-server

# core/*.c (start-up, server settings, admin socket) is the "server" layer.
LAYER_LIBS := $(foreach l,server $(notdir $(LAYERS)),$(BUILD)/lib/lib$(l).a)
CORE_SRC := $(filter-out core/main.c,$(wildcard core/*.c)) \
	$(foreach l,$(LAYERS),$(wildcard $(l)/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/core/main.o
# starlingctl's own Lua bindings (export, import, accounts) live in tools/
# and are not linked into the server.
TOOLS_LIB := $(BUILD)/lib/libtools.a
TOOLS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out tools/starlingctl.c,$(wildcard tools/*.c)))
CTL_OBJ := $(BUILD)/obj/tools/starlingctl.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs the Python tests drive (not run as unit tests by themselves).
TEST_TOOLS := $(BUILD)/tests/dnsq $(BUILD)/loadgen
HEADERS := $(wildcard core/*.h $(LAYERS:%=%/*.h) tools/*.h tests/unit/*.h)
# Programs are linked again when the Makefile (its libraries) changes.
# Libraries may call each other's functions (the Lua bridge and the layers
# it binds), so they are linked as one group.
LINK_LIBS = -Wl,--start-group $(LAYER_LIBS) -Wl,--end-group

all: $(BUILD)/starling $(BUILD)/starlingctl

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC_ALL) -c -o $@ $<

$(BUILD)/obj/tools/%.o $(BUILD)/obj/tests/unit/%.o: XCFLAGS += -Itools

$(BUILD)/lib/libserver.a: $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out core/main.c,$(wildcard core/*.c)))
$(foreach l,$(LAYERS),$(eval $(BUILD)/lib/lib$(notdir $(l)).a: $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard $(l)/*.c))))
$(TOOLS_LIB): $(TOOLS_OBJ)
$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/starling: $(MAIN_OBJ) $(LAYER_LIBS) Makefile
	$(LINK_ALL) -o $@ $(MAIN_OBJ) $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

$(BUILD)/starlingctl: $(CTL_OBJ) $(TOOLS_LIB) $(LAYER_LIBS) Makefile
	$(LINK_ALL) -o $@ $(CTL_OBJ) $(TOOLS_LIB) $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TOOLS_LIB) $(LAYER_LIBS) Makefile
	@mkdir -p $(dir $@)
	$(LINK_ALL) -o $@ $< $(TOOLS_LIB) $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

unit: $(UNIT_BIN) $(TEST_TOOLS)

# Storage benchmark (bench/storage_bench.c): make build/storage_bench
$(BUILD)/storage_bench: $(BUILD)/obj/bench/storage_bench.o $(LAYER_LIBS)
	$(LINK_ALL) -o $@ $< $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

# Server CPU per TLS handshake (bench/tls_handshake.c): make build/tls_handshake
$(BUILD)/tls_handshake: $(BUILD)/obj/bench/tls_handshake.o $(LAYER_LIBS)
	$(LINK_ALL) -o $@ $< $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

# OpenSSL's memory per idle connection (bench/tls_mem.c): make build/tls_mem
$(BUILD)/tls_mem: $(BUILD)/obj/bench/tls_mem.o $(LAYER_LIBS)
	$(LINK_ALL) -o $@ $< $(LINK_LIBS) $(XLDLIBS) $(LDLIBS)

# Packages: install what is missing when root, else print the command.
define need_pkgs
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing: $$missing"; \
			(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
		else \
			echo "missing packages; run: sudo apt-get install -y $$missing"; exit 1; \
		fi; \
	fi
endef

deps:
	$(call need_pkgs,$(BUILD_DEPS))

test-deps: deps
	$(call need_pkgs,$(TEST_DEPS))
	@# the federation tests start their own Prosody and ejabberd: the system
	@# services the packages may have started would hold 5222/5269 everywhere
	@for s in prosody ejabberd; do \
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet $$s 2>/dev/null; then \
			echo "stopping the system $$s"; systemctl disable --now $$s; \
		elif pgrep -u $$s >/dev/null 2>&1 && [ -x /etc/init.d/$$s ]; then \
			echo "stopping the system $$s"; /etc/init.d/$$s stop; \
		fi; \
	done; true

certs/localhost.crt:
	@mkdir -p certs
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 3650 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout certs/localhost.key \
		-out certs/localhost.crt 2>/dev/null
	chmod 600 certs/localhost.key

run: deps
	$(MAKE) all
	$(MAKE) certs/localhost.crt
	@mkdir -p data
	exec $(BUILD)/starling -c example.cfg

# playwright-core, Converse.js and strophe.js for tests/browser (chromium
# itself is in TEST_DEPS), at the versions of its package-lock.json: npm ci
# runs when node_modules is missing or older than the lock file. npm is
# Debian's package unless nodejs brought its own (NodeSource's does; it
# conflicts with Debian's npm).
BROWSER_MODULES := tests/browser/node_modules/.package-lock.json
browser-deps: $(BROWSER_MODULES)
$(BROWSER_MODULES): tests/browser/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory npm-package
	cd tests/browser && npm ci --no-audit --no-fund
	@touch $@
npm-package:
	$(call need_pkgs,npm)

test: test-deps
	$(MAKE) browser-deps all unit
	$(PYTHON) tests/run.py --build $(BUILD)

test-asan: test-deps
	$(MAKE) browser-deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" \
		SANFLAGS="-fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
		$(PYTHON) tests/run.py --build build-asan --asan

# The archive writer (storage/store.c) is a second thread: a data race
# ends the server at its first report (run.py --tsan sets TSAN_OPTIONS).
test-tsan: test-deps
	$(MAKE) BUILD=build-tsan CFLAGS="-O1 -g" \
		SANFLAGS="-fno-omit-frame-pointer -fsanitize=thread" \
		all unit
	$(PYTHON) tests/run.py --build build-tsan --tsan

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/starling
	install -m 755 $(BUILD)/starling $(BUILD)/starlingctl $(DESTDIR)$(PREFIX)/bin/
	cp -r lua modules $(DESTDIR)$(PREFIX)/share/starling/
	install -m 644 example.cfg $(DESTDIR)$(PREFIX)/share/starling/

# The Debian package, built by dpkg-buildpackage from a copy of the tree
# (packaging/debian becomes its debian/): build/deb/starling_VERSION_ARCH.deb.
DEB_SRC := $(BUILD)/deb/starling
deb:
	$(call need_pkgs,$(BUILD_DEPS) debhelper dpkg-dev fakeroot)
	rm -rf $(BUILD)/deb && mkdir -p $(DEB_SRC)
	cp -r Makefile README.md example.cfg core storage tools lua modules packaging \
		$(DEB_SRC)/
	cp -r packaging/debian $(DEB_SRC)/debian
	cp packaging/starling.service $(DEB_SRC)/debian/starling.service
	cp packaging/starling.logrotate $(DEB_SRC)/debian/starling.logrotate
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b -j2 >../build.log 2>&1 || \
		{ tail -40 ../build.log; exit 1; }
	@ls $(BUILD)/deb/*.deb

clean:
	rm -rf build build-asan build-tsan

-include bench/bench.mk
-include tests/fuzz/fuzz.mk

.PHONY: all unit deps test-deps browser-deps npm-package run test test-asan test-tsan install deb clean
