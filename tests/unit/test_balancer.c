/* Target selection: the distribution of 1,000 picks for each algorithm, the usable mask, weight 0,
 * no usable target, the per-worker pickers and the outstanding counters under threads. Groups come
 * from YAML through config_load(), the real schema. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "lb/balancer.h"
#include "lb/router.h"

static const char groups_yaml[] = "lb:\n"
                                  "  target_groups:\n"
                                  "    - name: rr\n" /* weights are ignored by round robin, but 0 */
                                  "      targets:\n"
                                  "        - {address: 127.0.0.1:9001, weight: 1}\n"
                                  "        - {address: 127.0.0.1:9002, weight: 5}\n"
                                  "        - {address: 127.0.0.1:9003, weight: 2}\n"
                                  "        - {address: 127.0.0.1:9004, weight: 1}\n"
                                  "    - name: rr0\n"
                                  "      targets:\n"
                                  "        - {address: 127.0.0.1:9001}\n"
                                  "        - {address: 127.0.0.1:9002, weight: 0}\n"
                                  "        - {address: 127.0.0.1:9003}\n"
                                  "    - name: lor\n"
                                  "      algorithm: least_outstanding_requests\n"
                                  "      targets:\n"
                                  "        - {address: 127.0.0.1:9001}\n"
                                  "        - {address: 127.0.0.1:9002}\n"
                                  "        - {address: 127.0.0.1:9003}\n"
                                  "        - {address: 127.0.0.1:9004, weight: 0}\n"
                                  "    - name: wr\n"
                                  "      algorithm: weighted_random\n"
                                  "      targets:\n"
                                  "        - {address: 127.0.0.1:9001, weight: 1}\n"
                                  "        - {address: 127.0.0.1:9002, weight: 0}\n"
                                  "        - {address: 127.0.0.1:9003, weight: 2}\n"
                                  "        - {address: 127.0.0.1:9004, weight: 3}\n"
                                  "        - {address: 127.0.0.1:9005, weight: 4}\n"
                                  "    - name: skewed\n"
                                  "      algorithm: weighted_random\n"
                                  "      targets:\n"
                                  "        - {address: 127.0.0.1:9001, weight: 999}\n"
                                  "        - {address: 127.0.0.1:9002, weight: 1}\n"
                                  "    - name: none\n"
                                  "      algorithm: weighted_random\n"
                                  "      targets: [{address: 127.0.0.1:9001, weight: 0}]\n"
                                  "    - name: empty\n";

static int setup(void **state)
{
    char path[] = "/tmp/gantry-test-balancer-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, groups_yaml, strlen(groups_yaml));
    close(fd);
    struct gantry_config cfg;
    struct cfg_errors errors;
    const char *files[] = {path};
    int rc = config_load(&cfg, files, 1, &errors);
    unlink(path);
    if (n != (ssize_t)strlen(groups_yaml) || rc != 0) {
        config_print_errors(&errors, stderr);
        return -1;
    }
    char err[256];
    *state = lb_routes_build(&cfg.lb, err, sizeof err);
    config_free(&cfg);
    if (!*state)
        fprintf(stderr, "lb_routes_build: %s\n", err);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    lb_routes_free(*state);
    return 0;
}

static const struct lb_target_group *group(void **state, const char *name)
{
    const struct lb_target_group *g = lb_routes_group(*state, name);
    assert_non_null(g);
    return g;
}

enum { PICKS = 1000, MAX_TARGETS = 8 };

/* PICKS picks from a fresh picker; counts[i]: how often target i came out. end_each: the request
 * finishes before the next pick (outstanding stays 0), else all stay outstanding. */
static void count_picks(const struct lb_target_group *g, uint64_t seed, const bool *usable,
                        bool end_each, size_t counts[MAX_TARGETS])
{
    struct lb_picker p;
    lb_picker_init(&p, seed, g->n_targets);
    const struct lb_target *held[PICKS];
    memset(counts, 0, MAX_TARGETS * sizeof counts[0]);
    for (int i = 0; i < PICKS; i++) {
        const struct lb_target *t = lb_pick(g, &p, usable);
        assert_non_null(t);
        assert_ptr_equal(t, &g->targets[t->index]);
        counts[t->index]++;
        lb_target_begin(t);
        held[i] = t;
        if (end_each)
            lb_target_end(t);
    }
    for (int i = 0; i < PICKS && !end_each; i++)
        lb_target_end(held[i]);
    for (uint32_t i = 0; i < g->n_targets; i++)
        assert_int_equal(lb_target_outstanding(&g->targets[i]), 0);
}

