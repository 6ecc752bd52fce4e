/* libFuzzer target for common/schedule.c: any bytes as a schedule expression. Invariants: parsing
 * never crashes and a refusal carries a message; an accepted schedule answers schedule_next, in
 * UTC or in New York (picked by the input's length), with -1 or a time strictly after `after`,
 * and asking again from that time answers a later one; cron fires fall on whole minutes in UTC.
 * libFuzzer's slow-unit report catches a search that runs long. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A start instant drawn from the input: anywhere from 1960 to 2230, so the search meets the
 * year range's two ends. */
static int64_t pick_after(const uint8_t *data, size_t size)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    return -315619200 + (int64_t)(h % (270ULL * 365 * 86400));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct schedule s;
    char why[256];
    if (schedule_parse(text, &s, why, sizeof why) < 0) {
        if (why[0] == '\0')
            abort();
        free(text);
        return 0;
    }
    const char *zone = size % 2 ? "America/New_York" : NULL;
    int64_t after = pick_after(data, size);
    for (int i = 0; i < 3; i++) {
        int64_t next = schedule_next(&s, after - 7, after, zone, why, sizeof why);
        if (next == -1)
            break;
        if (next <= after)
            abort();
        if (s.kind == SCHEDULE_CRON && !zone && next % 60 != 0)
            abort();
        after = next;
    }
    free(text);
    return 0;
}
