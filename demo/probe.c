/* gantry-demo-app --probe PATH: one GET, for a container health check that needs no shell and no
 * curl in its image (contract in demo.h). Blocking sockets with one deadline over the whole
 * exchange: a probe is a short-lived process of its own, with nothing else to serve. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "demo/demo.h"

enum { PROBE_HEAD_MAX = 16384 };

struct probe {
    const char *url; /* for the messages */
    int fd;
    int64_t deadline_ms; /* monotonic */
};

static int fail(const struct probe *pr, const char *what, const char *detail)
{
    fprintf(stderr, "gantry-demo-app: probe %s: %s%s%s\n", pr->url, what, detail ? ": " : "",
            detail ? detail : "");
    return 1;
}

/* A failed step, from errno: the deadline said in words (a timeout is the usual failure). */
static int io_fail(const struct probe *pr, const char *what)
{
    if (errno == ETIMEDOUT) {
        char text[48];
        snprintf(text, sizeof text, "no answer within %d s", DEMO_PROBE_TIMEOUT_MS / 1000);
        return fail(pr, what, text);
    }
    return fail(pr, what, strerror(errno));
}

/* Waits until fd is ready for events; 0, or -1 at the deadline (errno ETIMEDOUT). */
static int wait_for(const struct probe *pr, short events)
{
    for (;;) {
        int64_t left = pr->deadline_ms - clock_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = pr->fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_to(struct probe *pr, const struct net_addr *addr)
{
    pr->fd = socket(net_addr_family(addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pr->fd < 0)
        return fail(pr, "socket", strerror(errno));
    if (connect(pr->fd, (const struct sockaddr *)&addr->ss, addr->len) != 0 && errno != EINPROGRESS)
        return fail(pr, "connect", strerror(errno));
    if (wait_for(pr, POLLOUT) < 0)
        return io_fail(pr, "connect");
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(pr->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
        return fail(pr, "connect", strerror(err ? err : errno));
    return 0;
}

static int send_all(struct probe *pr, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(pr->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return fail(pr, "send", strerror(errno));
        } else if (wait_for(pr, POLLOUT) < 0) {
            return io_fail(pr, "send");
        }
    }
    return 0;
}

/* Reads until the response's head is whole; its status in *status. */
static int read_status(struct probe *pr, int *status)
{
    static char buf[PROBE_HEAD_MAX];
    static struct http1_msg msg; /* large: off the stack */
    size_t len = 0, prev = 0;
    for (;;) {
        if (len == sizeof buf)
            return fail(pr, "bad response", "head too large");
        ssize_t n = recv(pr->fd, buf + len, sizeof buf - len, 0);
        if (n == 0)
            return fail(pr, "bad response", "connection closed before a whole head");
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return fail(pr, "recv", strerror(errno));
            if (wait_for(pr, POLLIN) < 0)
                return io_fail(pr, "response");
            continue;
        }
        len += (size_t)n;
        enum http1_result r =
            http1_parse_response(buf, len, prev, &http1_default_limits, HTTP1_METHOD_GET, &msg);
        prev = len;
        if (r == HTTP1_ERROR)
            return fail(pr, "bad response", msg.error);
        if (r == HTTP1_DONE && msg.status >= 200) { /* 1xx: an interim answer, read on */
            *status = msg.status;
            return 0;
        }
        if (r == HTTP1_DONE) {
            memmove(buf, buf + msg.head_len, len - msg.head_len);
            len -= msg.head_len;
            prev = 0;
        }
    }
}

int demo_probe(const char *host, int port, const char *path)
{
    char url[NET_ADDR_TEXT_MAX + 2048], authority[NET_ADDR_TEXT_MAX + 16], why[160];
    bool bare_v6 = strchr(host, ':') && host[0] != '[';
    snprintf(authority, sizeof authority, bare_v6 ? "[%s]:%d" : "%s:%d", host, port);
    snprintf(url, sizeof url, "http://%s%s", authority, path);
    struct probe pr = {
        .url = url, .fd = -1, .deadline_ms = clock_mono_ms() + DEMO_PROBE_TIMEOUT_MS};
    struct net_addr addr;
    if (net_addr_parse(authority, &addr, why, sizeof why) < 0 || net_addr_port(&addr) < 0)
        return fail(&pr, "bad address", why);
    char request[2400];
    int len = snprintf(request, sizeof request,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gantry-demo-app-probe\r\n"
                       "Connection: close\r\n\r\n",
                       path, authority);
    int status = 0;
    int rc = len < 0 || (size_t)len >= sizeof request ? fail(&pr, "bad path", "too long")
             : connect_to(&pr, &addr)                 ? 1
             : send_all(&pr, request, (size_t)len)    ? 1
                                                      : read_status(&pr, &status);
    if (pr.fd >= 0)
        close(pr.fd);
    if (rc != 0)
        return 1;
    if (status < 200 || status > 299) {
        char answer[64];
        snprintf(answer, sizeof answer, "%d %s", status, http1_reason(status));
        return fail(&pr, "answered", answer);
    }
    return 0;
}
