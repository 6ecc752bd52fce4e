/* The router: wildcard matching, every condition type (positive and negative), AND across
 * conditions and OR across values, priority order, default actions, weighted forwards and
 * redirect Locations. Routes are built from YAML through config_load(), the real schema, and the
 * configuration is freed before they are used: the routes must own everything they keep. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "lb/balancer.h"
#include "lb/match.h"
#include "lb/router.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static struct lb_routes *routes_from_yaml(const char *yaml)
{
    char path[] = "/tmp/gantry-test-router-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(yaml);
    assert_int_equal(write(fd, yaml, len), (ssize_t)len);
    close(fd);
    struct gantry_config cfg;
    struct cfg_errors errors;
    const char *files[] = {path};
    int rc = config_load(&cfg, files, 1, &errors);
    unlink(path);
    if (rc != 0) {
        config_print_errors(&errors, stderr);
        fail_msg("the test's configuration does not load");
    }
    char err[256] = "";
    struct lb_routes *routes = lb_routes_build(&cfg.lb, err, sizeof err);
    config_free(&cfg);
    if (!routes)
        fail_msg("lb_routes_build: %s", err);
    return routes;
}

static void parse(const char *raw, struct http1_msg *msg)
{
    enum http1_result r = http1_parse_request(raw, strlen(raw), 0, &http1_default_limits, msg);
    if (r != HTTP1_DONE)
        fail_msg("the test's request does not parse (%s): %s", msg->error ? msg->error : "", raw);
}

/* "10.1.2.3" or "2001:db8::1" into ss; NULL text: no client address. */
static const struct sockaddr *client_addr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (!text)
        return NULL;
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* What a test recognises an action by: a fixed-response's body, a forward's first group. */
static const char *action_label(const struct lb_action *a)
{
    switch (a->type) {
    case LB_ACTION_FIXED_RESPONSE:
        return a->body;
    case LB_ACTION_FORWARD:
        return a->groups[0].group->name;
    default:
        return "redirect";
    }
}

struct route_case {
    const char *request;
    const char *client; /* NULL: 192.0.2.1 */
    const char *want;   /* action_label() */
};

static void check_routes(const struct lb_listener *l, const struct route_case *cases, size_t n)
{
    int mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        struct http1_msg msg;
        struct sockaddr_storage ss;
        parse(cases[i].request, &msg);
        const char *client = cases[i].client ? cases[i].client : "192.0.2.1";
        const char *got = action_label(lb_route(l, &msg, client_addr(client, &ss)));
        if (strcmp(got, cases[i].want) != 0) {
            print_error("case %zu: %s(from %s)\n  want %s, got %s\n", i, cases[i].request, client,
                        cases[i].want, got);
            mismatches++;
        }
    }
    assert_int_equal(mismatches, 0);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Wildcards --------------------------------------------------------------------------- */

struct wildcard_case {
    const char *pattern, *subject;
    bool nocase, want;
};

static const struct wildcard_case wildcard_cases[] = {
    {"", "", false, true},
    {"", "a", false, false},
    {"*", "", false, true},
    {"*", "anything at all", false, true},
    {"***", "x", false, true},
    {"?", "", false, false},
    {"?", "a", false, true},
    {"??", "a", false, false},
    {"abc", "abc", false, true},
    {"abc", "abcd", false, false},
    {"abc", "ab", false, false},
    {"a*", "a", false, true},
    {"a*", "ba", false, false},
    {"*a", "ba", false, true},
    {"*a", "ab", false, false},
    {"*x", "", false, false},
    {"a*b", "ab", false, true},
    {"a*b", "axxb", false, true},
    {"a*b", "axxbc", false, false},
    {"a*b*c", "abbbc", false, true},
    {"a?c", "abc", false, true},
    {"a?c", "ac", false, false},
    {"a??", "abc", false, true},
    {"**a**", "xax", false, true},
    {"*ab*ab*", "xabyab", false, true},
    {"*ab*ab*", "xaby", false, false},
    {"*sip*", "mississippi", false, true},
    {"m*iss*ppi", "mississippi", false, true},
    {"*iss*iss*", "mississippi", false, true},
    {"*iss*iss*iss*", "mississippi", false, false},
    {"*.example.com", "www.example.com", false, true},
    {"*.example.com", "a.b.example.com", false, true},
    {"*.example.com", "example.com", false, false},
    {"/api/*", "/api/", false, true},
    {"/api/*", "/api", false, false},
    {"/v?/*", "/v1/users", false, true},
    {"/v?/*", "/v12/users", false, false},
    {"*/v?/*", "/x/v1/y", false, true},
    {"ABC", "abc", false, false},
    {"ABC", "abc", true, true},
    {"abc", "AbC", true, true},
    {"a*C", "AxxC", true, true},
    {"*.EXAMPLE.com", "WWW.example.COM", true, true},
    {"*.EXAMPLE.com", "WWW.example.COM", false, false},
    {"?b*", "AB", true, true},
    {"[", "[", false, true}, /* no character classes: brackets are literal */
};

