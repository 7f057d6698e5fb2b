/*
 * observer.c — a hakuban observer in C: "I want the temperature of the
 * kitchen". It waits on the contract's file descriptor with poll(), the way
 * an event loop (libuv, epoll, a GUI main loop) would, and reads every
 * pending state with try_next until HAKUBAN_EMPTY. The exposer is another
 * process (exposer.c), reached through a router:
 *
 *   hakuban-router &
 *   ./hakuban_example_exposer [ws://127.0.0.1:3001/]
 *   ./hakuban_example_observer [ws://127.0.0.1:3001/] [readings, default 10]
 *
 * It exits after that many readings. An observer only ever sees the newest
 * state: if it is slow, intermediate readings are skipped, never queued.
 * While the link to the exposer is down, it gets the last state again,
 * marked stale (not synchronized).
 */
#include <poll.h>
#include <stdio.h>

#include <hakuban.h>

#include "examples.h"

static void print_state(hakuban_object_state state) {
    const char *json = NULL;
    size_t len = 0;
    CHECKED(hakuban_object_state_json(&json, &len, state));
    bool synchronized = false;
    CHECKED(hakuban_object_state_synchronized(&synchronized, state));
    const int64_t *version = NULL;
    size_t version_len = 0;
    CHECKED(hakuban_object_state_version(&version, &version_len, state));
    printf("observer: kitchen is %s (version %lld%s)\n", json,
           version_len ? (long long)version[0] : 0LL, synchronized ? "" : ", stale");
}

int run_observer(hakuban_exchange exchange, int readings) {
    hakuban_object_descriptor kitchen = 0;
    const char *tags[] = {"\"temperatures\""};
    CHECKED(hakuban_object_descriptor_new(&kitchen, "{\"room\":\"kitchen\"}", tags, 1));

    hakuban_object_observe_contract contract = 0;
    CHECKED(hakuban_object_observe_contract_new(&contract, exchange, kitchen));
    hakuban_object_descriptor_drop(kitchen);

    int fd = -1;
    CHECKED(hakuban_object_observe_contract_fd(&fd, contract));

    int seen = 0;
    while (seen < readings) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) == 0) {
            int32_t status = 0;
            CHECKED(hakuban_object_observe_contract_status(&status, contract));
            printf("observer: nothing for 2 s (status %d: %s)\n", (int)status,
                   status == HAKUBAN_STATUS_WAITING_FOR_EXPOSER ? "waiting for an exposer" : "");
            continue;
        }
        /* readable: take everything pending, until HAKUBAN_EMPTY */
        for (;;) {
            hakuban_object_state state = 0;
            int32_t rc = hakuban_object_observe_contract_try_next(&state, contract);
            if (rc == HAKUBAN_EMPTY) break;
            if (rc == HAKUBAN_END) { /* closed from elsewhere (the exchange dropped) */
                hakuban_object_observe_contract_drop(contract);
                return 1;
            }
            CHECKED(rc);
            print_state(state);
            hakuban_object_state_drop(state);
            seen++;
        }
    }
    /* dropping the contract cancels the wish: the exposer's assignment ends */
    hakuban_object_observe_contract_drop(contract);
    printf("observer: done after %d readings\n", seen);
    return 0;
}

#ifndef HAKUBAN_EXAMPLE_NO_MAIN /* in_process.c brings its own main */
int main(int argc, char **argv) {
    const char *url = argc > 1 ? argv[1] : EXAMPLE_DEFAULT_URL;
    int readings = argc > 2 ? atoi(argv[2]) : 10;
    check_library();
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe */

    hakuban_exchange_options options;
    hakuban_exchange_options_init(&options);
    options.name = "c-observer";
    hakuban_exchange exchange = 0;
    CHECKED(hakuban_exchange_new(&exchange, &options));

    hakuban_connector connector = connect_to_router(exchange, url, "observer:");
    int rc = run_observer(exchange, readings);

    /* the order does not matter; dropping the connector first closes the
     * link cleanly, so the router forgets this observer at once */
    hakuban_connector_drop(connector);
    hakuban_exchange_drop(exchange);
    return rc;
}
#endif
