# mpkigw — mobile SIM-PKI authentication gateway.
# `make` builds, `make run` runs the demo, `make check` runs every test,
# `make bench` measures against nghttpd. See README.md.

SHELL := /bin/bash
.DEFAULT_GOAL := all

SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD ?= build
else
# A sanitizer build lives in its own directory so that it never mixes objects
# with the normal build.
BUILD ?= build/san-$(subst $(comma),-,$(SANITIZE))
endif
comma := ,

CC ?= cc
PKGS := libnghttp2 libevent_openssl libevent_pthreads jansson libconfig sqlite3 openssl \
        libp11 p11-kit-1 libcurl libxml-2.0
WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
        -Wpointer-arith -Wwrite-strings -Wvla -Wundef
ifeq ($(WERROR),1)
WARN += -Werror
endif
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -pthread -MMD -MP -Igateway -Ipkcs11 -Ioperators
CFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -pthread -lm
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
CFLAGS += -DMPKIGW_VERSION='"0.1.0 ($(VERSION))"'

GW_SRCS := $(filter-out gateway/main.c gateway/mpkictl.c,$(wildcard gateway/*.c)) \
           $(wildcard pkcs11/*.c) \
           $(filter-out operators/mssp_mock_main.c,$(wildcard operators/*.c))
GW_OBJS := $(GW_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/*/*_test.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
# Fuzz targets (LLVMFuzzerTestOneInput) are built with a replay driver so
# that `make check` runs their seed corpus with gcc; see tests/fuzz/.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/fuzz/%_replay,$(FUZZ_SRCS))
# Helpers shared by unit tests (in-process test servers, clients).
TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/%.o)
# Micro-benchmarks (crypto through pkcs11/ and the verifier), run by make bench.
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)

.PHONY: all deps run check bench unit clean format-check lint setup
MPKICTL := $(if $(wildcard gateway/mpkictl.c),$(BUILD)/mpkictl)
MSSP_MOCK := $(if $(wildcard operators/mssp_mock_main.c),$(BUILD)/mssp-mock)
all: $(BUILD)/mpkigw $(MPKICTL) $(MSSP_MOCK) $(UNIT_BINS) $(FUZZ_BINS) $(BENCH_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgw.a: $(GW_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mpkigw: $(BUILD)/gateway/main.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The mock operators (MSSPs with simulated SIMs).
$(BUILD)/mssp-mock: $(BUILD)/operators/mssp_mock_main.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The admin CLI.
$(BUILD)/mpkictl: $(BUILD)/gateway/mpkictl.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%_test: $(BUILD)/tests/unit/%_test.o $(TEST_SUPPORT_OBJS) $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%_test.o: CFLAGS += -Itests
$(BUILD)/tests/support/%.o: CFLAGS += -Itests
$(BUILD)/tests/bench/%.o: CFLAGS += -Itests

$(BUILD)/tests/bench/%: $(BUILD)/tests/bench/%.o $(TEST_SUPPORT_OBJS) $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fuzz/%_replay: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Installs the Debian packages the project needs (only those missing).
deps:
	@bash scripts/deps.sh

# First-run set-up of the demo under var/: TLS certificate and config, made once.
setup: all
	@bash scripts/setup.sh

run: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/setup.sh
	@bash scripts/run.sh

check: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash tests/bench/run.sh

format-check:
	clang-format --dry-run --Werror gateway/*.c gateway/*.h pkcs11/*.c pkcs11/*.h \
	  operators/*.c operators/*.h tests/unit/*/*.c tests/support/*.c tests/support/*.h tests/*.h

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 \
	  --suppress=missingIncludeSystem -Igateway -Ipkcs11 -Ioperators \
	  gateway pkcs11 operators

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
