/* Container health checks, the pure part: the healthCheck parser (ECS's defaults, its ranges,
 * CMD / CMD-SHELL / NONE and the commands that cannot run), Docker's counting rule (retries in a
 * row, a success resetting them, startPeriod, timeouts as failures), ECS's task rule, and
 * health_report's effect on a task's documents (built by hand: no process is started). JSON in
 * the tables is written with ' for ". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/json_q.h"

#include "common/log.h"
#include "core/core.h"
#include "core/health.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- health_params_from ------------------------------------------------------------------ */

/* A container definition with the given healthCheck members (or none at all for NULL). */
#define DEF(hc) "{'name':'web','image':'i','memory':64" hc "}"
#define HC(members) DEF(",'healthCheck':{" members "}")
#define CMD "'command':['CMD','/bin/probe','--x']"

struct params_case {
    const char *why, *def;
    int rc;
    bool enabled, shell;
    int64_t interval_ms, timeout_ms, start_period_ms;
    int retries;
};

/* ECS's defaults: interval 30 s, timeout 5 s, startPeriod 0, retries 3. */
#define DEFAULTS 30000, 5000, 0, 3

static const struct params_case params_cases[] = {
    {"no healthCheck: no check, ECS's defaults", DEF(""), 0, false, false, DEFAULTS},
    {"CMD with ECS's defaults", HC(CMD), 0, true, false, DEFAULTS},
    {"CMD-SHELL", HC("'command':['CMD-SHELL','exit 0']"), 0, true, true, DEFAULTS},
    {"CMD-SHELL with more words ($0, $1 as Docker)",
     HC("'command':['CMD-SHELL','exit $1','a','1']"), 0, true, true, DEFAULTS},
    {"CMD-SHELL with an empty line (a passing one)", HC("'command':['CMD-SHELL','']"), 0, true,
     true, DEFAULTS},
    {"NONE: Docker's no check", HC("'command':['NONE']"), 0, false, false, DEFAULTS},
    {"every value given", HC(CMD ",'interval':5,'timeout':2,'retries':2,'startPeriod':10"), 0, true,
     false, 5000, 2000, 10000, 2},
    {"the largest values", HC(CMD ",'interval':300,'timeout':60,'retries':10,'startPeriod':300"), 0,
     true, false, 300000, 60000, 300000, 10},
    {"too small: clamped to ECS's minimums",
     HC(CMD ",'interval':0,'timeout':1,'retries':0,'startPeriod':-5"), 0, true, false, 5000, 2000,
     0, 1},
    {"too large: clamped to ECS's maximums",
     HC(CMD ",'interval':9999,'timeout':9999,'retries':99,'startPeriod':9999"), 0, true, false,
     300000, 60000, 300000, 10},
    {"a timeout of a wrong type: the default", HC(CMD ",'timeout':'2'"), 0, true, false, DEFAULTS},
    {"command missing", HC("'interval':5"), -1, false, false, 5000, 5000, 0, 3},
    {"command not an array", HC("'command':'CMD /bin/probe'"), -1, false, false, DEFAULTS},
    {"command empty", HC("'command':[]"), -1, false, false, DEFAULTS},
    {"CMD alone", HC("'command':['CMD']"), -1, false, false, DEFAULTS},
    {"CMD-SHELL alone", HC("'command':['CMD-SHELL']"), -1, false, false, DEFAULTS},
    {"an unknown form", HC("'command':['RUN','/bin/probe']"), -1, false, false, DEFAULTS},
    {"lower-case cmd", HC("'command':['cmd','/bin/probe']"), -1, false, false, DEFAULTS},
    {"a word that is no string", HC("'command':['CMD','/bin/probe',5]"), -1, false, false,
     DEFAULTS},
    {"CMD with an empty program", HC("'command':['CMD','']"), -1, false, false, DEFAULTS},
    {"the form is no string", HC("'command':[1,'x']"), -1, false, false, DEFAULTS},
};

