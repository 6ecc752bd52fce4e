/* An ECS API error: HTTP status, the exception name ECS uses ("ClientException",
 * "InvalidParameterException", "ClusterNotFoundException", ...) and a message naming the field.
 * Sent as {"__type": TYPE, "message": MESSAGE}. Pure: no I/O. */
#ifndef GANTRY_CORE_API_ERROR_H
#define GANTRY_CORE_API_ERROR_H

enum { API_ERROR_MESSAGE_MAX = 512 };

struct api_error {
    int status; /* 400 for the caller's errors, 500 for ours */
    const char *type;
    char message[API_ERROR_MESSAGE_MAX];
};

/* Sets err (status 400, or 500 for "ServerException") and returns -1, so handlers can
 * `return api_fail(err, "ClientException", "...")`. */
int api_fail(struct api_error *err, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