static void test_wildcards(void **state)
{
    (void)state;
    struct arena arena = {0};
    int mismatches = 0;
    for (size_t i = 0; i < N(wildcard_cases); i++) {
        const struct wildcard_case *c = &wildcard_cases[i];
        /* An unterminated copy: ASan catches any read past the slice. */
        size_t n = strlen(c->subject);
        char *s = malloc(n ? n : 1);
        memcpy(s, c->subject, n);
        struct lb_pattern p;
        assert_int_equal(lb_pattern_compile(&p, &arena, c->pattern, c->nocase), 0);
        bool raw = lb_wildcard_match(c->pattern, s, n, c->nocase);
        bool compiled = lb_pattern_match(&p, s, n);
        if (raw != c->want || compiled != c->want) {
            print_error("'%s' vs '%s' (%s): want %d, raw %d, compiled %d\n", c->pattern, c->subject,
                        c->nocase ? "nocase" : "case", c->want, raw, compiled);
            mismatches++;
        }
        free(s);
    }
    arena_free(&arena);
    assert_int_equal(mismatches, 0);
}

static void test_pattern_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *pattern;
        enum lb_pattern_kind kind;
        const char *normalised;
    } cases[] = {
        {"abc", LB_PATTERN_EXACT, "abc"},      {"/api/*", LB_PATTERN_PREFIX, "/api/*"},
        {"*.com", LB_PATTERN_SUFFIX, "*.com"}, {"*", LB_PATTERN_ANY, "*"},
        {"***", LB_PATTERN_ANY, "*"},          {"a**b", LB_PATTERN_GLOB, "a*b"},
        {"a?", LB_PATTERN_GLOB, "a?"},         {"*a*", LB_PATTERN_GLOB, "*a*"},
        {"AbC*", LB_PATTERN_PREFIX, "abc*"}, /* compiled nocase below: folded once */
    };
    struct arena arena = {0};
    for (size_t i = 0; i < N(cases); i++) {
        struct lb_pattern p;
        assert_int_equal(lb_pattern_compile(&p, &arena, cases[i].pattern, true), 0);
        assert_int_equal(p.kind, cases[i].kind);
        assert_string_equal(p.text, cases[i].normalised);
    }
    arena_free(&arena);
}

static double elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* A backtracking matcher that retries every `*` is exponential here; the greedy one is linear-ish.
 * The bound is generous (sanitizers, loaded machines): the failure mode it guards against takes
 * hours, not milliseconds. */
static void test_wildcard_pathological_is_fast(void **state)
{
    (void)state;
    enum { LEN = 100000 };
    char *s = malloc(LEN);
    memset(s, 'a', LEN);
    struct arena arena = {0};
    struct lb_pattern p;
    assert_int_equal(lb_pattern_compile(&p, &arena, "*a*a*a*a*a*a*a*a*a*a*b", false), 0);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_false(lb_wildcard_match("*a*a*a*a*b", s, LEN, false));
    assert_false(lb_pattern_match(&p, s, LEN));
    assert_false(lb_wildcard_match("*a*a*a*a*b", s, LEN, true));
    s[LEN - 1] = 'b';
    assert_true(lb_pattern_match(&p, s, LEN));
    assert_true(elapsed_ms(&start) < 500);
    arena_free(&arena);
    free(s);
}