static void test_health_params_parser(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(params_cases); i++) {
        const struct params_case *c = &params_cases[i];
        json_t *def = json_q(c->def);
        struct health_params p;
        memset(&p, 0xa5, sizeof p); /* every member must be written */
        int rc = health_params_from(def, &p);
        if (rc != c->rc || p.enabled != c->enabled || (rc == 0 && p.shell != c->shell) ||
            p.interval_ms != c->interval_ms || p.timeout_ms != c->timeout_ms ||
            p.start_period_ms != c->start_period_ms || p.retries != c->retries)
            fail_msg("%s: rc %d enabled %d shell %d interval %lld timeout %lld start %lld "
                     "retries %d",
                     c->why, rc, p.enabled, p.shell, (long long)p.interval_ms,
                     (long long)p.timeout_ms, (long long)p.start_period_ms, p.retries);
        if (p.enabled) /* the whole array, as Docker's Healthcheck.Test */
            assert_ptr_equal(p.command,
                             json_object_get(json_object_get(def, "healthCheck"), "command"));
        json_decref(def);
    }
}

/* ---- health_observe ---------------------------------------------------------------------- */

enum { FAIL, PASS, TIMEOUT }; /* a timeout reaches health_observe as a failure */
#define U HEALTH_UNKNOWN
#define H HEALTH_HEALTHY
#define X HEALTH_UNHEALTHY

struct step {
    int result;
    int64_t at_ms; /* since the container's start */
    int status;    /* after it */
    int failures;
};

struct observe_case {
    const char *why;
    int retries;
    int64_t start_period_ms;
    struct step steps[10];
    int n;
};

static const struct observe_case observe_cases[] = {
    {"retries 3: UNHEALTHY at the third failure in a row",
     3,
     0,
     {{FAIL, 30000, U, 1}, {FAIL, 60000, U, 2}, {FAIL, 90000, X, 3}},
     3},
    {"retries 1: UNHEALTHY at once", 1, 0, {{FAIL, 5000, X, 1}}, 1},
    {"one success: HEALTHY", 3, 0, {{PASS, 5000, H, 0}}, 1},
    {"a success resets the count",
     3,
     0,
     {{PASS, 5000, H, 0},
      {FAIL, 10000, H, 1},
      {FAIL, 15000, H, 2},
      {PASS, 20000, H, 0},
      {FAIL, 25000, H, 1},
      {FAIL, 30000, H, 2},
      {FAIL, 35000, X, 3}},
     7},
    {"failures before any success count too", 2, 0, {{FAIL, 5000, U, 1}, {FAIL, 10000, X, 2}}, 2},
    {"UNHEALTHY, then a success: HEALTHY again",
     1,
     0,
     {{FAIL, 5000, X, 1}, {FAIL, 10000, X, 2}, {PASS, 15000, H, 0}},
     3},
    {"timeouts are failures",
     2,
     0,
     {{PASS, 5000, H, 0}, {TIMEOUT, 12000, H, 1}, {TIMEOUT, 19000, X, 2}},
     3},
    {"startPeriod: failures within it do not count",
     1,
     10000,
     {{FAIL, 1000, U, 0}, {TIMEOUT, 5000, U, 0}, {FAIL, 9999, U, 0}, {FAIL, 10000, X, 1}},
     4},
    {"startPeriod: after a success, failures within it count",
     2,
     20000,
     {{FAIL, 5000, U, 0}, {PASS, 10000, H, 0}, {FAIL, 15000, H, 1}, {FAIL, 19000, X, 2}},
     4},
    {"startPeriod over: counting starts from zero",
     2,
     10000,
     {{FAIL, 5000, U, 0}, {FAIL, 10000, U, 1}, {FAIL, 15000, X, 2}},
     3},
};

static void test_health_observe_rules(void **state)
{
    (void)state;
    const int64_t start = 1700000000000; /* wall clock ms, as started_ms */
    for (size_t i = 0; i < N(observe_cases); i++) {
        const struct observe_case *c = &observe_cases[i];
        struct health_params p = {.enabled = true,
                                  .interval_ms = 5000,
                                  .timeout_ms = 2000,
                                  .start_period_ms = c->start_period_ms,
                                  .retries = c->retries};
        struct container_health h = {.started_ms = start};
        for (int k = 0; k < c->n; k++) {
            const struct step *s = &c->steps[k];
            enum health_status got = health_observe(&h, &p, s->result == PASS, start + s->at_ms);
            if ((int)got != s->status || (int)h.status != s->status || h.failures != s->failures)
                fail_msg("%s: step %d: %s with %d failures, expected %s with %d", c->why, k + 1,
                         health_status_name(got), h.failures,
                         health_status_name((enum health_status)s->status), s->failures);
        }
    }
}

