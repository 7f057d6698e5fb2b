/*
 * test_wait.c — the three ways to wait: a blocked next is woken by close and
 * drop from another thread (every stream kind), and the pollable fd is
 * readable exactly while something is pending (poll() tests, including a
 * producer/consumer race that would hang on a lost wake-up).
 */
#include <poll.h>
#include <pthread.h>

#include "testutil.h"

/* ---- close and drop wake a blocked next ---- */

enum stream_kind { OBJECT_OBSERVE, OBJECT_EXPOSE, TAG_OBSERVE, TAG_EXPOSE, SINK };
static const char *kind_names[] = {"object observe", "object expose", "tag observe", "tag expose",
                                   "sink"};

struct blocked {
    enum stream_kind kind;
    uint64_t handle;
    atomic_int started;
    atomic_int returned;
    int32_t rc;
};

static void *block_in_next(void *arg) {
    struct blocked *b = arg;
    atomic_store(&b->started, 1);
    hakuban_object_state st = 0;
    hakuban_object_state_sink sk = 0;
    hakuban_object_event ev;
    switch (b->kind) {
    case OBJECT_OBSERVE: b->rc = hakuban_object_observe_contract_next(&st, b->handle, -1); break;
    case OBJECT_EXPOSE: b->rc = hakuban_object_expose_contract_next(&sk, b->handle, -1); break;
    case TAG_OBSERVE: b->rc = hakuban_tag_observe_contract_next(&ev, b->handle, -1); break;
    case TAG_EXPOSE: b->rc = hakuban_tag_expose_contract_next(&sk, b->handle, -1); break;
    case SINK: b->rc = hakuban_object_state_sink_next(b->handle, -1); break;
    }
    atomic_store(&b->returned, 1);
    return NULL;
}

/* Streams of every kind with nothing pending; the sink's assignment is
 * valid (keep observes its object). */
struct streams {
    hakuban_exchange ex;
    hakuban_object_descriptor d, quiet;
    hakuban_tag_descriptor tag;
    hakuban_object_observe_contract oobs, keep;
    hakuban_object_expose_contract oexp;
    hakuban_tag_observe_contract tobs;
    hakuban_tag_expose_contract texp;
    hakuban_object_state_sink sink;
};

static void make_streams(struct streams *s) {
    s->ex = make_exchange();
    s->d = make_object("\"waited\"", NULL);
    s->quiet = make_object("\"quiet\"", NULL);
    s->tag = make_tag("\"nothing-here\"");
    OK(hakuban_object_observe_contract_new(&s->oobs, s->ex, s->quiet)); /* no exposer */
    OK(hakuban_object_observe_contract_new(&s->keep, s->ex, s->d));
    OK(hakuban_object_expose_contract_new(&s->oexp, s->ex, s->d, 1));
    s->sink = expect_sink(s->oexp); /* taken: nothing more pending */
    OK(hakuban_tag_observe_contract_new(&s->tobs, s->ex, s->tag));
    OK(hakuban_tag_expose_contract_new(&s->texp, s->ex, s->tag, 1));
}

static uint64_t handle_of(struct streams *s, enum stream_kind k) {
    switch (k) {
    case OBJECT_OBSERVE: return s->oobs;
    case OBJECT_EXPOSE: return s->oexp;
    case TAG_OBSERVE: return s->tobs;
    case TAG_EXPOSE: return s->texp;
    case SINK: return s->sink;
    }
    return 0;
}

static bool returned(void *arg) { return atomic_load(&((struct blocked *)arg)->returned) != 0; }

/* Starts a thread blocked in next on kind, checks it stays blocked, runs
 * wake, and checks the thread returns HAKUBAN_END at once. */
static void check_wakes(struct streams *s, enum stream_kind kind, void (*wake)(struct streams *,
                                                                              enum stream_kind)) {
    struct blocked b = {.kind = kind, .handle = handle_of(s, kind)};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, block_in_next, &b) == 0);
    CHECK(WAIT_FLAG(&b.started, 5000));
    /* it must really be blocked: nothing is pending */
    if (wait_for(returned, &b, 50)) FAIL("%s: next returned %d without cause", kind_names[kind], b.rc);
    int64_t t0 = now_ms();
    wake(s, kind);
    if (!wait_for(returned, &b, 5000)) FAIL("%s: next still blocked after wake", kind_names[kind]);
    CHECK(pthread_join(th, NULL) == 0);
    if (b.rc != HAKUBAN_END)
        FAIL("%s: blocked next returned %d, want HAKUBAN_END", kind_names[kind], b.rc);
    fprintf(stderr, "  %s: woken in %" PRId64 " ms\n", kind_names[kind], now_ms() - t0);
}

