/*
 * in_process.c — runs the exposer (exposer.c) and the observer (observer.c)
 * in one process, on two threads sharing one exchange, with no network: the
 * same run_exposer and run_observer that the two example programs run in
 * separate processes linked through a router. Contracts behave the same in
 * both cases.
 *
 *   ./hakuban_example_in_process [readings]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <hakuban.h>

#include "examples.h"

static void *exposer_thread(void *exchange) {
    run_exposer(*(hakuban_exchange *)exchange);
    return NULL;
}

int main(int argc, char **argv) {
    int readings = argc > 1 ? atoi(argv[1]) : 5;
    check_library();
    printf("libhakuban %s\n", hakuban_version());

    hakuban_exchange exchange = 0;
    CHECKED(hakuban_exchange_new(&exchange, NULL));

    pthread_t exposer;
    if (pthread_create(&exposer, NULL, exposer_thread, &exchange) != 0) return 1;
    int rc = run_observer(exchange, readings);

    /* Dropping the exchange ends every contract made on it: the exposer's
     * blocked next returns HAKUBAN_END and its thread finishes. */
    CHECKED(hakuban_exchange_drop(exchange));
    pthread_join(exposer, NULL);
    return rc;
}
