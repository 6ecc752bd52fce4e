/* libFuzzer target: any bytes as a configuration file. The loader must refuse or accept them
 * without crashing, leaking or reading out of bounds, and a refusal must carry a message. */
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gantry_config cfg;
    struct cfg_errors errors = {0};
    struct arena arena = {0};
    struct cfg_ctx ctx = {.arena = &arena, .file = "fuzz", .errors = &errors};
    cfg_apply_defaults(&ctx, config_schema(), &cfg);
    int rc = cfg_bind_text(&ctx, config_schema(), &cfg, (const char *)data, size);
    if (rc < 0 && (errors.count == 0 || errors.messages[0][0] == '\0'))
        abort();
    arena_free(&arena);
    return 0;
}