static void close_it(struct streams *s, enum stream_kind k) {
    switch (k) {
    case OBJECT_OBSERVE: OK(hakuban_object_observe_contract_close(s->oobs)); break;
    case OBJECT_EXPOSE: OK(hakuban_object_expose_contract_close(s->oexp)); break;
    case TAG_OBSERVE: OK(hakuban_tag_observe_contract_close(s->tobs)); break;
    case TAG_EXPOSE: OK(hakuban_tag_expose_contract_close(s->texp)); break;
    case SINK: OK(hakuban_object_expose_contract_close(s->oexp)); break; /* revokes the sink */
    }
}

static void drop_it(struct streams *s, enum stream_kind k) {
    switch (k) {
    case OBJECT_OBSERVE: OK(hakuban_object_observe_contract_drop(s->oobs)); s->oobs = 0; break;
    case OBJECT_EXPOSE: OK(hakuban_object_expose_contract_drop(s->oexp)); s->oexp = 0; break;
    case TAG_OBSERVE: OK(hakuban_tag_observe_contract_drop(s->tobs)); s->tobs = 0; break;
    case TAG_EXPOSE: OK(hakuban_tag_expose_contract_drop(s->texp)); s->texp = 0; break;
    case SINK: OK(hakuban_object_state_sink_drop(s->sink)); s->sink = 0; break;
    }
}

static void drop_exchange(struct streams *s, enum stream_kind k) {
    (void)k;
    OK(hakuban_exchange_drop(s->ex));
    s->ex = 0;
}

static void free_streams(struct streams *s) {
    OK(hakuban_object_state_sink_drop(s->sink));
    OK(hakuban_object_observe_contract_drop(s->oobs));
    OK(hakuban_object_observe_contract_drop(s->keep));
    OK(hakuban_object_expose_contract_drop(s->oexp));
    OK(hakuban_tag_observe_contract_drop(s->tobs));
    OK(hakuban_tag_expose_contract_drop(s->texp));
    OK(hakuban_tag_descriptor_drop(s->tag));
    OK(hakuban_object_descriptor_drop(s->d));
    OK(hakuban_object_descriptor_drop(s->quiet));
    OK(hakuban_exchange_drop(s->ex));
}

static void test_close_wakes_blocked_next(void) {
    for (int k = OBJECT_OBSERVE; k <= SINK; k++) {
        struct streams s = {0};
        make_streams(&s);
        check_wakes(&s, k, close_it);
        free_streams(&s);
    }
}

static void test_drop_wakes_blocked_next(void) {
    for (int k = OBJECT_OBSERVE; k <= SINK; k++) {
        struct streams s = {0};
        make_streams(&s);
        check_wakes(&s, k, drop_it);
        free_streams(&s);
    }
}

static void test_exchange_drop_wakes_blocked_next(void) {
    for (int k = OBJECT_OBSERVE; k <= SINK; k++) {
        struct streams s = {0};
        make_streams(&s);
        check_wakes(&s, k, drop_exchange);
        free_streams(&s);
    }
}

/* ---- the fd is readable iff something is pending ---- */