/* ---- Conditions -------------------------------------------------------------------------- */

static const char conditions_yaml[] =
    "lb:\n"
    "  listeners:\n"
    "    - name: web\n"
    "      listen: 127.0.0.1:8080\n"
    "      default_action: {type: fixed-response, body: default}\n"
    "      rules:\n"
    "        - priority: 10\n"
    "          conditions: [{field: host-header, values: ['*.example.com', exact.org]}]\n"
    "          action: {type: fixed-response, body: host}\n"
    "        - priority: 20\n"
    "          conditions: [{field: path-pattern, values: ['/api/*', '/v?/status']}]\n"
    "          action: {type: fixed-response, body: path}\n"
    "        - priority: 30\n"
    "          conditions: [{field: http-header, header_name: X-Beta, values: [yes, 'tr*e']}]\n"
    "          action: {type: fixed-response, body: header}\n"
    "        - priority: 40\n"
    "          conditions: [{field: http-request-method, values: [DELETE, PATCH]}]\n"
    "          action: {type: fixed-response, body: method}\n"
    "        - priority: 50\n"
    "          conditions: [{field: query-string, values: ['mode=deb*g', flag, 'q=a b', "
    "'pct=100%']}]\n"
    "          action: {type: fixed-response, body: query}\n"
    "        - priority: 60\n"
    "          conditions: [{field: source-ip, values: [10.0.0.0/8, '2001:db8::/32']}]\n"
    "          action: {type: fixed-response, body: source}\n";

#define GET(target, headers) "GET " target " HTTP/1.1\r\nHost: other.net\r\n" headers "\r\n"
#define GET_HOST(host) "GET / HTTP/1.1\r\nHost: " host "\r\n\r\n"

static const struct route_case condition_cases[] = {
    /* host-header: case-insensitive, port ignored, wildcards */
    {GET_HOST("www.example.com"), NULL, "host"},
    {GET_HOST("WWW.Example.COM:8080"), NULL, "host"},
    {GET_HOST("a.b.example.com"), NULL, "host"},
    {GET_HOST("exact.org"), NULL, "host"},
    {GET_HOST("example.com"), NULL, "default"},
    {GET_HOST("exact.org.evil"), NULL, "default"},
    {GET_HOST("www.example.community"), NULL, "default"},
    {"GET / HTTP/1.0\r\n\r\n", NULL, "default"}, /* no Host at all */
    {"GET http://www.example.com/ HTTP/1.1\r\nHost: other.net\r\n\r\n", NULL, "host"},
    /* path-pattern: case-sensitive, without the query */
    {GET("/api/users", ""), NULL, "path"},
    {GET("/api/", ""), NULL, "path"},
    {GET("/api/x?y=1", ""), NULL, "path"},
    {GET("/v2/status", ""), NULL, "path"},
    {GET("/API/users", ""), NULL, "default"},
    {GET("/api", ""), NULL, "default"},
    {GET("/v22/status", ""), NULL, "default"},
    {GET("/v2/status/x", ""), NULL, "default"},
    {GET("/x?/api/y", ""), NULL, "default"},
    /* http-header: case-insensitive name and value */
    {GET("/", "X-Beta: yes\r\n"), NULL, "header"},
    {GET("/", "x-beta: YES\r\n"), NULL, "header"},
    {GET("/", "X-BETA: True\r\n"), NULL, "header"},
    {GET("/", "X-Beta: no\r\n"), NULL, "default"},
    {GET("/", "X-Beta-2: yes\r\n"), NULL, "default"},
    {GET("/", "X-Bet: yes\r\n"), NULL, "default"},
    {GET("/", ""), NULL, "default"},
    /* http-request-method: exact */
    {"DELETE /x HTTP/1.1\r\nHost: other.net\r\n\r\n", NULL, "method"},
    {"PATCH /x HTTP/1.1\r\nHost: other.net\r\n\r\n", NULL, "method"},
    {"POST /x HTTP/1.1\r\nHost: other.net\r\nContent-Length: 0\r\n\r\n", NULL, "default"},
    {"DELETES /x HTTP/1.1\r\nHost: other.net\r\n\r\n", NULL, "default"},
    {"delete /x HTTP/1.1\r\nHost: other.net\r\n\r\n", NULL, "default"},
    /* query-string: key=value, value alone, case-insensitive, wildcards, decoded */
    {GET("/?mode=debug", ""), NULL, "query"},
    {GET("/?MODE=DEBUG", ""), NULL, "query"},
    {GET("/?a=1&mode=debuuug&b=2", ""), NULL, "query"},
    {GET("/?mode=release", ""), NULL, "default"},
    {GET("/?mode2=debug", ""), NULL, "default"},
    {GET("/?x=flag", ""), NULL, "query"},
    {GET("/?flag", ""), NULL, "default"}, /* a key without value: its value is empty */
    {GET("/?x=flags", ""), NULL, "default"},
    {GET("/?mode=%64ebug", ""), NULL, "query"},
    {GET("/?m%6fde=debug", ""), NULL, "query"},
    {GET("/?x=fl%61g", ""), NULL, "query"},
    {GET("/?q=a%20b", ""), NULL, "query"},
    {GET("/?q=a+b", ""), NULL, "default"},        /* `+` is not a space in a URL */
    {GET("/?mode%3Ddebug", ""), NULL, "default"}, /* an encoded `=` does not split */
    {GET("/?pct=100%25", ""), NULL, "query"},
    {GET("/?pct=100%", ""), NULL, "query"},    /* undecodable: taken literally */
    {GET("/?pct=100%2", ""), NULL, "default"}, /* ... and kept whole: "100%2" */
    {GET("/?pct=100%zz", ""), NULL, "default"},
    {GET("/?&&x=flag&&", ""), NULL, "query"},
    {GET("/", ""), NULL, "default"},
    {GET("/?", ""), NULL, "default"},
    /* source-ip: v4, v6, IPv4-mapped v6 */
    {GET("/", ""), "10.1.2.3", "source"},
    {GET("/", ""), "11.0.0.1", "default"},
    {GET("/", ""), "::ffff:10.1.2.3", "source"},
    {GET("/", ""), "2001:db8::1", "source"},
    {GET("/", ""), "2001:db9::1", "default"},
};

