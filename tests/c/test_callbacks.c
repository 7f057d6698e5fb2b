/*
 * test_callbacks.c — the callback contract of hakuban.h: callbacks are
 * called when something is pending, may call back into the library (even
 * drop their own handle), never run after drop / replace / clear returns,
 * and their drop function runs exactly once. The same for the log callback.
 */
#include <pthread.h>

#include "testutil.h"

/* ---- a callback that drains its observer ---- */

struct drain {
    hakuban_object_observe_contract obs;
    atomic_long calls;
    atomic_long last_version;
    atomic_int drops;
    atomic_int wrong_thread;
    pthread_t registering_thread;
};

static void drain_cb(void *user_data) {
    struct drain *d = user_data;
    if (pthread_equal(pthread_self(), d->registering_thread)) atomic_store(&d->wrong_thread, 1);
    atomic_fetch_add(&d->calls, 1);
    for (;;) { /* re-entrant calls are allowed */
        hakuban_object_state st = 0;
        int32_t rc = hakuban_object_observe_contract_try_next(&st, d->obs);
        if (rc != HAKUBAN_OK) break;
        atomic_store(&d->last_version, state_version(st));
        OK(hakuban_object_state_drop(st));
    }
}

static void drain_drop(void *user_data) { atomic_fetch_add(&((struct drain *)user_data)->drops, 1); }

static bool reached_version(void *arg) {
    struct drain *d = arg;
    return atomic_load(&d->last_version) == 1000;
}

static void test_callback_receives_and_drains(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor desc = make_object("\"cb\"", NULL);
    hakuban_object_expose_contract exp = 0;
    struct drain d = {.registering_thread = pthread_self()};
    OK(hakuban_object_observe_contract_new(&d.obs, ex, desc));
    OK(hakuban_object_observe_contract_set_callback(d.obs, drain_cb, &d, drain_drop));
    OK(hakuban_object_expose_contract_new(&exp, ex, desc, 1));
    hakuban_object_state_sink sink = expect_sink(exp);
    for (int v = 1; v <= 1000; v++) send_text(sink, v, "x");
    CHECK(wait_for(reached_version, &d, 5000));
    CHECK(atomic_load(&d.calls) >= 1);
    CHECK(atomic_load(&d.wrong_thread) == 0); /* never on the thread causing the event */
    CHECK(atomic_load(&d.drops) == 0);
    OK(hakuban_object_observe_contract_drop(d.obs));
    CHECK(atomic_load(&d.drops) == 1); /* before drop returned */
    fprintf(stderr, "  %ld callback calls for 1000 states\n", (long)atomic_load(&d.calls));
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(desc));
    OK(hakuban_exchange_drop(ex));
}

/* ---- none after drop returns ---- */

struct guarded {
    hakuban_object_observe_contract obs;
    atomic_int dropped;   /* set by the test right after drop returned */
    atomic_int violations;
    atomic_long calls;
    atomic_int drops;
    atomic_int drop_after_drop; /* drop_fn ran after drop returned */
};

static void slow_cb(void *user_data) {
    struct guarded *g = user_data;
    if (atomic_load(&g->dropped)) atomic_fetch_add(&g->violations, 1);
    atomic_fetch_add(&g->calls, 1);
    /* take the pending state, so the next one notifies again (the handle
     * may be dropped meanwhile: then this fails, harmlessly) */
    hakuban_object_state st = 0;
    if (hakuban_object_observe_contract_try_next(&st, g->obs) == HAKUBAN_OK)
        OK(hakuban_object_state_drop(st));
    int64_t until = now_ns() + 20000; /* 20 us of work widens the window */
    while (now_ns() < until) {
    }
    if (atomic_load(&g->dropped)) atomic_fetch_add(&g->violations, 1);
}

static void guarded_drop(void *user_data) {
    struct guarded *g = user_data;
    if (atomic_load(&g->dropped)) atomic_store(&g->drop_after_drop, 1);
    atomic_fetch_add(&g->drops, 1);
}