static void test_fd_object_observe(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"fd\"", NULL);
    hakuban_object_observe_contract obs = 0;
    hakuban_object_expose_contract exp = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, d));
    int fd = -1, again = -1;
    OK(hakuban_object_observe_contract_fd(&fd, obs));
    OK(hakuban_object_observe_contract_fd(&again, obs));
    CHECK(fd >= 0 && again == fd);
    CHECK(!readable(fd, 0)); /* nothing pending */

    OK(hakuban_object_expose_contract_new(&exp, ex, d, 1));
    hakuban_object_state_sink sink = expect_sink(exp);
    CHECK(!readable(fd, 0)); /* an exposer, but no state yet */
    send_text(sink, 1, "one");
    CHECK(readable(fd, 5000));
    CHECK(readable(fd, 0)); /* level-triggered: stays readable */

    hakuban_object_state st = 0;
    OK(hakuban_object_observe_contract_try_next(&st, obs));
    OK(hakuban_object_state_drop(st));
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, obs), HAKUBAN_EMPTY);
    CHECK(!readable(fd, 0)); /* an empty try cleared it */

    /* a blocking next that times out clears it too */
    send_text(sink, 2, "two");
    CHECK(readable(fd, 5000));
    OK(hakuban_object_observe_contract_next(&st, obs, 1000));
    OK(hakuban_object_state_drop(st));
    CHECK_RC(hakuban_object_observe_contract_next(&st, obs, 1), HAKUBAN_TIMEOUT);
    CHECK(!readable(fd, 0));

    /* a change of only the synchronized flag is an event too */
    OK(hakuban_object_state_sink_desynchronize(sink));
    CHECK(readable(fd, 5000));
    OK(hakuban_object_observe_contract_try_next(&st, obs));
    OK(hakuban_object_state_drop(st));
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, obs), HAKUBAN_EMPTY);
    CHECK(!readable(fd, 0));

    /* a state pending before the fd was asked for makes it readable at once */
    hakuban_object_observe_contract late = 0;
    OK(hakuban_object_observe_contract_new(&late, ex, d));
    int late_fd = -1;
    OK(hakuban_object_observe_contract_fd(&late_fd, late));
    CHECK(readable(late_fd, 0));
    OK(hakuban_object_observe_contract_drop(late));

    /* close: readable for good, tries say END */
    OK(hakuban_object_observe_contract_close(obs));
    CHECK(readable(fd, 5000));
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, obs), HAKUBAN_END);
    CHECK(readable(fd, 0));

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_fd_expose_and_sink(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("{\"fd\":\"expose\"}", "\"fdtag\"");
    hakuban_tag_descriptor tag = make_tag("\"fdtag\"");
    hakuban_object_expose_contract oexp = 0;
    hakuban_tag_expose_contract texp = 0;
    OK(hakuban_tag_expose_contract_new(&texp, ex, tag, 1));
    int tfd = -1;
    OK(hakuban_tag_expose_contract_fd(&tfd, texp));
    CHECK(!readable(tfd, 0));

    hakuban_object_observe_contract obs = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, d));
    CHECK(readable(tfd, 5000)); /* the tag exposer was elected */
    hakuban_object_state_sink sink = 0, none = 0;
    OK(hakuban_tag_expose_contract_try_next(&sink, texp));
    CHECK_RC(hakuban_tag_expose_contract_try_next(&none, texp), HAKUBAN_EMPTY);
    CHECK(!readable(tfd, 0));

    int sfd = -1;
    OK(hakuban_object_state_sink_fd(&sfd, sink));
    CHECK(!readable(sfd, 0)); /* valid assignment */
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_EMPTY);
    CHECK(!readable(sfd, 0));

    /* an object exposer joins; the observer leaves: the assignment ends */
    OK(hakuban_object_expose_contract_new(&oexp, ex, d, 1));
    int ofd = -1;
    OK(hakuban_object_expose_contract_fd(&ofd, oexp));
    CHECK(!readable(ofd, 0)); /* standby */
    OK(hakuban_object_observe_contract_drop(obs));
    CHECK(readable(sfd, 5000));
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_END);
    CHECK(readable(sfd, 0)); /* ended for good */
    OK(hakuban_object_state_sink_drop(sink));

    /* observed again: the tag exposer is elected again (older), and the
     * object exposer's fd stays quiet */
    OK(hakuban_object_observe_contract_new(&obs, ex, d));
    CHECK(readable(tfd, 5000));
    CHECK(!readable(ofd, 0));
    OK(hakuban_tag_expose_contract_try_next(&sink, texp));
    /* the tag exposer leaves: failover to the object exposer */
    OK(hakuban_tag_expose_contract_close(texp));
    CHECK(readable(ofd, 5000));
    hakuban_object_state_sink sink2 = 0;
    OK(hakuban_object_expose_contract_try_next(&sink2, oexp));
    CHECK_RC(hakuban_object_expose_contract_try_next(&none, oexp), HAKUBAN_EMPTY);
    CHECK(!readable(ofd, 0));

    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_state_sink_drop(sink2));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_expose_contract_drop(oexp));
    OK(hakuban_tag_expose_contract_drop(texp));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_fd_tag_observe_many_pending(void) {
    enum { N = 20 };
    hakuban_exchange ex = make_exchange();
    hakuban_tag_descriptor tag = make_tag("\"many\"");
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_tag_observe_contract_new(&tobs, ex, tag));
    int fd = -1;
    OK(hakuban_tag_observe_contract_fd(&fd, tobs));
    hakuban_object_descriptor ds[N];
    hakuban_object_expose_contract exps[N];
    hakuban_object_state_sink sinks[N];
    for (int i = 0; i < N; i++) {
        char json[32];
        snprintf(json, sizeof json, "{\"n\":%d}", i);
        ds[i] = make_object(json, "\"many\"");
        OK(hakuban_object_expose_contract_new(&exps[i], ex, ds[i], 1));
        sinks[i] = expect_sink(exps[i]);
        CHECK(!readable(fd, 0)); /* live, but no state yet */
    }
    for (int i = 0; i < N; i++) send_text(sinks[i], 1, "x");
    CHECK(readable(fd, 5000));
    /* readable while any event is pending: take them one by one */
    for (int i = 0; i < N; i++) {
        CHECK(readable(fd, 0));
        hakuban_object_event ev;
        OK(hakuban_tag_observe_contract_try_next(&ev, tobs));
        CHECK(!ev.gone);
        OK(hakuban_object_state_drop(ev.state));
        OK(hakuban_object_descriptor_drop(ev.descriptor));
    }
    hakuban_object_event ev;
    CHECK_RC(hakuban_tag_observe_contract_try_next(&ev, tobs), HAKUBAN_EMPTY);
    CHECK(!readable(fd, 0));
    for (int i = 0; i < N; i++) {
        OK(hakuban_object_state_sink_drop(sinks[i]));
        OK(hakuban_object_expose_contract_drop(exps[i]));
        OK(hakuban_object_descriptor_drop(ds[i]));
    }
    /* every object went away: N gone events */
    for (int i = 0; i < N; i++) {
        CHECK(readable(fd, 5000));
        OK(hakuban_tag_observe_contract_try_next(&ev, tobs));
        CHECK(ev.gone && ev.state == 0);
        OK(hakuban_object_descriptor_drop(ev.descriptor));
    }
    CHECK_RC(hakuban_tag_observe_contract_try_next(&ev, tobs), HAKUBAN_EMPTY);
    CHECK(!readable(fd, 0));
    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_exchange_drop(ex));
}