static void test_each_condition_type(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(conditions_yaml);
    const struct lb_listener *l = lb_routes_listener(routes, "web");
    assert_non_null(l);
    check_routes(l, condition_cases, N(condition_cases));
    lb_routes_free(routes);
}

static void test_source_ip_without_client_address(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(conditions_yaml);
    struct http1_msg msg;
    parse(GET("/", ""), &msg);
    assert_string_equal(action_label(lb_route(&routes->listeners[0], &msg, NULL)), "default");
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    assert_string_equal(action_label(lb_route(&routes->listeners[0], &msg, (struct sockaddr *)&ss)),
                        "default");
    lb_routes_free(routes);
}

static void test_header_appearing_twice(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(
        "lb:\n"
        "  listeners:\n"
        "    - name: web\n"
        "      listen: 127.0.0.1:8080\n"
        "      default_action: {type: fixed-response, body: default}\n"
        "      rules:\n"
        "        - priority: 1\n"
        "          conditions: [{field: http-header, header_name: x-env, values: [canary]}]\n"
        "          action: {type: fixed-response, body: canary}\n"
        "        - priority: 2\n"
        "          conditions: [{field: http-header, header_name: X-Env, values: [prod]}]\n"
        "          action: {type: fixed-response, body: prod}\n");
    static const struct route_case cases[] = {
        {GET("/", "X-Env: prod\r\nX-Env: canary\r\n"), NULL, "canary"},
        {GET("/", "X-Env: canary\r\nX-Other: 1\r\nx-env: prod\r\n"), NULL, "canary"},
        {GET("/", "X-Env: staging\r\nX-Env: prod\r\n"), NULL, "prod"},
        {GET("/", "X-Env: staging\r\nX-Env: dev\r\n"), NULL, "default"},
    };
    check_routes(&routes->listeners[0], cases, N(cases));
    lb_routes_free(routes);
}

/* ---- AND, OR, priority, defaults --------------------------------------------------------- */

