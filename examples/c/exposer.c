/*
 * exposer.c — a hakuban exposer in C: "I can produce the temperature of the
 * kitchen". It produces readings only while it holds an assignment (a sink),
 * which the exchange gives it only while somebody observes the object: no
 * observer, no work. Here the observer is another process (observer.c),
 * and both talk through a router:
 *
 *   hakuban-router &                                (listens on 127.0.0.1:3001)
 *   ./hakuban_example_exposer [ws://127.0.0.1:3001/]
 *   ./hakuban_example_observer [ws://127.0.0.1:3001/] [readings]
 *
 * (`make router` builds build/hakuban-router.) Stop the exposer with Ctrl-C.
 * Start and stop the observer as often as you like: the exposer starts and
 * stops producing accordingly. Stop the router, and start it again: both
 * reconnect by themselves and carry on.
 *
 * The pattern: wait for an assignment (blocking next), then produce until the
 * assignment ends (the sink's next returns HAKUBAN_END instead of timing
 * out), then wait for the next assignment. When the contract itself ends
 * (closed, or the exchange dropped) the contract's next returns HAKUBAN_END.
 * run_exposer does not know about the network: in_process.c runs the same
 * function on a thread next to the observer, with no router.
 */
#include <stdio.h>

#include <hakuban.h>

#include "examples.h"

static void send_reading(hakuban_object_state_sink sink, double celsius) {
    char json[64];
    snprintf(json, sizeof json, "{\"celsius\":%.1f}", celsius);
    hakuban_object_state state = 0;
    /* no version: the library makes one newer than the current state */
    CHECKED(hakuban_object_state_new_json(&state, NULL, 0, json));
    int32_t rc = hakuban_object_state_sink_send(sink, state);
    if (rc == HAKUBAN_ERR_REVOKED) {
        /* the assignment ended between two calls: the next wait says so */
    } else {
        CHECKED(rc);
        printf("exposer:  sent %s\n", json);
    }
    hakuban_object_state_drop(state);
}

int run_exposer(hakuban_exchange exchange) {
    hakuban_object_descriptor kitchen = 0;
    const char *tags[] = {"\"temperatures\""};
    CHECKED(hakuban_object_descriptor_new(&kitchen, "{\"room\":\"kitchen\"}", tags, 1));

    hakuban_object_expose_contract contract = 0;
    CHECKED(hakuban_object_expose_contract_new(&contract, exchange, kitchen, 1));
    hakuban_object_descriptor_drop(kitchen); /* the contract keeps its own copy */

    double celsius = 20.0;
    for (;;) {
        hakuban_object_state_sink sink = 0;
        int32_t rc = hakuban_object_expose_contract_next(&sink, contract, -1);
        if (rc == HAKUBAN_END) break; /* the contract was closed */
        CHECKED(rc);

        uint64_t token = 0;
        CHECKED(hakuban_object_state_sink_token(&token, sink));
        printf("exposer:  assigned (token %llu): somebody observes, start producing\n",
               (unsigned long long)token);

        /* produce a reading every 100 ms until the assignment ends */
        while ((rc = hakuban_object_state_sink_next(sink, 100)) == HAKUBAN_TIMEOUT) {
            celsius += 0.5;
            send_reading(sink, celsius);
        }
        CHECKED(rc == HAKUBAN_END ? HAKUBAN_OK : rc);
        printf("exposer:  assignment ended: nobody observes, stop producing\n");
        hakuban_object_state_sink_drop(sink);
    }
    printf("exposer:  contract ended\n");
    hakuban_object_expose_contract_drop(contract);
    return 0;
}

#ifndef HAKUBAN_EXAMPLE_NO_MAIN /* in_process.c brings its own main */
int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : EXAMPLE_DEFAULT_URL;
    check_library();
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */

    hakuban_exchange_options options;
    hakuban_exchange_options_init(&options);
    options.name = "c-exposer"; /* how the router names us in logs and snapshots */
    hakuban_exchange exchange = 0;
    CHECKED(hakuban_exchange_new(&exchange, &options));

    hakuban_connector connector = connect_to_router(exchange, url, "exposer: ");
    int rc = run_exposer(exchange); /* until the process is stopped */

    hakuban_connector_drop(connector);
    hakuban_exchange_drop(exchange);
    return rc;
}
#endif
