/* Value parsers (durations, sizes, booleans, Redis URLs), addresses and buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/net.h"
#include "config/values.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        int64_t ms;
    } cases[] = {
        {"500ms", 0, 500},
        {"30s", 0, 30000},
        {"5m", 0, 300000},
        {"1h", 0, 3600000},
        {"1m30s", 0, 90000},
        {"2d", 0, 172800000},
        {"0", 0, 0},
        {"10", 0, 10000},
        {"1h2m3s4ms", 0, 3723004},
        {"", -1, 0},
        {"s", -1, 0},
        {"5 s", -1, 0},
        {"-1s", -1, 0},
        {"5x", -1, 0},
        {"5sec", -1, 0},
        {"1.5s", -1, 0},
        {"5s5", -1, 0},
        {"99999999999999999999s", -1, 0},
        {"9223372036854775807d", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -42;
        int rc = value_parse_duration_ms(cases[i].text, &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("duration '%s': rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
    char out[32];
    assert_string_equal(value_format_duration(90500, out, sizeof out), "1m30s500ms");
    assert_string_equal(value_format_duration(0, out, sizeof out), "0s");
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        int64_t bytes;
    } cases[] = {
        {"512", 0, 512},
        {"16k", 0, 16384},
        {"16K", 0, 16384},
        {"1m", 0, 1048576},
        {"2g", 0, 2147483648LL},
        {"4kb", 0, 4096},
        {"0", 0, 0},
        {"", -1, 0},
        {"k", -1, 0},
        {"16q", -1, 0},
        {"1.5m", -1, 0},
        {"-1", -1, 0},
        {"16 k", -1, 0},
        {"9999999999999g", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t bytes = -42;
        int rc = value_parse_size(cases[i].text, &bytes);
        if (rc != cases[i].rc || (rc == 0 && bytes != cases[i].bytes))
            fail_msg("size '%s': rc %d bytes %lld", cases[i].text, rc, (long long)bytes);
    }
    char out[32];
    assert_string_equal(value_format_size(16384, out, sizeof out), "16k");
    assert_string_equal(value_format_size(1000, out, sizeof out), "1000");
}

static void test_bools(void **state)
{
    (void)state;
    bool v = false;
    assert_int_equal(value_parse_bool("yes", &v), 0);
    assert_true(v);
    assert_int_equal(value_parse_bool("Off", &v), 0);
    assert_false(v);
    assert_int_equal(value_parse_bool("1", &v), -1);
    assert_int_equal(value_parse_bool("maybe", &v), -1);
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *formatted; /* NULL: must be refused */
        bool loopback;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1:8080", true},
        {"localhost:80", "127.0.0.1:80", true},
        {"[::1]:443", "[::1]:443", true},
        {"[::]:80", "[::]:80", false},
        {"*:8080", "0.0.0.0:8080", false},
        {"10.1.2.3:0", "10.1.2.3:0", false},
        {"unix:/tmp/x.sock", "unix:/tmp/x.sock", true},
        {"127.0.0.1", NULL, false},
        {"127.0.0.1:", NULL, false},
        {"127.0.0.1:65536", NULL, false},
        {"127.0.0.1:-1", NULL, false},
        {"::1:80", NULL, false},
        {"[::1]80", NULL, false},
        {"[zz]:80", NULL, false},
        {"example.com:80", NULL, false},
        {"unix:", NULL, false},
        {":80", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct net_addr a;
        char err[128] = "", text[NET_ADDR_TEXT_MAX];
        int rc = net_addr_parse(cases[i].text, &a, err, sizeof err);
        if (!cases[i].formatted) {
            if (rc != -1 || !err[0])
                fail_msg("address '%s' accepted", cases[i].text);
            continue;
        }
        if (rc != 0)
            fail_msg("address '%s' refused: %s", cases[i].text, err);
        assert_string_equal(net_addr_format(&a, text, sizeof text), cases[i].formatted);
        assert_int_equal(net_addr_is_loopback(&a), cases[i].loopback);
    }
}

