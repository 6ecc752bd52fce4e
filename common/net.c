#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_port(const char *text, int *port)
{
    if (!*text || strlen(text) > 5)
        return -1;
    int value = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        value = value * 10 + (*p - '0');
    }
    if (value > 65535)
        return -1;
    *port = value;
    return 0;
}

static int parse_unix(const char *path, struct net_addr *out, char *err, size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sun->sun_path) {
        snprintf(err, errlen, "unix socket path must have 1 to %zu characters",
                 sizeof sun->sun_path - 1);
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int net_addr_parse(const char *text, struct net_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text + 5, out, err, errlen);

    char host[64];
    const char *port_text;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "IPv6 address must look like [::1]:80");
            return -1;
        }
        size_t n = (size_t)(close - text - 1);
        if (n >= sizeof host) {
            snprintf(err, errlen, "IPv6 address too long");
            return -1;
        }
        memcpy(host, text + 1, n);
        host[n] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon || colon == text || (size_t)(colon - text) >= sizeof host) {
            snprintf(err, errlen, "address must be HOST:PORT, [IPv6]:PORT or unix:/path");
            return -1;
        }
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    int port;
    if (parse_port(port_text, &port) < 0) {
        snprintf(err, errlen, "port must be a number from 0 to 65535");
        return -1;
    }

    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (text[0] == '[') {
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            snprintf(err, errlen, "'%s' is not an IPv6 address", host);
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *sin6;
        return 0;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    else if (strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        snprintf(err, errlen, "'%s' is neither an IPv4 address nor localhost", host);
        return -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    out->len = sizeof *sin;
    return 0;
}

const char *net_addr_format(const struct net_addr *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    switch (a->len ? a->ss.ss_family : AF_UNSPEC) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%d", host, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%d", host, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX:
        snprintf(out, size, "unix:%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
        break;
    default:
        snprintf(out, size, "(none)");
    }
    return out;
}

int net_addr_family(const struct net_addr *a)
{
    return a->len ? a->ss.ss_family : AF_UNSPEC;
}

int net_addr_port(const struct net_addr *a)
{
    switch (net_addr_family(a)) {
    case AF_INET:
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    case AF_INET6:
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    default:
        return -1;
    }
}

void net_addr_set_port(struct net_addr *a, int port)
{
    if (net_addr_family(a) == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else if (net_addr_family(a) == AF_INET6)
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

bool net_addr_is_loopback(const struct net_addr *a)
{
    switch (net_addr_family(a)) {
    case AF_INET:
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    case AF_INET6:
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    case AF_UNIX:
        return true;
    default:
        return false;
    }
}

int net_set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int net_listen(const struct net_addr *a, int backlog, bool reuseport, char *err, size_t errlen)
{
    char text[NET_ADDR_TEXT_MAX];
    int family = net_addr_family(a);
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (family != AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    } else {
        /* A stale socket file from a previous run would make bind fail; anything else at that
         * path is not ours to delete, and bind will say so. */
        const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path);
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
        snprintf(err, errlen, "bind %s: %s", net_addr_format(a, text, sizeof text),
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int net_bound_addr(int fd, struct net_addr *out)
{
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    return getsockname(fd, (struct sockaddr *)&out->ss, &out->len);
}

int net_cidr_parse(const char *text, struct net_cidr *out)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof host)
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, host, out->addr) == 1)
        out->family = AF_INET6;
    else
        return -1;
    int max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        int prefix;
        if (parse_port(slash + 1, &prefix) < 0 || prefix > max)
            return -1;
        out->prefix = prefix;
    }
    return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return false;
    if (bits % 8 == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool net_cidr_contains(const struct net_cidr *net, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return net->family == AF_INET &&
               prefix_equal(net->addr, (const unsigned char *)&sin->sin_addr, net->prefix);
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    const unsigned char *a6 = sin6->sin6_addr.s6_addr;
    if (net->family == AF_INET6)
        return prefix_equal(net->addr, a6, net->prefix);
    /* ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket */
    return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && prefix_equal(net->addr, a6 + 12, net->prefix);
}
