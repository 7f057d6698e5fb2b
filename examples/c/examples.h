/* examples.h — shared by the C examples. */
#ifndef HAKUBAN_EXAMPLES_H
#define HAKUBAN_EXAMPLES_H

#include <stdio.h>
#include <stdlib.h>

#include <hakuban.h>

/* Every hakuban call returns a code; a negative one comes with a message. */
#define CHECKED(expr)                                                                              \
    do {                                                                                           \
        int32_t rc_ = (expr);                                                                      \
        if (rc_ < 0) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #expr, (int)rc_,    \
                    hakuban_last_error_message());                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int run_exposer(hakuban_exchange exchange);
int run_observer(hakuban_exchange exchange, int readings);

#endif
