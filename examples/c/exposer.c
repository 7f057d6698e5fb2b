/*
 * exposer.c — a hakuban exposer in C: "I can produce the temperature of the
 * kitchen". It produces readings only while it holds an assignment (a sink),
 * which the exchange gives it only while somebody observes the object: no
 * observer, no work.
 *
 * The pattern: wait for an assignment (blocking next), then produce until the
 * assignment ends (the sink's next returns HAKUBAN_END instead of timing
 * out), then wait for the next assignment. When the contract itself ends
 * (closed, or the exchange dropped) the contract's next returns HAKUBAN_END.
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
