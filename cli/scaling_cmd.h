/* `gantry scaling activities`: the scaling activities gantry-autoscaler records in Redis
 * (autoscaler/activities.h: gantry:autoscaling:activities:RESOURCE_ID, newest first), as a table
 * or as DescribeScalingActivities' JSON. `gantry status` shows the last ones of each service
 * with the same cells (scaling_row_of).
 *
 * Nothing read from Redis is trusted: a value that is not JSON, a member of the wrong type, an
 * unknown StatusCode or a document over SCALING_DOC_MAX bytes shows as "?" in the table and is
 * left out of the JSON; every cell is escaped for the terminal and cut to a bounded length. */
#ifndef GANTRY_CLI_SCALING_CMD_H
#define GANTRY_CLI_SCALING_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum {
    SCALING_DOC_MAX = 64 * 1024, /* an activity is well under 4 KiB: larger is damage */
    SCALING_TIME_MAX = 32,
    SCALING_STATUS_SHOWN = 120, /* "Failed (StatusMessage)" */
    SCALING_DESCRIPTION_SHOWN = 200,
    SCALING_CAUSE_SHOWN = 400,
};

/* What lb_escape_text needs to show n bytes: each as \xNN at worst, then "..." and the NUL. */
#define SCALING_ESCAPED(n) ((n)*4 + 8)

/* One activity as the tables show it; every cell is printable ASCII. */
struct scaling_row {
    char time[SCALING_TIME_MAX];
    char status[SCALING_ESCAPED(SCALING_STATUS_SHOWN)];
    char description[SCALING_ESCAPED(SCALING_DESCRIPTION_SHOWN)];
    char cause[SCALING_ESCAPED(SCALING_CAUSE_SHOWN)];
};

/* The cells of one element of an activities list (the bytes as Redis holds them). The StartTime
 * is local time, "YYYY-MM-DD HH:MM:SS", or "HH:MM:SS" when short_time and within a day of now. */
void scaling_row_of(const char *text, size_t len, time_t now, bool short_time,
                    struct scaling_row *out);

int scaling_cmd_main(int argc, char **argv);

#endif
