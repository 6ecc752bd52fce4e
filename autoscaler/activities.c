#include "autoscaler/activities.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

static void new_uuid(char out[37])
{
    unsigned char b[16];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f)
        fclose(f);
    for (size_t i = n; i < sizeof b; i++)
        b[i] = (unsigned char)rand();
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int activity_record(struct redis_sync *r, const struct activity *a)
{
    char id[37], key[600], trim_end[16];
    new_uuid(id);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:s, s:s}", "ActivityId", id,
                            "ServiceNamespace", "ecs", "ResourceId", a->resource_id,
                            "ScalableDimension", "ecs:service:DesiredCount", "Description",
                            a->description, "Cause", a->cause, "StartTime", a->start, "EndTime",
                            a->end, "StatusCode", a->successful ? "Successful" : "Failed",
                            "StatusMessage", a->status_message ? a->status_message : "");
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return -1;
    snprintf(key, sizeof key, ACTIVITIES_KEY_PREFIX "%s", a->resource_id);
    snprintf(trim_end, sizeof trim_end, "%d", ACTIVITIES_KEPT - 1);
    const char *push[] = {"LPUSH", key, text};
    const char *trim[] = {"LTRIM", key, "0", trim_end};
    struct redis_cmd cmds[2];
    redis_cmd_set(&cmds[0], 3, push);
    redis_cmd_set(&cmds[1], 4, trim);
    int rc = redis_sync_multi(r, cmds, 2);
    if (rc < 0)
        log_warn("scaling activity of %s not recorded: %s", a->resource_id, r->error);
    free(text);
    return rc;
}