struct pump {
    hakuban_object_state_sink sink;
    atomic_int stop;
};

static void *pump_states(void *arg) {
    struct pump *p = arg;
    hakuban_object_state st = 0;
    OK(hakuban_object_state_new(&st, NULL, 0, NULL, 0, "p", 1));
    while (!atomic_load(&p->stop)) {
        int32_t rc = hakuban_object_state_sink_send(p->sink, st);
        if (rc == HAKUBAN_ERR_REVOKED) break;
        OK(rc);
    }
    OK(hakuban_object_state_drop(st));
    return NULL;
}

static bool some_calls(void *arg) { return atomic_load(&((struct guarded *)arg)->calls) >= 3; }

static void test_no_callback_after_drop(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor desc = make_object("\"guarded\"", NULL);
    hakuban_object_expose_contract exp = 0;
    hakuban_object_observe_contract keep = 0;
    OK(hakuban_object_observe_contract_new(&keep, ex, desc));
    OK(hakuban_object_expose_contract_new(&exp, ex, desc, 1));
    struct pump p = {.sink = expect_sink(exp)};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, pump_states, &p) == 0);
    long total = 0;
    for (int round = 0; round < 100; round++) {
        struct guarded g = {0};
        hakuban_object_observe_contract obs = 0;
        OK(hakuban_object_observe_contract_new(&obs, ex, desc));
        g.obs = obs;
        OK(hakuban_object_observe_contract_set_callback(obs, slow_cb, &g, guarded_drop));
        CHECK(wait_for(some_calls, &g, 5000));
        if (round % 2 == 0) {
            OK(hakuban_object_observe_contract_drop(obs));
        } else { /* clearing the callback has the same guarantee */
            OK(hakuban_object_observe_contract_set_callback(obs, NULL, NULL, NULL));
        }
        atomic_store(&g.dropped, 1);
        CHECK(atomic_load(&g.drops) == 1);
        /* give a wrongly late callback every chance to show up */
        long before = atomic_load(&g.calls);
        int64_t until = now_ms() + 2;
        while (now_ms() < until) {
        }
        CHECK(atomic_load(&g.calls) == before);
        if (round % 2 == 1) OK(hakuban_object_observe_contract_drop(obs));
        CHECK(atomic_load(&g.violations) == 0);
        CHECK(atomic_load(&g.drops) == 1);
        CHECK(atomic_load(&g.drop_after_drop) == 0);
        total += before;
    }
    atomic_store(&p.stop, 1);
    CHECK(pthread_join(th, NULL) == 0);
    fprintf(stderr, "  100 registrations, %ld callback calls, none after drop\n", total);
    OK(hakuban_object_state_sink_drop(p.sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_observe_contract_drop(keep));
    OK(hakuban_object_descriptor_drop(desc));
    OK(hakuban_exchange_drop(ex));
}

/* ---- re-entrant: a callback drops its own handle ---- */

struct self_drop {
    hakuban_object_observe_contract obs;
    atomic_int dropped_rc_set;
    int32_t dropped_rc;
    atomic_int drops;
    atomic_int calls_after;
};

static void self_drop_cb(void *user_data) {
    struct self_drop *s = user_data;
    if (atomic_load(&s->dropped_rc_set)) {
        atomic_fetch_add(&s->calls_after, 1);
        return;
    }
    /* the first call may be the registration's (spurious): drop only once
     * the state has come */
    hakuban_object_state st = 0;
    if (hakuban_object_observe_contract_try_next(&st, s->obs) != HAKUBAN_OK) return;
    OK(hakuban_object_state_drop(st));
    s->dropped_rc = hakuban_object_observe_contract_drop(s->obs); /* must not deadlock */
    atomic_store(&s->dropped_rc_set, 1);
    CHECK(atomic_load(&s->drops) == 0); /* our own drop_fn waits until we return */
}