static void test_redis_urls(void **state)
{
    (void)state;
    struct redis_url url;
    char err[128], text[128];
    assert_int_equal(value_parse_redis_url("redis://127.0.0.1", &url, err, sizeof err), 0);
    assert_string_equal(value_format_redis_url(&url, text, sizeof text),
                        "redis://127.0.0.1:6379/0");
    assert_int_equal(value_parse_redis_url("redis://[::1]:7000/3", &url, err, sizeof err), 0);
    assert_string_equal(value_format_redis_url(&url, text, sizeof text), "redis://[::1]:7000/3");
    assert_int_equal(value_parse_redis_url("unix:/run/r.sock", &url, err, sizeof err), 0);
    assert_string_equal(value_format_redis_url(&url, text, sizeof text), "unix:/run/r.sock");
    assert_int_equal(value_parse_redis_url("redis://h:1/16", &url, err, sizeof err), -1);
    assert_int_equal(value_parse_redis_url("redis://:pw@127.0.0.1:1", &url, err, sizeof err), -1);
    assert_string_equal(err, "passwords in Redis URLs are not supported");
    assert_int_equal(value_parse_redis_url("127.0.0.1:6379", &url, err, sizeof err), -1);
}

static void test_growable_buffer_respects_its_limit(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1000);
    char chunk[300];
    memset(chunk, 'a', sizeof chunk);
    assert_int_equal(buf_append(&b, chunk, 300), 0);
    assert_int_equal(buf_append(&b, chunk, 300), 0);
    assert_int_equal(buf_append(&b, chunk, 300), 0);
    assert_int_equal(buf_append(&b, chunk, 300), -1); /* would be 1200 > 1000 */
    assert_int_equal(buf_unread(&b), 900);
    assert_true(b.cap <= 1000);
    buf_consume(&b, 800); /* room comes back by compaction, not growth */
    assert_int_equal(buf_append(&b, chunk, 300), 0);
    assert_int_equal(buf_unread(&b), 400);
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_memory_equal(buf_tail(&b) - 4, "42-x", 4);
    buf_consume(&b, buf_unread(&b));
    buf_release(&b); /* an idle buffer holds no memory */
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(buf_append_str(&b, "again"), 0);
    buf_free(&b);
}

static void test_fixed_buffer_never_grows(void **state)
{
    (void)state;
    char mem[8];
    struct buf b;
    buf_init_fixed(&b, mem, sizeof mem);
    assert_int_equal(buf_append_str(&b, "12345678"), 0);
    assert_int_equal(buf_append_str(&b, "9"), -1);
    assert_ptr_equal(b.data, mem);
    buf_consume(&b, 4);
    assert_int_equal(buf_append_str(&b, "abcd"), 0);
    assert_memory_equal(buf_head(&b), "5678abcd", 8);
    buf_free(&b);
}

static void test_cidr(void **state)
{
    (void)state;
    struct net_cidr net;
    struct net_addr a;
    char err[64];
    assert_int_equal(net_cidr_parse("10.0.0.0/8", &net), 0);
    net_addr_parse("10.200.3.4:1", &a, err, sizeof err);
    assert_true(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    net_addr_parse("11.0.0.1:1", &a, err, sizeof err);
    assert_false(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    net_addr_parse("[::ffff:10.1.1.1]:1", &a, err, sizeof err); /* v4-mapped */
    assert_true(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    assert_int_equal(net_cidr_parse("192.168.1.0/23", &net), 0);
    net_addr_parse("192.168.0.255:1", &a, err, sizeof err);
    assert_true(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    net_addr_parse("192.168.2.0:1", &a, err, sizeof err);
    assert_false(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    assert_int_equal(net_cidr_parse("::1", &net), 0);
    assert_int_equal(net.prefix, 128);
    net_addr_parse("[::1]:1", &a, err, sizeof err);
    assert_true(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    net_addr_parse("127.0.0.1:1", &a, err, sizeof err);
    assert_false(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    assert_int_equal(net_cidr_parse("0.0.0.0/0", &net), 0);
    assert_true(net_cidr_contains(&net, (struct sockaddr *)&a.ss));
    const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0/8",   "/8",
                         "10.0.0.0/",   "x",      "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (net_cidr_parse(bad[i], &net) == 0)
            fail_msg("CIDR '%s' accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_redis_urls),
        cmocka_unit_test(test_growable_buffer_respects_its_limit),
        cmocka_unit_test(test_fixed_buffer_never_grows),
        cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