static void test_round_robin_splits_exactly(void **state)
{
    const struct lb_target_group *g = group(state, "rr");
    assert_int_equal(g->algorithm, LB_ROUND_ROBIN);
    for (uint64_t seed = 0; seed < 5; seed++) {
        size_t counts[MAX_TARGETS];
        count_picks(g, seed, NULL, true, counts);
        for (int i = 0; i < 4; i++)
            assert_int_equal(counts[i], PICKS / 4);
    }
    /* In order, wherever it starts. */
    struct lb_picker p;
    lb_picker_init(&p, 7, g->n_targets);
    const struct lb_target *prev = lb_pick(g, &p, NULL);
    for (int i = 0; i < 20; i++) {
        const struct lb_target *t = lb_pick(g, &p, NULL);
        assert_int_equal(t->index, (prev->index + 1) % 4);
        prev = t;
    }
}

static void test_round_robin_skips_weight_zero_and_unusable(void **state)
{
    size_t counts[MAX_TARGETS];
    count_picks(group(state, "rr0"), 3, NULL, true, counts);
    assert_int_equal(counts[0], PICKS / 2);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[2], PICKS / 2);

    const bool usable[] = {true, false, true, true};
    count_picks(group(state, "rr"), 3, usable, true, counts);
    assert_int_equal(counts[1], 0);
    for (int i = 0; i < 4; i += 1 + (i == 0))
        assert_in_range(counts[i], PICKS / 3, PICKS / 3 + 1);
}

static void test_weighted_random_is_proportional(void **state)
{
    const struct lb_target_group *g = group(state, "wr");
    /* Weights 1, 0, 2, 3, 4 of 10: each share within 4 points (over 3 standard deviations at
     * 1,000 picks), weight 0 never. The seed is fixed, so this is deterministic anyway. */
    size_t counts[MAX_TARGETS];
    count_picks(g, 12345, NULL, true, counts);
    const size_t want[] = {100, 0, 200, 300, 400};
    for (int i = 0; i < 5; i++)
        assert_in_range(counts[i], want[i] ? want[i] - 40 : 0, want[i] ? want[i] + 40 : 0);

    /* Excluding the heaviest: the others keep their proportions among themselves (1:2:3). */
    const bool usable[] = {true, true, true, true, false};
    count_picks(g, 99, usable, true, counts);
    assert_int_equal(counts[1] + counts[4], 0);
    assert_in_range(counts[0], 167 - 40, 167 + 40);
    assert_in_range(counts[2], 333 - 45, 333 + 45);
    assert_in_range(counts[3], 500 - 50, 500 + 50);

    /* Same seed, same sequence: the engine's behaviour is reproducible in tests. */
    struct lb_picker a, b;
    lb_picker_init(&a, 5, g->n_targets);
    lb_picker_init(&b, 5, g->n_targets);
    for (int i = 0; i < 100; i++)
        assert_ptr_equal(lb_pick(g, &a, NULL), lb_pick(g, &b, NULL));
}

/* Nearly all the weight excluded: the draws keep missing, the exact scan takes over. */
static void test_weighted_random_with_heavy_exclusion(void **state)
{
    const struct lb_target_group *g = group(state, "skewed");
    const bool only_light[] = {false, true};
    size_t counts[MAX_TARGETS];
    count_picks(g, 1, only_light, true, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], PICKS);
    count_picks(g, 1, NULL, true, counts);
    assert_in_range(counts[0], 990, 1000);
}

static void test_least_outstanding_prefers_idle(void **state)
{
    const struct lb_target_group *g = group(state, "lor");
    assert_int_equal(g->algorithm, LB_LEAST_OUTSTANDING_REQUESTS);
    const struct lb_target *t = g->targets;
    lb_target_begin(&t[0]);
    lb_target_begin(&t[0]);
    lb_target_begin(&t[1]);
    struct lb_picker p;
    lb_picker_init(&p, 0, g->n_targets);
    for (int i = 0; i < PICKS; i++)
        assert_ptr_equal(lb_pick(g, &p, NULL), &t[2]);
    /* The idle one excluded: the least busy of the rest. */
    const bool usable[] = {true, true, false, true};
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(lb_pick(g, &p, usable), &t[1]);
    lb_target_end(&t[0]);
    lb_target_end(&t[0]);
    lb_target_end(&t[1]);
    assert_int_equal(lb_target_outstanding(&t[0]), 0);
}

static void test_least_outstanding_spreads_ties(void **state)
{
    const struct lb_target_group *g = group(state, "lor");
    size_t counts[MAX_TARGETS];
    /* Every request over before the next: always a tie at 0, broken in turn. */
    count_picks(g, 4, NULL, true, counts);
    for (int i = 0; i < 3; i++)
        assert_in_range(counts[i], PICKS / 3, PICKS / 3 + 1);
    assert_int_equal(counts[3], 0); /* weight 0 */
    /* Every request held: the load levels out as it grows. */
    count_picks(g, 4, NULL, false, counts);
    for (int i = 0; i < 3; i++)
        assert_in_range(counts[i], PICKS / 3, PICKS / 3 + 1);
    /* A busy target is skipped until the others catch up with it. */
    lb_target_begin(&g->targets[0]);
    lb_target_begin(&g->targets[0]);
    struct lb_picker p;
    lb_picker_init(&p, 0, g->n_targets);
    size_t first4[MAX_TARGETS] = {0};
    const struct lb_target *held[4];
    for (int i = 0; i < 4; i++) {
        held[i] = lb_pick(g, &p, NULL);
        lb_target_begin(held[i]);
        first4[held[i]->index]++;
    }
    assert_int_equal(first4[0], 0);
    assert_int_equal(first4[1], 2);
    assert_int_equal(first4[2], 2);
    for (int i = 0; i < 4; i++)
        lb_target_end(held[i]);
    lb_target_end(&g->targets[0]);
    lb_target_end(&g->targets[0]);
}