/* ECS's defaults, end to end: parsed from a definition with a command alone, then observed. */
static void test_health_ecs_defaults(void **state)
{
    (void)state;
    json_t *def = json_q(HC(CMD));
    struct health_params p;
    assert_int_equal(health_params_from(def, &p), 0);
    struct container_health h = {.started_ms = 0};
    assert_int_equal(health_observe(&h, &p, false, 30000), HEALTH_UNKNOWN);
    assert_int_equal(health_observe(&h, &p, false, 65000), HEALTH_UNKNOWN);
    assert_int_equal(health_observe(&h, &p, false, 100000), HEALTH_UNHEALTHY);
    json_decref(def);
}

/* ---- health_task_status ------------------------------------------------------------------ */

struct task_case {
    const char *why;
    int n;
    enum health_status status[3];
    bool essential[3], checked[3];
    enum health_status expect;
};

static const struct task_case task_cases[] = {
    {"no container has a check", 1, {U}, {true}, {false}, U},
    {"no container has a check, whatever a report said", 1, {H}, {true}, {false}, U},
    {"the essential container is HEALTHY", 1, {H}, {true}, {true}, H},
    {"the essential container has no result yet", 1, {U}, {true}, {true}, U},
    {"the essential container is UNHEALTHY", 1, {X}, {true}, {true}, X},
    {"one of two essential containers has no result yet", 2, {H, U}, {true, true}, {true, true}, U},
    {"one of two essential containers is UNHEALTHY", 2, {H, X}, {true, true}, {true, true}, X},
    {"UNHEALTHY wins over UNKNOWN", 2, {U, X}, {true, true}, {true, true}, X},
    {"an essential container without a check does not count",
     2,
     {U, H},
     {true, true},
     {false, true},
     H},
    {"a non-essential UNHEALTHY container does not count",
     2,
     {H, X},
     {true, false},
     {true, true},
     H},
    {"only a non-essential container has a check", 2, {U, H}, {true, false}, {false, true}, U},
    {"three containers, all essential and HEALTHY",
     3,
     {H, H, H},
     {true, true, true},
     {true, true, true},
     H},
};

static void test_health_task_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(task_cases); i++) {
        const struct task_case *c = &task_cases[i];
        enum health_status got = health_task_status(c->n, c->status, c->essential, c->checked);
        if (got != c->expect)
            fail_msg("%s: %s, expected %s", c->why, health_status_name(got),
                     health_status_name(c->expect));
    }
}

static void test_health_status_names(void **state)
{
    (void)state;
    assert_string_equal(health_status_name(HEALTH_UNKNOWN), "UNKNOWN");
    assert_string_equal(health_status_name(HEALTH_HEALTHY), "HEALTHY");
    assert_string_equal(health_status_name(HEALTH_UNHEALTHY), "UNHEALTHY");
}

/* ---- health_report on a task built by hand ------------------------------------------------ */

/* Containers: 'web' essential with a check, 'side' non-essential with a check, 'plain' essential
 * without one. */
#define REPORT_TD                                                                                  \
    "{'family':'f','containerDefinitions':["                                                       \
    "{'name':'web','image':'i','essential':true,'healthCheck':{'command':['CMD-SHELL','true']}},"  \
    "{'name':'side','image':'i','essential':false,'healthCheck':{'command':['CMD','/p']}},"        \
    "{'name':'plain','image':'i','essential':true}]}"

struct report_fixture {
    struct core *core;
    struct core_task task;
};

static int report_setup(void **state)
{
    struct report_fixture *f = calloc(1, sizeof *f);
    f->core = calloc(1, sizeof *f->core); /* scheduler not running: core_kick does nothing */
    f->task.core = f->core;
    snprintf(f->task.id, sizeof f->task.id, "0123456789abcdef0123456789abcdef");
    f->task.td = json_q(REPORT_TD);
    f->task.doc = json_q("{'lastStatus':'RUNNING','desiredStatus':'RUNNING','version':1,"
                         "'healthStatus':'UNKNOWN','containers':[{'name':'web','healthStatus':"
                         "'UNKNOWN'},{'name':'side','healthStatus':'UNKNOWN'},{'name':'plain',"
                         "'healthStatus':'UNKNOWN'}]}");
    f->task.last = TASK_RUNNING;
    f->task.desired = TASK_RUNNING;
    f->task.n_containers = 3;
    const char *names[] = {"web", "side", "plain"};
    for (int i = 0; i < 3; i++) {
        snprintf(f->task.containers[i].name, sizeof f->task.containers[i].name, "%s", names[i]);
        f->task.containers[i].essential = i != 1;
        f->task.containers[i].task = &f->task;
    }
    *state = f;
    return 0;
}

