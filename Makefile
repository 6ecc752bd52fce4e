# Gantry's build. `make` builds every component into bin/; `make test` and `make run` first install
# what is missing (scripts/deps.sh), so both work on a fresh Debian machine.
#
# BUILD=release (default) or BUILD=asan; objects go to build/$(BUILD)/, binaries to $(BINDIR).

BUILD ?= release
CC ?= gcc
O := build/$(BUILD)
ifeq ($(BUILD),asan)
  BINDIR ?= $(O)/bin
  SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1
else
  BINDIR ?= bin
  SANITIZE :=
  OPT := -O2
endif

NO_DEPS_GOALS := clean fmt fmt-check help
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
# build/flags.mk is remade (installing missing packages first) whenever it is missing; make then
# restarts with the library flags it holds.
-include build/flags.mk
endif

CPPFLAGS += -I. -D_GNU_SOURCE $(PKG_CFLAGS)
CFLAGS += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 \
          -Wno-missing-field-initializers -MMD -MP $(SANITIZE)
LDFLAGS += $(SANITIZE)
LDLIBS += $(PKG_LIBS) -lm -lpthread

# One library for what two or more components share; each binary links it.
LIB_SRCS := $(wildcard common/*.c) $(wildcard config/*.c)
LIB := $(O)/libgantry.a

# name:source-directory for every binary; adding a daemon is one word here.
PROGRAMS := gantry:cli gantry-demo-app:demo gantry-lb:lb gantry-core:core gantry-metrics:metrics \
            gantry-autoscaler:autoscaler
BINS := $(foreach p,$(PROGRAMS),$(BINDIR)/$(word 1,$(subst :, ,$(p))))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRCS))
# Components whose code (all but main.c) unit tests may call: each becomes lib<dir>.a.
UNIT_DIRS := lb core autoscaler metrics
UNIT_LIBS := $(foreach d,$(UNIT_DIRS),$(O)/lib$(d).a)

.PHONY: all deps test unit system asan run clean fmt fmt-check fuzz help
# Keep every intermediate object: no "rm ..." line may follow the test summary.
.SECONDARY:
all: $(BINS) $(UNIT_BINS)

help:
	@echo "targets: all test asan run deps fmt fmt-check clean"

build/flags.mk: scripts/deps.sh
	@scripts/deps.sh build test
	@mkdir -p build
	@{ echo "PKG_CFLAGS := $$(pkg-config --cflags hiredis libcurl yaml-0.1 jansson cmocka)"; \
	   echo "PKG_LIBS := $$(pkg-config --libs hiredis libcurl yaml-0.1 jansson) \
	     $$(pkg-config --libs libev 2>/dev/null || echo -lev)"; \
	   echo "CMOCKA_LIBS := $$(pkg-config --libs cmocka)"; } > $@.tmp && mv $@.tmp $@

deps:
	@scripts/deps.sh build test

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(patsubst %.c,$(O)/%.o,$(LIB_SRCS))
	@rm -f $@
	$(AR) rcs $@ $^

# Component libraries a program links besides its own directory (the CLI follows Redis like lb).
EXTRA_LIBS_gantry := $(O)/liblb.a $(O)/libmetrics.a
EXTRA_LIBS_gantry-lb := $(O)/libmetrics.a
EXTRA_LIBS_gantry-autoscaler := $(O)/libmetrics.a

define program_rule
$(BINDIR)/$(1): $(patsubst %.c,$(O)/%.o,$(wildcard $(2)/*.c)) $(EXTRA_LIBS_$(1)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(word 1,$(subst :, ,$(p))),$(word 2,$(subst :, ,$(p))))))

# The demo workload linked statically: the whole root filesystem of the DOCKER tests' image
# (`docker import` of a tarball holding it alone: no registry is reachable). Release builds only:
# sanitizers do not link statically, so `make asan`'s tests use (or build) the release one.
ifeq ($(BUILD),release)
all: $(BINDIR)/gantry-demo-app-static
$(BINDIR)/gantry-demo-app-static: $(patsubst %.c,$(O)/%.o,$(wildcard demo/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -static $^ -lev -lyaml -ljansson -lhiredis -lm -lpthread -o $@ 2>$(O)/static-link.log \
	  || { cat $(O)/static-link.log; exit 1; }
endif

define component_lib_rule
$(O)/lib$(1).a: $(patsubst %.c,$(O)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
	@rm -f $$@
	$$(AR) rcs $$@ $$^
endef
$(foreach d,$(UNIT_DIRS),$(eval $(call component_lib_rule,$(d))))

$(O)/tests/%: $(O)/tests/unit/%.o $(UNIT_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CMOCKA_LIBS) -o $@

# The whole suite: unit tests, then system tests against the real binaries. The last line it prints
# is `N passed, N failed, N skipped`.
test: deps all
	@GANTRY_BIN=$(abspath $(BINDIR)) GANTRY_UNIT=$(abspath $(O)/tests) python3 tests/run.py

# Coverage-guided fuzzing of the parsers with libFuzzer (clang), each target for FUZZ_SECONDS,
# starting from the seeds in tests/fuzz/seeds-NAME/ plus what earlier runs found.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# The shared library's sources, plus the pure parsers of gantry-core (task definitions) and
# gantry-autoscaler (policies), with the metric names they use.
FUZZ_SRCS := $(LIB_SRCS) core/taskdef.c core/api_error.c autoscaler/model.c metrics/series.c \
             metrics/store.c metrics/hist.c
FUZZ_FLAGS := -std=c11 -g -O1 -I. -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined
fuzz:
	@scripts/deps.sh build fuzz
	@mkdir -p build/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	  clang $(FUZZ_FLAGS) $(PKG_CFLAGS) tests/fuzz/$$t.c $(FUZZ_SRCS) $(PKG_LIBS) -lm \
	    -o build/fuzz/$$t; \
	  mkdir -p build/fuzz/corpus-$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t tests/fuzz/seeds-$$t \
	    2>build/fuzz/$$t.log || { tail -40 build/fuzz/$$t.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units|^Done' build/fuzz/$$t.log || true; \
	done

asan:
	@$(MAKE) --no-print-directory BUILD=asan test

run: deps $(BINS)
	$(BINDIR)/gantry up $(RUN_ARGS)

fmt:
	@scripts/deps.sh fmt
	clang-format -i $$(git ls-files '*.c' '*.h')

fmt-check:
	@scripts/deps.sh fmt
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build bin

-include $(shell find $(O) -name "*.d" 2>/dev/null)
