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

/* The router's default address (hakuban-router with no flags). */
#define EXAMPLE_DEFAULT_URL "ws://127.0.0.1:3001/"

int run_exposer(hakuban_exchange exchange);
int run_observer(hakuban_exchange exchange, int readings);

/* Refuses to run on a libhakuban with another ABI than the header's. */
static inline void check_library(void) {
    if (hakuban_abi_version() != HAKUBAN_ABI_VERSION) {
        fprintf(stderr, "libhakuban has ABI %u, this program needs %d\n", hakuban_abi_version(),
                HAKUBAN_ABI_VERSION);
        exit(1);
    }
}

/*
 * Links exchange to the router at url and waits until the link is up,
 * saying why while it is not. Waiting is optional: contracts made before
 * the link is up are declared to the router as soon as it is, and again
 * after every reconnect (the connector reconnects by itself, forever).
 * Drop the returned connector before or after the exchange.
 */
static inline hakuban_connector connect_to_router(hakuban_exchange exchange, const char *url,
                                                  const char *who) {
    hakuban_connector connector = 0;
    CHECKED(hakuban_connector_new(&connector, exchange, &url, 1, NULL));
    hakuban_connector_status_info status;
    int32_t rc;
    while ((rc = hakuban_connector_wait(&status, connector, HAKUBAN_CONNECTOR_CONNECTED, 2000)) ==
           HAKUBAN_TIMEOUT) {
        char *error = NULL;
        CHECKED(hakuban_connector_last_error(&error, connector));
        fprintf(stderr, "%s no link to %s yet (%s); still trying\n", who, url,
                error ? error : "connecting");
        hakuban_string_free(error);
    }
    if (rc == HAKUBAN_END) { /* refused for good, e.g. a protocol version mismatch */
        char *error = NULL;
        CHECKED(hakuban_connector_last_error(&error, connector));
        fprintf(stderr, "%s %s refused the link: %s\n", who, url, error ? error : "?");
        exit(1);
    }
    CHECKED(rc);
    printf("%s connected to %s\n", who, url);
    return connector;
}

#endif
