/*
 * test_threads.c — 8 threads share one exchange. Each exposes its own object
 * and observes its neighbour's, sends 2000 versions and must see the
 * neighbour's last one; meanwhile each churns descriptors, states, contracts
 * and snapshots (handle-table traffic), and a tag observer counts everything.
 * Run under AddressSanitizer too (asan_test_threads).
 */
#include <pthread.h>

#include "testutil.h"

enum { THREADS = 8, VERSIONS = 2000 };

static hakuban_exchange ex;
/* Everybody's contracts exist before anybody sends, and nobody leaves before
 * everybody has read: an object is forgotten when its last contract goes. */
static pthread_barrier_t all_ready, all_done;
/* Threads whose object the tag observer has seen a state of (bit per id). */
static atomic_int tag_seen;

static bool tag_saw(void *id) { return atomic_load(&tag_seen) & (1 << *(int *)id); }

struct worker {
    int id;
    int64_t neighbour_last;
    long churned;
};

static void *work(void *arg) {
    struct worker *w = arg;
    char json[64];
    snprintf(json, sizeof json, "{\"thread\":%d}", w->id);
    hakuban_object_descriptor mine = make_object(json, "\"threads\"");
    snprintf(json, sizeof json, "{\"thread\":%d}", (w->id + 1) % THREADS);
    hakuban_object_descriptor theirs = make_object(json, "\"threads\"");

    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract obs = 0, self = 0;
    OK(hakuban_object_expose_contract_new(&exp, ex, mine, 1));
    OK(hakuban_object_observe_contract_new(&self, ex, mine)); /* keeps mine observed */
    OK(hakuban_object_observe_contract_new(&obs, ex, theirs));
    hakuban_object_state_sink sink = expect_sink(exp);

    pthread_barrier_wait(&all_ready);
    char payload[64];
    for (int64_t v = 1; v <= VERSIONS; v++) {
        snprintf(payload, sizeof payload, "thread %d version %" PRId64, w->id, v);
        send_text(sink, v, payload);

        /* read whatever the neighbour has (latest wins) */
        hakuban_object_state st = 0;
        if (hakuban_object_observe_contract_try_next(&st, obs) == HAKUBAN_OK) {
            int64_t got = state_version(st);
            CHECK(got >= w->neighbour_last); /* never backwards (equal: only sync changed) */
            w->neighbour_last = got;
            OK(hakuban_object_state_drop(st));
        }

        /* churn: short-lived handles of every kind */
        if (v % 20 == 0) {
            snprintf(json, sizeof json, "{\"churn\":%d,\"v\":%" PRId64 "}", w->id, v);
            hakuban_object_descriptor d = make_object(json, "\"churn\"");
            hakuban_object_observe_contract o = 0;
            OK(hakuban_object_observe_contract_new(&o, ex, d));
            int32_t status = 0;
            OK(hakuban_object_observe_contract_status(&status, o));
            CHECK(status == HAKUBAN_STATUS_WAITING_FOR_EXPOSER);
            int fd = -1;
            OK(hakuban_object_observe_contract_fd(&fd, o));
            OK(hakuban_object_observe_contract_drop(o));
            OK(hakuban_object_descriptor_drop(d));
            hakuban_object_state tmp = make_state(v, "tmp");
            const void *p = NULL;
            size_t n = 0;
            OK(hakuban_object_state_data(&p, &n, tmp));
            OK(hakuban_object_state_drop(tmp));
            w->churned++;
        }
        if (v % 500 == 0) {
            char *snap = NULL;
            OK(hakuban_exchange_snapshot(&snap, ex));
            hakuban_string_free(snap);
        }
    }

    /* wait for the neighbour's last version */
    while (w->neighbour_last < VERSIONS) {
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_next(&st, obs, 10000);
        if (rc == HAKUBAN_TIMEOUT)
            FAIL("thread %d: neighbour stuck at version %" PRId64, w->id, w->neighbour_last);
        OK(rc);
        int64_t got = state_version(st);
        CHECK(got >= w->neighbour_last);
        w->neighbour_last = got;
        OK(hakuban_object_state_drop(st));
    }

    /* the tag observer sees every live object with the tag (latest wins: it
     * may have skipped versions, never the object) */
    if (!wait_for(tag_saw, &w->id, 10000)) FAIL("thread %d: tag observer never saw its object", w->id);
    /* keep exposing until every thread has read its neighbour, then leave */
    pthread_barrier_wait(&all_done);
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_observe_contract_drop(self));
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(mine));
    OK(hakuban_object_descriptor_drop(theirs));
    return NULL;
}

struct tag_counter {
    hakuban_tag_observe_contract c;
    long events;
    long gone;
};

static void *count_tag_events(void *arg) {
    struct tag_counter *t = arg;
    for (;;) {
        hakuban_object_event ev;
        int32_t rc = hakuban_tag_observe_contract_next(&ev, t->c, -1);
        if (rc == HAKUBAN_END) return NULL;
        OK(rc);
        t->events++;
        if (ev.gone) {
            t->gone++;
        } else {
            const char *json = NULL;
            int id = -1;
            OK(hakuban_object_descriptor_json(&json, ev.descriptor));
            CHECK(sscanf(json, "{\"thread\":%d}", &id) == 1 && id >= 0 && id < THREADS);
            atomic_fetch_or(&tag_seen, 1 << id);
        }
        OK(hakuban_object_descriptor_drop(ev.descriptor));
        OK(hakuban_object_state_drop(ev.state)); /* 0 when gone: a no-op */
    }
}

static void test_eight_threads_one_exchange(void) {
    ex = make_exchange();
    hakuban_tag_descriptor tag = make_tag("\"threads\"");
    struct tag_counter tc = {0};
    OK(hakuban_tag_observe_contract_new(&tc.c, ex, tag));
    pthread_t counter;
    CHECK(pthread_create(&counter, NULL, count_tag_events, &tc) == 0);

    pthread_t th[THREADS];
    struct worker w[THREADS];
    CHECK(pthread_barrier_init(&all_ready, NULL, THREADS) == 0);
    CHECK(pthread_barrier_init(&all_done, NULL, THREADS) == 0);
    int64_t t0 = now_ms();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.id = i};
        CHECK(pthread_create(&th[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
    for (int i = 0; i < THREADS; i++) CHECK(w[i].neighbour_last == VERSIONS);
    pthread_barrier_destroy(&all_ready);
    pthread_barrier_destroy(&all_done);

    OK(hakuban_tag_observe_contract_close(tc.c)); /* wakes the counter */
    CHECK(pthread_join(counter, NULL) == 0);
    CHECK(atomic_load(&tag_seen) == (1 << THREADS) - 1);
    fprintf(stderr, "  %d threads x %d versions in %" PRId64 " ms; tag observer saw %ld events (%ld gone)\n",
            THREADS, VERSIONS, now_ms() - t0, tc.events, tc.gone);

    char *snap = NULL;
    OK(hakuban_exchange_snapshot(&snap, ex));
    /* everything the threads made is gone again */
    CHECK(strstr(snap, "\"objects\":[]") != NULL);
    hakuban_string_free(snap);
    OK(hakuban_tag_observe_contract_drop(tc.c));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_exchange_drop(ex));
}

static const test_case tests[] = {
    T(test_eight_threads_one_exchange),
};

RUN_TESTS(tests)