static void self_drop_drop(void *user_data) { atomic_fetch_add(&((struct self_drop *)user_data)->drops, 1); }

static void test_callback_drops_own_handle(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor desc = make_object("\"self\"", NULL);
    hakuban_object_expose_contract exp = 0;
    struct self_drop s = {0};
    OK(hakuban_object_observe_contract_new(&s.obs, ex, desc));
    OK(hakuban_object_observe_contract_set_callback(s.obs, self_drop_cb, &s, self_drop_drop));
    OK(hakuban_object_expose_contract_new(&exp, ex, desc, 1));
    hakuban_object_state_sink sink = expect_sink(exp);
    send_text(sink, 1, "x");
    CHECK(WAIT_FLAG(&s.dropped_rc_set, 5000));
    CHECK(s.dropped_rc == HAKUBAN_OK);
    CHECK(WAIT_FLAG(&s.drops, 5000));
    CHECK(atomic_load(&s.drops) == 1);
    CHECK(atomic_load(&s.calls_after) == 0);
    hakuban_object_state st = 0;
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, s.obs), HAKUBAN_ERR_INVALID_HANDLE);
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_descriptor_drop(desc));
    OK(hakuban_exchange_drop(ex));
}

/* ---- replacing a registration ---- */

struct counter {
    atomic_int calls;
    atomic_int drops;
};

static void count_cb(void *user_data) { atomic_fetch_add(&((struct counter *)user_data)->calls, 1); }
static void count_drop(void *user_data) { atomic_fetch_add(&((struct counter *)user_data)->drops, 1); }

static void test_replace_and_clear(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor desc = make_object("\"replace\"", NULL);
    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, desc));
    struct counter a = {0}, b = {0};
    OK(hakuban_object_observe_contract_set_callback(obs, count_cb, &a, count_drop));
    CHECK(WAIT_FLAG(&a.calls, 5000)); /* the registration kick: may be spurious */
    OK(hakuban_object_observe_contract_set_callback(obs, count_cb, &b, count_drop));
    CHECK(atomic_load(&a.drops) == 1); /* the old one is dropped before it returns */
    int a_calls = atomic_load(&a.calls);
    CHECK(WAIT_FLAG(&b.calls, 5000));
    OK(hakuban_object_observe_contract_set_callback(obs, NULL, NULL, NULL));
    CHECK(atomic_load(&b.drops) == 1);
    OK(hakuban_object_observe_contract_set_callback(obs, NULL, NULL, NULL)); /* nothing to clear */
    /* a registration without a drop function */
    struct counter c = {0};
    OK(hakuban_object_observe_contract_set_callback(obs, count_cb, &c, NULL));
    OK(hakuban_object_observe_contract_drop(obs));
    CHECK(atomic_load(&a.calls) == a_calls && atomic_load(&a.drops) == 1);
    CHECK(atomic_load(&b.drops) == 1);
    OK(hakuban_object_descriptor_drop(desc));
    OK(hakuban_exchange_drop(ex));
}

/* ---- callbacks of the other stream kinds ---- */

static bool two_calls(void *arg) { return atomic_load(&((struct counter *)arg)->calls) >= 2; }

