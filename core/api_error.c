#include "core/api_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int api_fail(struct api_error *err, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->type = type;
    err->status = strcmp(type, "ServerException") == 0 ? 500 : 400;
    return -1;
}