static int report_teardown(void **state)
{
    struct report_fixture *f = *state;
    json_decref(f->task.doc);
    json_decref(f->task.td);
    free(f->core);
    free(f);
    return 0;
}

static const char *container_status(struct core_task *t, int i)
{
    return jstr(json_array_get(json_object_get(t->doc, "containers"), (size_t)i), "healthStatus");
}

struct report_step {
    int container;
    enum health_status status;
    const char *web, *side, *plain, *task;
    bool dirty;   /* the report changed something */
    bool stopped; /* desiredStatus STOPPED after it */
};

static const struct report_step report_steps[] = {
    {1, HEALTH_HEALTHY, "UNKNOWN", "HEALTHY", "UNKNOWN", "UNKNOWN", true, false},
    {0, HEALTH_HEALTHY, "HEALTHY", "HEALTHY", "UNKNOWN", "HEALTHY", true, false},
    {0, HEALTH_HEALTHY, "HEALTHY", "HEALTHY", "UNKNOWN", "HEALTHY", false, false},   /* the same */
    {2, HEALTH_UNHEALTHY, "HEALTHY", "HEALTHY", "UNKNOWN", "HEALTHY", false, false}, /* no check */
    {7, HEALTH_UNHEALTHY, "HEALTHY", "HEALTHY", "UNKNOWN", "HEALTHY", false, false}, /* no such */
    {1, HEALTH_UNHEALTHY, "HEALTHY", "UNHEALTHY", "UNKNOWN", "HEALTHY", true, false},
    {0, HEALTH_UNHEALTHY, "UNHEALTHY", "UNHEALTHY", "UNKNOWN", "UNHEALTHY", true, true},
};

static void test_health_report(void **state)
{
    struct report_fixture *f = *state;
    struct core_task *t = &f->task;
    for (size_t i = 0; i < N(report_steps); i++) {
        const struct report_step *s = &report_steps[i];
        t->dirty = false;
        health_report(t, s->container, s->status);
        const char *got[] = {container_status(t, 0), container_status(t, 1), container_status(t, 2),
                             jstr(t->doc, "healthStatus")};
        const char *want[] = {s->web, s->side, s->plain, s->task};
        for (int k = 0; k < 4; k++)
            if (strcmp(got[k], want[k]) != 0)
                fail_msg("step %zu: %s is %s, expected %s", i + 1,
                         k == 3 ? "the task" : t->containers[k].name, got[k], want[k]);
        if (t->dirty != s->dirty || (t->desired == TASK_STOPPED) != s->stopped)
            fail_msg("step %zu: dirty %d stopped %d", i + 1, t->dirty, t->desired == TASK_STOPPED);
    }
    assert_string_equal(jstr(t->doc, "desiredStatus"), "STOPPED");
    assert_string_equal(jstr(t->doc, "stoppedReason"), "Task failed container health checks");
    assert_string_equal(jstr(t->doc, "stopCode"), "ServiceSchedulerInitiated");
    /* a stopping task is not stopped again: the reason stays */
    health_report(t, 0, HEALTH_HEALTHY);
    health_report(t, 0, HEALTH_UNHEALTHY);
    assert_string_equal(jstr(t->doc, "stoppedReason"), "Task failed container health checks");
}

/* Stopping what never started probing, twice, is harmless (the contract with task_free). */
static void test_health_stop_without_start(void **state)
{
    struct report_fixture *f = *state;
    f->core->loop = ev_default_loop(0);
    for (int i = 0; i < f->task.n_containers; i++) {
        health_stop(f->core, &f->task, i);
        health_stop(f->core, &f->task, i);
    }
    health_stop(f->core, &f->task, -1);
    health_stop(f->core, &f->task, 10);
    assert_false(f->task.containers[0].health.probing);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR); /* the report test's stops log warnings */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_params_parser),
        cmocka_unit_test(test_health_observe_rules),
        cmocka_unit_test(test_health_ecs_defaults),
        cmocka_unit_test(test_health_task_status),
        cmocka_unit_test(test_health_status_names),
        cmocka_unit_test_setup_teardown(test_health_report, report_setup, report_teardown),
        cmocka_unit_test_setup_teardown(test_health_stop_without_start, report_setup,
                                        report_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