static const char logic_yaml[] =
    "lb:\n"
    "  listeners:\n"
    "    - name: first\n"
    "      listen: 127.0.0.1:8081\n"
    "    - name: web\n"
    "      listen: 127.0.0.1:8080\n"
    "      default_action: {type: forward, target_group: fallback}\n"
    "      rules:\n"
    "        - priority: 30\n"
    "          conditions: [{field: path-pattern, values: ['/x/*']}]\n"
    "          action: {type: fixed-response, body: p30}\n"
    "        - priority: 5\n"
    "          conditions:\n"
    "            - {field: path-pattern, values: ['/x/*']}\n"
    "            - {field: http-request-method, values: [GET, HEAD]}\n"
    "          action: {type: fixed-response, body: p5}\n"
    "        - priority: 20\n"
    "          conditions:\n"
    "            - {field: host-header, values: [a.com, b.com]}\n"
    "            - {field: http-header, header_name: X-T, values: ['1']}\n"
    "            - {field: source-ip, values: [192.0.2.0/24, 127.0.0.1]}\n"
    "          action: {type: fixed-response, body: p20}\n"
    "  target_groups:\n"
    "    - {name: fallback, targets: [{address: 127.0.0.1:9000}]}\n";

static void test_and_or_priority_default(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(logic_yaml);
    const struct lb_listener *l = lb_routes_listener(routes, "web");
    assert_non_null(l);
    assert_ptr_equal(l, lb_routes_listener_at(routes, 1));
    assert_null(lb_routes_listener_at(routes, 2));
    assert_null(lb_routes_listener(routes, "nope"));
    assert_int_equal(l->port, 8080);
    assert_int_equal(l->n_rules, 3);
    assert_int_equal(l->rules[0].priority, 5);
    assert_int_equal(l->rules[1].priority, 20);
    assert_int_equal(l->rules[2].priority, 30);
    static const struct route_case cases[] = {
        /* priority 5 is defined after 30 but wins */
        {"GET /x/1 HTTP/1.1\r\nHost: c.com\r\n\r\n", NULL, "p5"},
        {"HEAD /x/1 HTTP/1.1\r\nHost: c.com\r\n\r\n", NULL, "p5"},
        /* one condition of rule 5 fails: the next rule */
        {"PUT /x/1 HTTP/1.1\r\nHost: c.com\r\nContent-Length: 0\r\n\r\n", NULL, "p30"},
        /* all three conditions of rule 20, each value of the OR */
        {"PUT / HTTP/1.1\r\nHost: a.com\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n", NULL, "p20"},
        {"PUT / HTTP/1.1\r\nHost: b.com\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n", "127.0.0.1",
         "p20"},
        /* any one of them missing */
        {"PUT / HTTP/1.1\r\nHost: a.com\r\nContent-Length: 0\r\n\r\n", NULL, "fallback"},
        {"PUT / HTTP/1.1\r\nHost: c.com\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n", NULL, "fallback"},
        {"PUT / HTTP/1.1\r\nHost: a.com\r\nX-T: 1\r\nContent-Length: 0\r\n\r\n", "127.0.0.2",
         "fallback"},
        /* rule 20 and rule 5 both hold: 5 first */
        {"GET /x/ HTTP/1.1\r\nHost: a.com\r\nX-T: 1\r\n\r\n", NULL, "p5"},
        {"GET / HTTP/1.1\r\nHost: c.com\r\n\r\n", NULL, "fallback"},
    };
    check_routes(l, cases, N(cases));

    /* A listener without default_action answers 404, as documented. */
    const struct lb_listener *first = lb_routes_listener(routes, "first");
    struct http1_msg msg;
    parse(GET("/", ""), &msg);
    const struct lb_action *a = lb_route(first, &msg, NULL);
    assert_int_equal(a->type, LB_ACTION_FIXED_RESPONSE);
    assert_int_equal(a->status, 404);
    assert_string_equal(a->body, "Not Found\n");
    assert_int_equal(a->body_len, strlen("Not Found\n"));
    lb_routes_free(routes);
}

