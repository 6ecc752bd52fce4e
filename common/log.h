/* Logging: one line per message on stderr, "TIMESTAMP LEVEL component: message".
 * log_init() names the component once at startup; the level can change later (reload). This is the
 * one piece of process-wide state in common/: every module logs, and threading a logger through
 * every call would buy nothing. Messages below the level cost one comparison. */
#ifndef GANTRY_COMMON_LOG_H
#define GANTRY_COMMON_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

void log_init(const char *component, enum log_level level);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parses "debug", "info", "warn" or "error"; returns 0 on success, -1 otherwise. */
int log_level_parse(const char *text, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
