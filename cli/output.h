/* A child's output, re-emitted line by line as "name  | line" on gantry's stdout.
 * Bytes arrive in arbitrary chunks; a partial line waits for the rest, but never beyond
 * OUTPUT_LINE_MAX bytes: a longer line is emitted in pieces, so a child printing without newlines
 * cannot make gantry buffer without bound. Each line goes out in one write(2), so lines from
 * several children never interleave mid-line. The last OUTPUT_TAIL_LINES lines are kept (cut to
 * OUTPUT_TAIL_LEN bytes) to explain a failure afterwards. */
#ifndef GANTRY_CLI_OUTPUT_H
#define GANTRY_CLI_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"

enum { OUTPUT_LINE_MAX = 4096, OUTPUT_TAIL_LINES = 10, OUTPUT_TAIL_LEN = 300 };

struct output {
    const char *name; /* the prefix; must outlive the output */
    int width;        /* the prefix is padded to this many characters */
    int fd;           /* where lines go (STDOUT_FILENO) */
    struct buf line;  /* the partial line, over line_mem */
    char line_mem[OUTPUT_LINE_MAX];
    char tail[OUTPUT_TAIL_LINES][OUTPUT_TAIL_LEN];
    size_t tail_next; /* total lines kept so far; the ring index is tail_next % OUTPUT_TAIL_LINES */
};

void output_init(struct output *o, const char *name, int width, int fd);
/* Emits every complete line in bytes[0, n) and keeps the rest for later. */
void output_feed(struct output *o, const char *bytes, size_t n);
/* Emits a partial line (the child has gone: nothing will complete it). */
void output_flush(struct output *o);
/* Writes header then the kept lines, prefixed and indented, to out; nothing when there are none.
 * Returns how many lines. */
size_t output_print_tail(const struct output *o, const char *header, FILE *out);

#endif