static void test_routes_copy_the_config(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(
        "lb:\n"
        "  listeners:\n"
        "    - name: web\n"
        "      listen: '[::1]:8443'\n"
        "      default_action: {type: fixed-response, status: 503, content_type: text/html, "
        "body: '<b>down</b>'}\n"
        "  target_groups:\n"
        "    - name: api\n"
        "      algorithm: least_outstanding_requests\n"
        "      targets: [{address: 127.0.0.1:9001, weight: 7}, {address: '[::1]:9002'}]\n"
        "    - {name: empty, algorithm: weighted_random}\n");
    /* routes_from_yaml() freed the configuration: everything below must be the routes' own. */
    const struct lb_target_group *g = lb_routes_group(routes, "api");
    assert_non_null(g);
    assert_null(lb_routes_group(routes, "API"));
    assert_int_equal(g->index, 0);
    assert_int_equal(g->algorithm, LB_LEAST_OUTSTANDING_REQUESTS);
    assert_int_equal(g->n_targets, 2);
    assert_string_equal(g->targets[0].address_text, "127.0.0.1:9001");
    assert_string_equal(g->targets[1].address_text, "[::1]:9002");
    assert_int_equal(g->targets[0].weight, 7);
    assert_int_equal(g->targets[1].weight, 1);
    assert_int_equal(g->targets[1].index, 1);
    assert_int_equal(net_addr_port(&g->targets[0].address), 9001);
    assert_int_equal((uintptr_t)&g->targets[1] % 64, 0); /* counters on their own lines */
    const struct lb_target_group *empty = lb_routes_group(routes, "empty");
    assert_int_equal(empty->index, 1);
    assert_int_equal(empty->n_targets, 0);
    const struct lb_listener *l = &routes->listeners[0];
    assert_string_equal(l->name, "web");
    assert_int_equal(l->port, 8443);
    assert_int_equal(l->default_action.status, 503);
    assert_string_equal(l->default_action.content_type, "text/html");
    assert_string_equal(l->default_action.body, "<b>down</b>");
    lb_routes_free(routes);
    lb_routes_free(NULL);
}

/* ---- Host without port ------------------------------------------------------------------- */

static void test_host_without_port(void **state)
{
    (void)state;
    static const struct {
        const char *request, *want;
    } cases[] = {
        {GET_HOST("example.com"), "example.com"},
        {GET_HOST("example.com:8080"), "example.com"},
        {GET_HOST("[::1]:8080"), "[::1]"},
        {GET_HOST("[::1]"), "[::1]"},
        {GET_HOST("[2001:db8::7]:443"), "[2001:db8::7]"},
        {GET_HOST("10.0.0.1:80"), "10.0.0.1"},
        {"GET http://abs.example:81/p HTTP/1.1\r\nHost: other\r\n\r\n", "abs.example"},
        {"GET / HTTP/1.0\r\n\r\n", ""},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct http1_msg msg;
        parse(cases[i].request, &msg);
        struct http1_slice h = lb_host_without_port(&msg);
        assert_non_null(h.p);
        assert_int_equal(h.len, strlen(cases[i].want));
        assert_memory_equal(h.p, cases[i].want, h.len);
    }
}

/* ---- Weighted forwards ------------------------------------------------------------------- */

