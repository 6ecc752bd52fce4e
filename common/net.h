/* Socket addresses and listening sockets.
 * Address syntax, shared by the config files and the command lines:
 *   127.0.0.1:8080   [::1]:80   localhost:8080 (IPv4 loopback)   *:8080 (all IPv4)   [::]:8080
 *   unix:/path/to/socket
 * Host names other than localhost are refused: a listener or target must not depend on DNS. */
#ifndef GANTRY_COMMON_NET_H
#define GANTRY_COMMON_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len; /* 0: no address set */
};

enum { NET_ADDR_TEXT_MAX = 120 };

/* 0 on success; -1 with a reason in err ("port out of range", ...). */
int net_addr_parse(const char *text, struct net_addr *out, char *err, size_t errlen);
/* "127.0.0.1:8080", "[::1]:80" or "unix:/path"; returns out. */
const char *net_addr_format(const struct net_addr *a, char *out, size_t size);
int net_addr_family(const struct net_addr *a);
int net_addr_port(const struct net_addr *a); /* -1 for unix sockets */
void net_addr_set_port(struct net_addr *a, int port);
bool net_addr_is_loopback(const struct net_addr *a);

/* A non-blocking, close-on-exec listening socket; SO_REUSEADDR always, SO_REUSEPORT on request.
 * Returns the fd, or -1 with "bind 127.0.0.1:80: Address already in use" in err. */
int net_listen(const struct net_addr *a, int backlog, bool reuseport, char *err, size_t errlen);
/* The address a socket is actually bound to (resolves port 0). */
int net_bound_addr(int fd, struct net_addr *out);
int net_set_nonblocking(int fd);

/* An IPv4 or IPv6 network in CIDR notation ("10.0.0.0/8", "::1/128"; a bare address is a /32 or
 * /128), for source-ip rules. */
struct net_cidr {
    int family;
    unsigned char addr[16];
    int prefix;
};

int net_cidr_parse(const char *text, struct net_cidr *out);
/* Whether a socket address (AF_INET or AF_INET6) lies in the network; an IPv4-mapped IPv6
 * address matches IPv4 networks. */
bool net_cidr_contains(const struct net_cidr *net, const struct sockaddr *sa);
#endif