/* A producer sends as fast as it can while a consumer only ever sleeps in
 * poll(): a lost wake-up hangs the consumer (and fails after 5 s). */
struct race {
    hakuban_object_state_sink sink;
    int64_t last;
};

static void *produce(void *arg) {
    struct race *r = arg;
    hakuban_object_state st = 0;
    const char data[64] = {0};
    for (int64_t v = 1; v <= r->last; v++) {
        OK(hakuban_object_state_new(&st, &v, 1, NULL, 0, data, sizeof data));
        OK(hakuban_object_state_sink_send(r->sink, st));
        OK(hakuban_object_state_drop(st));
    }
    return NULL;
}

static void test_fd_race_no_lost_wakeup(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"race\"", NULL);
    hakuban_object_observe_contract obs = 0;
    hakuban_object_expose_contract exp = 0;
    OK(hakuban_object_observe_contract_new(&obs, ex, d));
    OK(hakuban_object_expose_contract_new(&exp, ex, d, 1));
    int fd = -1;
    OK(hakuban_object_observe_contract_fd(&fd, obs));
    struct race r = {.sink = expect_sink(exp), .last = 100000};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, produce, &r) == 0);
    int64_t seen = 0, wakeups = 0, states = 0, spurious = 0;
    while (seen < r.last) {
        if (!readable(fd, 5000)) FAIL("lost wake-up: fd not readable, last version seen %" PRId64, seen);
        wakeups++;
        int got = 0;
        for (;;) {
            hakuban_object_state st = 0;
            int32_t rc = hakuban_object_observe_contract_try_next(&st, obs);
            if (rc == HAKUBAN_EMPTY) break;
            OK(rc);
            int64_t v = state_version(st);
            CHECK(v > seen); /* never backwards, never twice */
            seen = v;
            states++;
            got++;
            OK(hakuban_object_state_drop(st));
        }
        if (got == 0) spurious++;
    }
    CHECK(pthread_join(th, NULL) == 0);
    hakuban_object_state st = 0;
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, obs), HAKUBAN_EMPTY);
    CHECK(!readable(fd, 0));
    fprintf(stderr, "  %" PRId64 " wake-ups (%" PRId64 " spurious), %" PRId64
                    " states seen of %" PRId64 " sent (latest wins)\n",
            wakeups, spurious, states, r.last);
    OK(hakuban_object_state_sink_drop(r.sink));
    OK(hakuban_object_expose_contract_drop(exp));
    OK(hakuban_object_observe_contract_drop(obs));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static const test_case tests[] = {
    T(test_close_wakes_blocked_next),
    T(test_drop_wakes_blocked_next),
    T(test_exchange_drop_wakes_blocked_next),
    T(test_fd_object_observe),
    T(test_fd_expose_and_sink),
    T(test_fd_tag_observe_many_pending),
    T(test_fd_race_no_lost_wakeup),
};

RUN_TESTS(tests)