static void test_weighted_group_pick(void **state)
{
    (void)state;
    struct lb_routes *routes =
        routes_from_yaml("lb:\n"
                         "  listeners:\n"
                         "    - name: web\n"
                         "      listen: 127.0.0.1:8080\n"
                         "      default_action:\n"
                         "        type: forward\n"
                         "        target_groups: [{name: v1, weight: 90}, {name: off, weight: 0}, "
                         "{name: v2, weight: 10}]\n"
                         "      rules:\n"
                         "        - priority: 1\n"
                         "          conditions: [{field: path-pattern, values: ['/one']}]\n"
                         "          action: {type: forward, target_group: v2}\n"
                         "  target_groups:\n"
                         "    - {name: v1, targets: [{address: 127.0.0.1:9001}]}\n"
                         "    - {name: v2, targets: [{address: 127.0.0.1:9002}]}\n"
                         "    - {name: off, targets: [{address: 127.0.0.1:9003}]}\n");
    const struct lb_action *a = &routes->listeners[0].default_action;
    const struct lb_target_group *v1 = lb_routes_group(routes, "v1");
    const struct lb_target_group *v2 = lb_routes_group(routes, "v2");
    const struct lb_target_group *off = lb_routes_group(routes, "off");
    assert_int_equal(a->total_weight, 100);

    /* Every residue of the total once: exactly the weights. */
    size_t exact[3] = {0};
    for (uint64_t r = 0; r < 100; r++) {
        const struct lb_target_group *g = lb_action_pick_group(a, r);
        exact[g == v1 ? 0 : g == v2 ? 1 : 2]++;
    }
    assert_int_equal(exact[0], 90);
    assert_int_equal(exact[1], 10);
    assert_int_equal(exact[2], 0);

    /* Random numbers, as the engine draws them: within a point of the weights. */
    enum { DRAWS = 100000 };
    size_t counts[3] = {0};
    uint64_t rng = 42;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t r = lb_random(&rng);
        const struct lb_target_group *g = lb_action_pick_group(a, r);
        assert_ptr_equal(g, lb_action_pick_group(a, r)); /* deterministic */
        counts[g == v1 ? 0 : g == v2 ? 1 : g == off ? 2 : 2]++;
    }
    assert_in_range(counts[0], DRAWS * 89 / 100, DRAWS * 91 / 100);
    assert_in_range(counts[1], DRAWS * 9 / 100, DRAWS * 11 / 100);
    assert_int_equal(counts[2], 0);

    /* A single group, whatever the number; other action types have none. */
    const struct lb_action *one = &routes->listeners[0].rules[0].action;
    assert_ptr_equal(lb_action_pick_group(one, 0), v2);
    assert_ptr_equal(lb_action_pick_group(one, UINT64_MAX), v2);
    lb_routes_free(routes);

    routes = routes_from_yaml(conditions_yaml);
    assert_null(lb_action_pick_group(&routes->listeners[0].default_action, 1));
    lb_routes_free(routes);
}

/* ---- Redirects --------------------------------------------------------------------------- */

struct redirect_case {
    const char *action; /* YAML flow mapping */
    const char *request;
    const char *protocol;
    int port;
    const char *want; /* "": refused */
};