static void test_sink_and_expose_callbacks(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor desc = make_object("{\"cb\":\"expose\"}", "\"cbtag\"");
    hakuban_tag_descriptor tag = make_tag("\"cbtag\"");
    hakuban_tag_expose_contract texp = 0;
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_tag_expose_contract_new(&texp, ex, tag, 1));
    OK(hakuban_tag_observe_contract_new(&tobs, ex, tag));
    struct counter ce = {0}, ct = {0}, cs = {0};
    OK(hakuban_tag_expose_contract_set_callback(texp, count_cb, &ce, count_drop));
    OK(hakuban_tag_observe_contract_set_callback(tobs, count_cb, &ct, count_drop));
    CHECK(WAIT_FLAG(&ce.calls, 5000)); /* registration kicks */
    CHECK(WAIT_FLAG(&ct.calls, 5000));

    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, desc));
    CHECK(wait_for(two_calls, &ce, 5000)); /* an assignment */
    hakuban_object_state_sink sink = 0;
    OK(hakuban_tag_expose_contract_try_next(&sink, texp));
    OK(hakuban_object_state_sink_set_callback(sink, count_cb, &cs, count_drop));
    CHECK(WAIT_FLAG(&cs.calls, 5000)); /* registration kick (spurious: still valid) */
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_EMPTY);
    send_text(sink, 1, "x");
    CHECK(wait_for(two_calls, &ct, 5000)); /* a tag event */
    OK(hakuban_object_observe_contract_drop(obs));
    CHECK(wait_for(two_calls, &cs, 5000)); /* registration kick + the end */
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_END);

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_tag_expose_contract_drop(texp));
    OK(hakuban_tag_observe_contract_drop(tobs));
    CHECK(atomic_load(&ce.drops) == 1 && atomic_load(&ct.drops) == 1 && atomic_load(&cs.drops) == 1);
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_object_descriptor_drop(desc));
    OK(hakuban_exchange_drop(ex));
}

/* ---- the log callback ---- */

struct log_sink {
    atomic_int records;
    atomic_int saw_exchange;
    atomic_int drops;
    atomic_int clear_from_inside;
    atomic_int cleared;
};

static void log_cb(int32_t level, const char *message, void *user_data) {
    struct log_sink *l = user_data;
    CHECK(level >= HAKUBAN_LOG_DEBUG && level <= HAKUBAN_LOG_ERROR);
    atomic_fetch_add(&l->records, 1);
    if (strstr(message, "log-test-exchange") != NULL) atomic_store(&l->saw_exchange, 1);
    if (atomic_load(&l->clear_from_inside) && !atomic_load(&l->cleared)) {
        OK(hakuban_log_set_callback(NULL, NULL, NULL)); /* re-entrant, must not deadlock */
        atomic_store(&l->cleared, 1);
    }
}

static void log_drop(void *user_data) { atomic_fetch_add(&((struct log_sink *)user_data)->drops, 1); }

static void test_log_callback(void) {
    struct log_sink l = {0};
    OK(hakuban_log_set_level(HAKUBAN_LOG_DEBUG));
    OK(hakuban_log_set_callback(log_cb, &l, log_drop));
    hakuban_exchange_options o;
    hakuban_exchange_options_init(&o);
    o.name = "log-test-exchange";
    hakuban_exchange ex = 0;
    OK(hakuban_exchange_new(&ex, &o)); /* logs "exchange created" at DEBUG */
    CHECK(WAIT_FLAG(&l.saw_exchange, 5000));
    OK(hakuban_exchange_drop(ex));
    OK(hakuban_log_set_callback(NULL, NULL, NULL));
    CHECK(atomic_load(&l.drops) == 1);
    int records = atomic_load(&l.records);

    /* cleared from inside the callback itself */
    struct log_sink m = {0};
    atomic_store(&m.clear_from_inside, 1);
    OK(hakuban_log_set_callback(log_cb, &m, log_drop));
    OK(hakuban_exchange_new(&ex, &o));
    CHECK(WAIT_FLAG(&m.cleared, 5000));
    CHECK(WAIT_FLAG(&m.drops, 5000));
    OK(hakuban_exchange_drop(ex));
    CHECK(atomic_load(&m.drops) == 1);
    CHECK(atomic_load(&l.records) == records); /* the first one never again */
    OK(hakuban_log_set_level(HAKUBAN_LOG_WARN));
}

static const test_case tests[] = {
    T(test_callback_receives_and_drains),
    T(test_no_callback_after_drop),
    T(test_callback_drops_own_handle),
    T(test_replace_and_clear),
    T(test_sink_and_expose_callbacks),
    T(test_log_callback),
};

RUN_TESTS(tests)