static void test_null_when_nothing_usable(void **state)
{
    static const char *const names[] = {"rr", "rr0", "lor", "wr"};
    const bool nothing[MAX_TARGETS] = {false};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct lb_target_group *g = group(state, names[i]);
        struct lb_picker p;
        lb_picker_init(&p, i, g->n_targets);
        assert_null(lb_pick(g, &p, nothing));
    }
    /* Only weight-0 targets usable. */
    const bool weight0_only[] = {false, true, false, false, false};
    struct lb_picker p;
    lb_picker_init(&p, 0, 5);
    assert_null(lb_pick(group(state, "wr"), &p, weight0_only));
    assert_null(lb_pick(group(state, "rr0"), &p, weight0_only));
    /* Every weight 0; no target at all. */
    assert_null(lb_pick(group(state, "none"), &p, NULL));
    const struct lb_target_group *empty = group(state, "empty");
    assert_int_equal(empty->n_targets, 0);
    lb_picker_init(&p, 0, 0);
    assert_null(lb_pick(empty, &p, NULL));
}

static void test_pickers_per_worker(void **state)
{
    const struct lb_routes *routes = *state;
    struct lb_pickers *w[8];
    bool cursors_differ = false, rngs_differ = false;
    for (int i = 0; i < 8; i++) {
        w[i] = lb_pickers_new(routes, (uint64_t)i);
        assert_non_null(w[i]);
        assert_int_equal(w[i]->n_groups, routes->n_groups);
        const struct lb_target_group *g = group(state, "rr");
        assert_ptr_equal(lb_picker_for(w[i], g), &w[i]->group[g->index]);
        assert_true(lb_picker_for(w[i], g)->cursor < g->n_targets);
        cursors_differ |= w[i]->group[0].cursor != w[0]->group[0].cursor;
        rngs_differ |= w[i]->rng != w[0]->rng;
    }
    /* Workers must not start in lockstep on the same target. */
    assert_true(cursors_differ);
    assert_true(rngs_differ);
    /* Each worker's picker is its own: picking on one leaves another's where it was. */
    uint32_t before = w[1]->group[0].cursor;
    lb_pick(&routes->groups[0], &w[0]->group[0], NULL);
    assert_int_equal(w[1]->group[0].cursor, before);
    for (int i = 0; i < 8; i++)
        lb_pickers_free(w[i]);
    lb_pickers_free(NULL);
}

static void test_random_is_splitmix64(void **state)
{
    (void)state;
    /* The reference sequence for seed 0 (Vigna's splitmix64.c). */
    uint64_t s = 0;
    assert_true(lb_random(&s) == 0xe220a8397b1dcdafULL);
    assert_true(lb_random(&s) == 0x6e789e6aa1b965f4ULL);
    assert_true(lb_random(&s) == 0x06c45d188009454fULL);
}

enum { THREADS = 4, ROUNDS = 100000 };

static void *hammer(void *arg)
{
    const struct lb_target_group *g = arg;
    struct lb_picker p;
    lb_picker_init(&p, (uint64_t)(uintptr_t)&p, g->n_targets);
    for (int i = 0; i < ROUNDS; i++) {
        const struct lb_target *t = lb_pick(g, &p, NULL);
        lb_target_begin(t);
        lb_target_end(t);
    }
    return NULL;
}

/* Workers share the counters: after as many ends as begins, they are all back to 0 (run under
 * TSan or ASan, this is also where a non-atomic update would show). */
static void test_counters_across_threads(void **state)
{
    const struct lb_target_group *g = group(state, "lor");
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, hammer, (void *)g), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (uint32_t i = 0; i < g->n_targets; i++)
        assert_int_equal(lb_target_outstanding(&g->targets[i]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_splits_exactly),
        cmocka_unit_test(test_round_robin_skips_weight_zero_and_unusable),
        cmocka_unit_test(test_weighted_random_is_proportional),
        cmocka_unit_test(test_weighted_random_with_heavy_exclusion),
        cmocka_unit_test(test_least_outstanding_prefers_idle),
        cmocka_unit_test(test_least_outstanding_spreads_ties),
        cmocka_unit_test(test_null_when_nothing_usable),
        cmocka_unit_test(test_pickers_per_worker),
        cmocka_unit_test(test_random_is_splitmix64),
        cmocka_unit_test(test_counters_across_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