static const struct redirect_case redirect_cases[] = {
    /* ALB's HTTP to HTTPS redirect */
    {"{type: redirect, protocol: HTTPS, port: '443', status: 301}",
     "GET /path?query HTTP/1.1\r\nHost: example.com\r\n\r\n", "http", 80,
     "https://example.com/path?query"},
    {"{type: redirect, protocol: HTTPS, port: '443'}",
     "GET /a/b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", "http", 8080,
     "https://example.com/a/b"},
    /* everything else kept: the listener's port unless it is the default (a redirect must change
     * something, so these name the host literally) */
    {"{type: redirect, host: example.com}", "GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
     "http", 8080, "http://example.com:8080/p?q=1"},
    {"{type: redirect, host: example.com}", "GET /p HTTP/1.1\r\nHost: example.com\r\n\r\n", "https",
     443, "https://example.com/p"},
    /* the protocol changes, #{port} stays: ALB keeps it too */
    {"{type: redirect, protocol: HTTPS}", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80,
     "https://h:80/"},
    /* host rewrite */
    {"{type: redirect, host: www.example.com}",
     "GET /a/b?x=1 HTTP/1.1\r\nHost: old.example.com\r\n\r\n", "http", 80,
     "http://www.example.com/a/b?x=1"},
    /* path rewrite with #{path}, which has no leading slash */
    {"{type: redirect, path: '/new/#{path}'}",
     "GET /old/x?y=2 HTTP/1.1\r\nHost: example.com\r\n\r\n", "http", 80,
     "http://example.com/new/old/x?y=2"},
    {"{type: redirect, path: '/#{host}/#{path}', query: 'from=#{port}&#{query}'}",
     "GET /p?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "http", 8080,
     "http://example.com:8080/example.com/p?from=8080&a=1"},
    /* query rewrite, an empty query drops the `?` */
    {"{type: redirect, query: 'v=2'}", "GET /p HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80,
     "http://h/p?v=2"},
    {"{type: redirect, query: ''}", "GET /p?drop=me HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80,
     "http://h/p"},
    {"{type: redirect, host: h}", "GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80, "http://h/p"},
    /* an explicit non-default port, a port given with a variable, unknown variables literal */
    {"{type: redirect, protocol: https, port: '8443'}", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "http",
     80, "https://h:8443/"},
    {"{type: redirect, protocol: '#{protocol}', port: '#{port}', host: h}",
     "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80, "http://h/"},
    {"{type: redirect, path: '/#{nope}/#{path'}", "GET /p HTTP/1.1\r\nHost: h\r\n\r\n", "http", 80,
     "http://h/#{nope}/#{path"},
    /* IPv6 literal hosts keep their brackets */
    {"{type: redirect, protocol: HTTPS, port: '443'}",
     "GET /v6 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "http", 8080, "https://[::1]/v6"},
    /* refused: a part the request supplies is missing (bad literal parts are refused when the
     * configuration loads: tests/config/bad/lb-redirect-*) */
    {"{type: redirect, protocol: HTTPS}", "GET / HTTP/1.0\r\n\r\n", "http", 80, ""},
};

static void test_redirect_location(void **state)
{
    (void)state;
    int mismatches = 0;
    for (size_t i = 0; i < N(redirect_cases); i++) {
        const struct redirect_case *c = &redirect_cases[i];
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "lb:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n"
                 "      default_action: %s\n",
                 c->action);
        struct lb_routes *routes = routes_from_yaml(yaml);
        struct http1_msg msg;
        parse(c->request, &msg);
        const struct lb_action *a = lb_route(&routes->listeners[0], &msg, NULL);
        assert_int_equal(a->type, LB_ACTION_REDIRECT);
        char out[512];
        memset(out, 'x', sizeof out);
        size_t n = lb_redirect_location(a, &msg, c->protocol, c->port, out, sizeof out);
        if (n != strlen(c->want) || strcmp(out, c->want) != 0) {
            print_error("case %zu: %s\n  want '%s', got '%s' (%zu)\n", i, c->action, c->want, out,
                        n);
            mismatches++;
        }
        lb_routes_free(routes);
    }
    assert_int_equal(mismatches, 0);
}

static void test_redirect_status_and_small_buffers(void **state)
{
    (void)state;
    struct lb_routes *routes = routes_from_yaml(
        "lb:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n"
        "      default_action: {type: redirect, status: 302, protocol: HTTPS, port: '443'}\n");
    const struct lb_action *a = &routes->listeners[0].default_action;
    assert_int_equal(a->status, 302);
    struct http1_msg msg;
    parse("GET /path HTTP/1.1\r\nHost: example.com\r\n\r\n", &msg);
    const char *want = "https://example.com/path";
    char out[64];
    /* Exactly enough room for the NUL, then one byte short of it, then none at all. */
    assert_int_equal(lb_redirect_location(a, &msg, "http", 80, out, strlen(want) + 1),
                     strlen(want));
    assert_string_equal(out, want);
    for (size_t size = 1; size <= strlen(want); size++) {
        memset(out, 'x', sizeof out);
        assert_int_equal(lb_redirect_location(a, &msg, "http", 80, out, size), 0);
        assert_int_equal(out[0], '\0');
    }
    assert_int_equal(lb_redirect_location(a, &msg, "http", 80, out, 0), 0);
    /* Not a redirect: nothing to build. */
    lb_routes_free(routes);
    routes = routes_from_yaml(conditions_yaml);
    assert_int_equal(lb_redirect_location(&routes->listeners[0].default_action, &msg, "http", 80,
                                          out, sizeof out),
                     0);
    lb_routes_free(routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_pattern_kinds),
        cmocka_unit_test(test_wildcard_pathological_is_fast),
        cmocka_unit_test(test_each_condition_type),
        cmocka_unit_test(test_source_ip_without_client_address),
        cmocka_unit_test(test_header_appearing_twice),
        cmocka_unit_test(test_and_or_priority_default),
        cmocka_unit_test(test_routes_copy_the_config),
        cmocka_unit_test(test_host_without_port),
        cmocka_unit_test(test_weighted_group_pick),
        cmocka_unit_test(test_redirect_location),
        cmocka_unit_test(test_redirect_status_and_small_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
