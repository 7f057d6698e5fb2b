/*
 * test_api.c — what a C user does with libhakuban, function by function:
 * versions, options, descriptors, states, the four contracts, sinks,
 * failover, statuses, snapshots.
 */
#include "testutil.h"

static void test_versions(void) {
    CHECK(strcmp(hakuban_version(), HAKUBAN_VERSION) == 0);
    CHECK(hakuban_abi_version() == HAKUBAN_ABI_VERSION);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", HAKUBAN_VERSION_MAJOR, HAKUBAN_VERSION_MINOR,
             HAKUBAN_VERSION_PATCH);
    CHECK(strcmp(buf, HAKUBAN_VERSION) == 0);
}

static void test_exchange_options(void) {
    hakuban_exchange_options o;
    memset(&o, 0xff, sizeof o);
    hakuban_exchange_options_init(&o);
    CHECK(o.name == NULL);
    CHECK(o.max_descriptor_size == 65536);
    CHECK(o.max_tags == 64);
    CHECK(o.rebalance_threshold == 0.1);
    CHECK(o.rebalance_interval_ms == 100);
    CHECK(o.max_moves_per_interval == 64);
    CHECK(o.handover_timeout_ms == 1000);
    hakuban_exchange_options_init(NULL); /* ignored */

    hakuban_exchange ex = 0;
    o.name = "c-test-exchange";
    OK(hakuban_exchange_new(&ex, &o));
    CHECK(ex != 0);
    char *snap = NULL;
    OK(hakuban_exchange_snapshot(&snap, ex));
    CHECK(strstr(snap, "\"name\":\"c-test-exchange\"") != NULL);
    hakuban_string_free(snap);
    OK(hakuban_exchange_drop(ex));

    hakuban_exchange bad = 0;
    o.rebalance_threshold = 1.5;
    CHECK_ERR(hakuban_exchange_new(&bad, &o), HAKUBAN_ERR_INVALID_CONFIG, "RebalanceThreshold");
    CHECK(bad == 0);
    hakuban_exchange_options_init(&o);
    o.handover_timeout_ms = 0;
    CHECK_ERR(hakuban_exchange_new(&bad, &o), HAKUBAN_ERR_INVALID_CONFIG, "HandoverTimeout");
    hakuban_exchange_options_init(&o);
    /* So negative that, in nanoseconds, it would wrap around to positive. */
    o.handover_timeout_ms = -9223372036855;
    CHECK_ERR(hakuban_exchange_new(&bad, &o), HAKUBAN_ERR_INVALID_CONFIG, "handover_timeout_ms");
    hakuban_exchange_options_init(&o);
    o.rebalance_interval_ms = INT64_MIN;
    CHECK_ERR(hakuban_exchange_new(&bad, &o), HAKUBAN_ERR_INVALID_CONFIG, "rebalance_interval_ms");
    hakuban_exchange_options_init(&o);
    o.max_descriptor_size = (size_t)1 << 40;
    CHECK_ERR(hakuban_exchange_new(&bad, &o), HAKUBAN_ERR_INVALID_CONFIG, "max_descriptor_size");
    CHECK_ERR(hakuban_exchange_new(NULL, NULL), HAKUBAN_ERR_INVALID_ARGUMENT, "out is NULL");
    hakuban_string_free(NULL);
}

static void test_tag_descriptors(void) {
    hakuban_tag_descriptor t = make_tag("{\"room\": 12, \"floor\" : \"1\"}");
    const char *json = NULL;
    OK(hakuban_tag_descriptor_json(&json, t));
    CHECK(strcmp(json, "{\"floor\":\"1\",\"room\":12}") == 0);
    const char *again = NULL;
    OK(hakuban_tag_descriptor_json(&again, t));
    CHECK(again == json); /* owned by the handle, made once */
    OK(hakuban_tag_descriptor_drop(t));

    hakuban_tag_descriptor bad = 0;
    CHECK_ERR(hakuban_tag_descriptor_new(&bad, "{\"room\":"), HAKUBAN_ERR_INVALID_DESCRIPTOR,
              "invalid descriptor");
    CHECK_ERR(hakuban_tag_descriptor_new(&bad, ""), HAKUBAN_ERR_INVALID_DESCRIPTOR, "");
    CHECK_ERR(hakuban_tag_descriptor_new(&bad, NULL), HAKUBAN_ERR_INVALID_ARGUMENT, "json is NULL");
    CHECK(bad == 0);
}

static void test_object_descriptors(void) {
    const char *tags_a[] = {"\"b\"", "\"a\"", "\"b\""};
    const char *tags_b[] = {"\"a\"", " \"b\" "};
    hakuban_object_descriptor a = 0, b = 0;
    OK(hakuban_object_descriptor_new(&a, "{\"y\":2,\"x\":1}", tags_a, 3));
    OK(hakuban_object_descriptor_new(&b, "{ \"x\": 1, \"y\": 2 }", tags_b, 2));

    const char *json = NULL;
    OK(hakuban_object_descriptor_json(&json, a));
    CHECK(strcmp(json, "{\"x\":1,\"y\":2}") == 0);
    size_t n = 0;
    OK(hakuban_object_descriptor_tag_count(&n, a));
    CHECK(n == 2); /* a set: duplicates collapse */
    const char *t0 = NULL, *t1 = NULL;
    OK(hakuban_object_descriptor_tag_json(&t0, a, 0));
    OK(hakuban_object_descriptor_tag_json(&t1, a, 1));
    CHECK(strcmp(t0, "\"a\"") == 0 && strcmp(t1, "\"b\"") == 0); /* sorted */
    CHECK_ERR(hakuban_object_descriptor_tag_json(&t0, a, 2), HAKUBAN_ERR_INVALID_ARGUMENT,
              "out of range");

    /* identity by value: same key for both */
    const char *ka = NULL, *kb = NULL;
    OK(hakuban_object_descriptor_key(&ka, a));
    OK(hakuban_object_descriptor_key(&kb, b));
    CHECK(strcmp(ka, kb) == 0);
    CHECK(strcmp(ka, "{\"json\":{\"x\":1,\"y\":2},\"tags\":[\"a\",\"b\"]}") == 0);

    /* no tags */
    hakuban_object_descriptor c = make_object("[1,2]", NULL);
    OK(hakuban_object_descriptor_tag_count(&n, c));
    CHECK(n == 0);
    OK(hakuban_object_descriptor_drop(a));
    OK(hakuban_object_descriptor_drop(b));
    OK(hakuban_object_descriptor_drop(c));

    /* errors */
    hakuban_object_descriptor bad = 0;
    const char *bad_tags[] = {"\"ok\"", "nope"};
    CHECK_ERR(hakuban_object_descriptor_new(&bad, "1", bad_tags, 2), HAKUBAN_ERR_INVALID_DESCRIPTOR,
              "tags[1]");
    CHECK_ERR(hakuban_object_descriptor_new(&bad, "{", NULL, 0), HAKUBAN_ERR_INVALID_DESCRIPTOR,
              "");
    CHECK_ERR(hakuban_object_descriptor_new(&bad, "1", NULL, 1), HAKUBAN_ERR_INVALID_ARGUMENT,
              "tags is NULL");
    const char *null_tag[] = {NULL};
    CHECK_ERR(hakuban_object_descriptor_new(&bad, "1", null_tag, 1), HAKUBAN_ERR_INVALID_ARGUMENT,
              "tags[0] is NULL");

    char *many[65];
    char bufs[65][8];
    for (int i = 0; i < 65; i++) {
        snprintf(bufs[i], sizeof bufs[i], "%d", i);
        many[i] = bufs[i];
    }
    CHECK_ERR(hakuban_object_descriptor_new(&bad, "1", (const char *const *)many, 65),
              HAKUBAN_ERR_TOO_MANY_TAGS, "tags");

    size_t big_len = 70 * 1024;
    char *big = malloc(big_len + 3);
    big[0] = '"';
    memset(big + 1, 'x', big_len);
    big[big_len + 1] = '"';
    big[big_len + 2] = '\0';
    CHECK_ERR(hakuban_object_descriptor_new(&bad, big, NULL, 0), HAKUBAN_ERR_DESCRIPTOR_TOO_LARGE,
              "");
    free(big);
    CHECK(bad == 0);
}

static void test_exchange_limits(void) {
    /* The exchange applies its own (smaller) limits when a contract is made. */
    hakuban_exchange_options o;
    hakuban_exchange_options_init(&o);
    o.max_tags = 1;
    hakuban_exchange ex = 0;
    OK(hakuban_exchange_new(&ex, &o));
    const char *tags[] = {"1", "2"};
    hakuban_object_descriptor d = 0;
    OK(hakuban_object_descriptor_new(&d, "\"two-tags\"", tags, 2));
    hakuban_object_observe_contract c = 0;
    CHECK_ERR(hakuban_object_observe_contract_new(&c, ex, d), HAKUBAN_ERR_TOO_MANY_TAGS, "limit 1");
    CHECK(c == 0);
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_states(void) {
    int64_t version[] = {1, 5, -7};
    const char *format[] = {"JSON", "zstd"};
    const char data[] = {'a', 0, 'b'};
    hakuban_object_state st = 0;
    OK(hakuban_object_state_new(&st, version, 3, format, 2, data, sizeof data));

    const int64_t *v = NULL;
    size_t vn = 0;
    OK(hakuban_object_state_version(&v, &vn, st));
    CHECK(vn == 3 && v[0] == 1 && v[1] == 5 && v[2] == -7);
    size_t fn = 0;
    OK(hakuban_object_state_format_count(&fn, st));
    CHECK(fn == 2);
    const char *f = NULL;
    OK(hakuban_object_state_format(&f, st, 1));
    CHECK(strcmp(f, "zstd") == 0);
    CHECK_ERR(hakuban_object_state_format(&f, st, 2), HAKUBAN_ERR_INVALID_ARGUMENT, "out of range");

    const void *p = NULL;
    size_t len = 0;
    OK(hakuban_object_state_data(&p, &len, st));
    CHECK(len == 3 && memcmp(p, data, 3) == 0);
    OK(hakuban_object_state_data_len(&len, st));
    CHECK(len == 3);

    /* copy into a caller buffer */
    char buf[8];
    size_t got = 0;
    CHECK_ERR(hakuban_object_state_data_copy(buf, 2, &got, st), HAKUBAN_ERR_BUFFER_TOO_SMALL,
              "3 bytes");
    CHECK(got == 3);
    got = 0;
    CHECK_RC(hakuban_object_state_data_copy(NULL, 0, &got, st), HAKUBAN_ERR_BUFFER_TOO_SMALL);
    CHECK(got == 3); /* asking for the size */
    OK(hakuban_object_state_data_copy(buf, sizeof buf, &got, st));
    CHECK(got == 3 && memcmp(buf, data, 3) == 0);
    CHECK_ERR(hakuban_object_state_data_copy(NULL, 5, &got, st), HAKUBAN_ERR_INVALID_ARGUMENT,
              "out is NULL");

    bool sync = true;
    OK(hakuban_object_state_synchronized(&sync, st));
    CHECK(!sync); /* only a sink makes states synchronized */
    int64_t ms = -1;
    OK(hakuban_object_state_unsynchronized_ms(&ms, st));
    CHECK(ms == 0);

    /* the outermost format is zstd, so the JSON helper refuses */
    const char *js = NULL;
    CHECK_ERR(hakuban_object_state_json(&js, &len, st), HAKUBAN_ERR_WRONG_FORMAT, "JSON");
    OK(hakuban_object_state_drop(st));

    /* an empty state: no version, no format, no data */
    OK(hakuban_object_state_new(&st, NULL, 0, NULL, 0, NULL, 0));
    OK(hakuban_object_state_version(&v, &vn, st));
    CHECK(v == NULL && vn == 0);
    OK(hakuban_object_state_data(&p, &len, st));
    CHECK(p == NULL && len == 0);
    OK(hakuban_object_state_data_copy(NULL, 0, &got, st));
    CHECK(got == 0);
    OK(hakuban_object_state_drop(st));

    /* argument errors */
    CHECK_ERR(hakuban_object_state_new(&st, NULL, 1, NULL, 0, NULL, 0), HAKUBAN_ERR_INVALID_ARGUMENT,
              "version is NULL");
    CHECK_ERR(hakuban_object_state_new(&st, NULL, 0, NULL, 1, NULL, 0), HAKUBAN_ERR_INVALID_ARGUMENT,
              "format is NULL");
    CHECK_ERR(hakuban_object_state_new(&st, NULL, 0, NULL, 0, NULL, 4), HAKUBAN_ERR_INVALID_ARGUMENT,
              "data is NULL");
    const char *null_format[] = {NULL};
    CHECK_ERR(hakuban_object_state_new(&st, NULL, 0, null_format, 1, NULL, 0),
              HAKUBAN_ERR_INVALID_ARGUMENT, "format[0]");
}

static void test_json_states(void) {
    int64_t version = 42;
    hakuban_object_state st = 0;
    OK(hakuban_object_state_new_json(&st, &version, 1, "{\"b\": [1, 2], \"a\": \"x\"}"));
    const char *js = NULL;
    size_t len = 0;
    OK(hakuban_object_state_json(&js, &len, st));
    CHECK(strcmp(js, "{\"a\":\"x\",\"b\":[1,2]}") == 0 && len == strlen(js));
    const char *f = NULL;
    OK(hakuban_object_state_format(&f, st, 0));
    CHECK(strcmp(f, "JSON") == 0);
    CHECK(state_version(st) == 42);
    OK(hakuban_object_state_drop(st));
    CHECK_ERR(hakuban_object_state_new_json(&st, NULL, 0, "{nope"), HAKUBAN_ERR_INVALID_ARGUMENT,
              "not valid JSON");
    CHECK_ERR(hakuban_object_state_new_json(&st, NULL, 0, NULL), HAKUBAN_ERR_INVALID_ARGUMENT,
              "json is NULL");
}

static void test_observe_and_expose(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("{\"sensor\":\"kitchen\"}", "\"sensors\"");

    hakuban_object_expose_contract exposer = 0;
    OK(hakuban_object_expose_contract_new(&exposer, ex, d, 1));
    int32_t status = -1;
    OK(hakuban_object_expose_contract_status(&status, exposer));
    CHECK(status == HAKUBAN_STATUS_NO_OBSERVERS);
    hakuban_object_state_sink sink = 0;
    /* lazy exposing: nobody observes, so no assignment */
    CHECK_RC(hakuban_object_expose_contract_try_next(&sink, exposer), HAKUBAN_EMPTY);
    CHECK(sink == 0);

    hakuban_object_observe_contract observer = 0;
    OK(hakuban_object_observe_contract_new(&observer, ex, d));
    sink = expect_sink(exposer);
    OK(hakuban_object_expose_contract_status(&status, exposer));
    CHECK(status == HAKUBAN_STATUS_ACTIVE);
    OK(hakuban_object_observe_contract_status(&status, observer));
    CHECK(status == HAKUBAN_STATUS_STALE); /* elected, but no state yet */

    hakuban_object_state st = 0;
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, observer), HAKUBAN_EMPTY);
    CHECK_RC(hakuban_object_observe_contract_current(&st, observer), HAKUBAN_EMPTY);
    CHECK_RC(hakuban_object_state_sink_current(&st, sink), HAKUBAN_EMPTY);

    send_text(sink, 10, "21.5");
    OK(hakuban_object_observe_contract_try_next(&st, observer));
    CHECK(state_version(st) == 10);
    bool sync = false;
    OK(hakuban_object_state_synchronized(&sync, st));
    CHECK(sync);
    const void *p = NULL;
    size_t len = 0;
    OK(hakuban_object_state_data(&p, &len, st));
    CHECK(len == 4 && memcmp(p, "21.5", 4) == 0);
    OK(hakuban_object_state_drop(st));
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, observer), HAKUBAN_EMPTY);
    OK(hakuban_object_observe_contract_status(&status, observer));
    CHECK(status == HAKUBAN_STATUS_ACTIVE);

    /* latest wins: two sends, one state */
    send_text(sink, 11, "a");
    send_text(sink, 12, "b");
    OK(hakuban_object_observe_contract_try_next(&st, observer));
    CHECK(state_version(st) == 12);
    OK(hakuban_object_state_drop(st));
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, observer), HAKUBAN_EMPTY);

    /* stale version refused, same version is a no-op */
    hakuban_object_state old = make_state(3, "old");
    CHECK_ERR(hakuban_object_state_sink_send(sink, old), HAKUBAN_ERR_STALE_VERSION, "stale");
    OK(hakuban_object_state_drop(old));
    send_text(sink, 12, "b");
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, observer), HAKUBAN_EMPTY);

    /* a state without a version gets one greater than the current */
    hakuban_object_state unversioned = 0;
    OK(hakuban_object_state_new(&unversioned, NULL, 0, NULL, 0, "x", 1));
    OK(hakuban_object_state_sink_send(sink, unversioned));
    OK(hakuban_object_state_sink_send(sink, unversioned)); /* may be sent again */
    OK(hakuban_object_state_drop(unversioned));
    OK(hakuban_object_observe_contract_next(&st, observer, 1000));
    CHECK(state_version(st) > 12);
    OK(hakuban_object_state_drop(st));

    /* desynchronize: observers see the same state, not synchronized */
    OK(hakuban_object_state_sink_desynchronize(sink));
    OK(hakuban_object_observe_contract_try_next(&st, observer));
    OK(hakuban_object_state_synchronized(&sync, st));
    CHECK(!sync);
    int64_t ms = -1;
    OK(hakuban_object_state_unsynchronized_ms(&ms, st));
    CHECK(ms >= 0);
    OK(hakuban_object_state_drop(st));
    OK(hakuban_object_observe_contract_status(&status, observer));
    CHECK(status == HAKUBAN_STATUS_STALE);

    OK(hakuban_object_observe_contract_current(&st, observer));
    OK(hakuban_object_state_drop(st));
    OK(hakuban_object_state_sink_current(&st, sink));
    OK(hakuban_object_state_drop(st));

    uint64_t token = 0;
    OK(hakuban_object_state_sink_token(&token, sink));
    CHECK(token > 0);
    hakuban_object_descriptor sd = 0;
    OK(hakuban_object_state_sink_descriptor(&sd, sink));
    const char *k1 = NULL, *k2 = NULL;
    OK(hakuban_object_descriptor_key(&k1, sd));
    OK(hakuban_object_descriptor_key(&k2, d));
    CHECK(strcmp(k1, k2) == 0);
    OK(hakuban_object_descriptor_drop(sd));
    OK(hakuban_object_observe_contract_descriptor(&sd, observer));
    OK(hakuban_object_descriptor_key(&k1, sd));
    CHECK(strcmp(k1, k2) == 0);
    OK(hakuban_object_descriptor_drop(sd));
    OK(hakuban_object_expose_contract_descriptor(&sd, exposer));
    OK(hakuban_object_descriptor_key(&k1, sd));
    CHECK(strcmp(k1, k2) == 0);
    OK(hakuban_object_descriptor_drop(sd));

    /* nobody observes any more: the assignment ends, writes are refused */
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_EMPTY);
    OK(hakuban_object_observe_contract_drop(observer));
    CHECK_RC(hakuban_object_state_sink_next(sink, 5000), HAKUBAN_END);
    CHECK_RC(hakuban_object_state_sink_try_next(sink), HAKUBAN_END);
    hakuban_object_state late = make_state(100, "late");
    CHECK_ERR(hakuban_object_state_sink_send(sink, late), HAKUBAN_ERR_REVOKED, "revoked");
    CHECK_ERR(hakuban_object_state_sink_desynchronize(sink), HAKUBAN_ERR_REVOKED, "revoked");
    OK(hakuban_object_state_drop(late));
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_status(&status, exposer));
    CHECK(status == HAKUBAN_STATUS_NO_OBSERVERS);

    OK(hakuban_object_expose_contract_drop(exposer));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_failover_and_capacity(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"pump\"", NULL);
    hakuban_object_expose_contract first = 0, second = 0, zero = 0;
    CHECK_ERR(hakuban_object_expose_contract_new(&zero, ex, d, 0), HAKUBAN_ERR_INVALID_CAPACITY,
              "capacity");
    CHECK_ERR(hakuban_object_expose_contract_new(&zero, ex, d, 1u << 31),
              HAKUBAN_ERR_INVALID_CAPACITY, "capacity");
    CHECK(zero == 0);
    OK(hakuban_object_expose_contract_new(&first, ex, d, 1));
    OK(hakuban_object_expose_contract_new(&second, ex, d, 1));
    hakuban_object_observe_contract observer = 0;
    OK(hakuban_object_observe_contract_new(&observer, ex, d));

    /* ties go to the longest-standing candidate */
    hakuban_object_state_sink s1 = expect_sink(first), s2 = 0;
    CHECK_RC(hakuban_object_expose_contract_try_next(&s2, second), HAKUBAN_EMPTY);
    int32_t status = -1;
    OK(hakuban_object_expose_contract_status(&status, second));
    CHECK(status == HAKUBAN_STATUS_STANDBY);
    send_text(s1, 1, "from first");

    /* failover: the first goes away, the second takes over and can read
     * the last state to continue from it */
    OK(hakuban_object_expose_contract_close(first));
    CHECK_RC(hakuban_object_state_sink_try_next(s1), HAKUBAN_END);
    s2 = expect_sink(second);
    hakuban_object_state st = 0;
    OK(hakuban_object_state_sink_current(&st, s2));
    CHECK(state_version(st) == 1);
    OK(hakuban_object_state_drop(st));
    uint64_t t1 = 0, t2 = 0;
    OK(hakuban_object_state_sink_token(&t1, s1));
    OK(hakuban_object_state_sink_token(&t2, s2));
    CHECK(t2 > t1);
    /* fencing: the old sink can never overwrite the new exposer */
    hakuban_object_state late = make_state(50, "late");
    CHECK_RC(hakuban_object_state_sink_send(s1, late), HAKUBAN_ERR_REVOKED);
    OK(hakuban_object_state_drop(late));
    send_text(s2, 2, "from second");
    OK(hakuban_object_observe_contract_next(&st, observer, 1000));
    CHECK(state_version(st) == 2);
    OK(hakuban_object_state_drop(st));

    OK(hakuban_object_state_sink_drop(s1));
    OK(hakuban_object_state_sink_drop(s2));
    OK(hakuban_object_expose_contract_drop(first));
    OK(hakuban_object_expose_contract_drop(second));
    OK(hakuban_object_observe_contract_drop(observer));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_tag_observe(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_tag_descriptor tag = make_tag("\"sensors\"");
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_tag_observe_contract_new(&tobs, ex, tag));
    int32_t status = -1;
    OK(hakuban_tag_observe_contract_status(&status, tobs));
    CHECK(status == HAKUBAN_STATUS_IDLE);
    hakuban_tag_descriptor back = 0;
    OK(hakuban_tag_observe_contract_tag(&back, tobs));
    const char *tj = NULL;
    OK(hakuban_tag_descriptor_json(&tj, back));
    CHECK(strcmp(tj, "\"sensors\"") == 0);
    OK(hakuban_tag_descriptor_drop(back));

    hakuban_object_event ev;
    memset(&ev, 0xff, sizeof ev);
    CHECK_RC(hakuban_tag_observe_contract_try_next(&ev, tobs), HAKUBAN_EMPTY);
    CHECK(ev.descriptor == 0 && ev.state == 0 && !ev.gone);

    hakuban_object_descriptor d = make_object("{\"sensor\":1}", "\"sensors\"");
    hakuban_object_expose_contract exposer = 0;
    OK(hakuban_object_expose_contract_new(&exposer, ex, d, 1));
    /* exposed + tag observed = live and observed: an assignment comes */
    hakuban_object_state_sink sink = expect_sink(exposer);
    OK(hakuban_tag_observe_contract_status(&status, tobs));
    CHECK(status == HAKUBAN_STATUS_ACTIVE);
    send_text(sink, 7, "seven");

    OK(hakuban_tag_observe_contract_next(&ev, tobs, 1000));
    CHECK(!ev.gone && ev.state != 0 && ev.descriptor != 0);
    CHECK(state_version(ev.state) == 7);
    const char *json = NULL;
    OK(hakuban_object_descriptor_json(&json, ev.descriptor));
    CHECK(strcmp(json, "{\"sensor\":1}") == 0);
    OK(hakuban_object_descriptor_drop(ev.descriptor));
    OK(hakuban_object_state_drop(ev.state));

    /* the exposer leaves: the object is no longer live, observers see it gone */
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_expose_contract_drop(exposer));
    OK(hakuban_tag_observe_contract_next(&ev, tobs, 1000));
    CHECK(ev.gone && ev.state == 0 && ev.descriptor != 0);
    OK(hakuban_object_descriptor_drop(ev.descriptor));
    CHECK_RC(hakuban_tag_observe_contract_try_next(&ev, tobs), HAKUBAN_EMPTY);

    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_exchange_drop(ex));
}

static void test_tag_expose(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_tag_descriptor tag = make_tag("\"rooms\"");
    hakuban_tag_expose_contract texp = 0;
    OK(hakuban_tag_expose_contract_new(&texp, ex, tag, 2));
    int32_t status = -1;
    OK(hakuban_tag_expose_contract_status(&status, texp));
    CHECK(status == HAKUBAN_STATUS_NO_OBSERVERS);
    hakuban_tag_descriptor back = 0;
    OK(hakuban_tag_expose_contract_tag(&back, texp));
    OK(hakuban_tag_descriptor_drop(back));

    hakuban_object_descriptor r1 = make_object("{\"room\":1}", "\"rooms\"");
    hakuban_object_descriptor r2 = make_object("{\"room\":2}", "\"rooms\"");
    hakuban_object_observe_contract o1 = 0, o2 = 0;
    OK(hakuban_object_observe_contract_new(&o1, ex, r1));
    OK(hakuban_object_observe_contract_new(&o2, ex, r2));

    /* one sink per object; route each by its descriptor */
    for (int i = 0; i < 2; i++) {
        hakuban_object_state_sink s = 0;
        OK(hakuban_tag_expose_contract_next(&s, texp, 5000));
        hakuban_object_descriptor sd = 0;
        OK(hakuban_object_state_sink_descriptor(&sd, s));
        const char *json = NULL;
        OK(hakuban_object_descriptor_json(&json, sd));
        send_text(s, 1, strcmp(json, "{\"room\":1}") == 0 ? "one" : "two");
        OK(hakuban_object_descriptor_drop(sd));
        OK(hakuban_object_state_sink_drop(s));
    }
    OK(hakuban_tag_expose_contract_status(&status, texp));
    CHECK(status == HAKUBAN_STATUS_ACTIVE);

    hakuban_object_state st = 0;
    char buf[8] = {0};
    size_t len = 0;
    OK(hakuban_object_observe_contract_next(&st, o1, 1000));
    OK(hakuban_object_state_data_copy(buf, sizeof buf, &len, st));
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    OK(hakuban_object_state_drop(st));
    OK(hakuban_object_observe_contract_next(&st, o2, 1000));
    OK(hakuban_object_state_data_copy(buf, sizeof buf, &len, st));
    CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
    OK(hakuban_object_state_drop(st));

    OK(hakuban_tag_expose_contract_drop(texp));
    OK(hakuban_object_observe_contract_drop(o1));
    OK(hakuban_object_observe_contract_drop(o2));
    OK(hakuban_object_descriptor_drop(r1));
    OK(hakuban_object_descriptor_drop(r2));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_exchange_drop(ex));
}

static void test_close_and_exchange_drop(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"closing\"", NULL);
    hakuban_object_observe_contract observer = 0;
    OK(hakuban_object_observe_contract_new(&observer, ex, d));
    OK(hakuban_object_observe_contract_close(observer));
    OK(hakuban_object_observe_contract_close(observer)); /* idempotent */
    hakuban_object_state st = 1;
    CHECK_RC(hakuban_object_observe_contract_try_next(&st, observer), HAKUBAN_END);
    CHECK(st == 0);
    CHECK_RC(hakuban_object_observe_contract_next(&st, observer, -1), HAKUBAN_END);
    int32_t status = -1;
    OK(hakuban_object_observe_contract_status(&status, observer));
    CHECK(status == HAKUBAN_STATUS_CLOSED);
    OK(hakuban_object_observe_contract_drop(observer));

    /* dropping the exchange ends every contract made on it; their handles
     * stay valid until dropped */
    hakuban_object_expose_contract exposer = 0;
    hakuban_tag_descriptor tag = make_tag("\"t\"");
    hakuban_tag_observe_contract tobs = 0;
    OK(hakuban_object_expose_contract_new(&exposer, ex, d, 1));
    OK(hakuban_object_observe_contract_new(&observer, ex, d));
    OK(hakuban_tag_observe_contract_new(&tobs, ex, tag));
    hakuban_object_state_sink sink = expect_sink(exposer);
    OK(hakuban_exchange_drop(ex));
    CHECK_RC(hakuban_object_observe_contract_next(&st, observer, -1), HAKUBAN_END);
    hakuban_object_state_sink s2 = 0;
    CHECK_RC(hakuban_object_expose_contract_next(&s2, exposer, -1), HAKUBAN_END);
    hakuban_object_event ev;
    CHECK_RC(hakuban_tag_observe_contract_next(&ev, tobs, -1), HAKUBAN_END);
    CHECK_RC(hakuban_object_state_sink_next(sink, -1), HAKUBAN_END);
    hakuban_object_observe_contract again = 0;
    CHECK_ERR(hakuban_object_observe_contract_new(&again, ex, d), HAKUBAN_ERR_INVALID_HANDLE,
              "stale");
    OK(hakuban_object_state_sink_drop(sink));
    OK(hakuban_object_observe_contract_drop(observer));
    OK(hakuban_object_expose_contract_drop(exposer));
    OK(hakuban_tag_observe_contract_drop(tobs));
    OK(hakuban_tag_descriptor_drop(tag));
    OK(hakuban_object_descriptor_drop(d));
}

static void test_next_timeout(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("\"quiet\"", NULL);
    hakuban_object_observe_contract observer = 0;
    OK(hakuban_object_observe_contract_new(&observer, ex, d));
    hakuban_object_state st = 1;
    CHECK_RC(hakuban_object_observe_contract_next(&st, observer, 0), HAKUBAN_TIMEOUT);
    CHECK(st == 0);
    int64_t t0 = now_ms();
    CHECK_RC(hakuban_object_observe_contract_next(&st, observer, 50), HAKUBAN_TIMEOUT);
    int64_t waited = now_ms() - t0;
    CHECK(waited >= 45 && waited < 5000);
    OK(hakuban_object_observe_contract_drop(observer));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_snapshot(void) {
    hakuban_exchange ex = make_exchange();
    hakuban_object_descriptor d = make_object("{\"snap\":true}", "\"tagged\"");
    hakuban_object_observe_contract observer = 0;
    OK(hakuban_object_observe_contract_new(&observer, ex, d));
    char *snap = NULL;
    OK(hakuban_exchange_snapshot(&snap, ex));
    CHECK(strstr(snap, "\"object_observe\"") != NULL);
    CHECK(strstr(snap, "waiting_for_exposer") != NULL);
    CHECK(strstr(snap, "{\"snap\":true}") != NULL);
    hakuban_string_free(snap);
    CHECK_ERR(hakuban_exchange_snapshot(NULL, ex), HAKUBAN_ERR_INVALID_ARGUMENT, "out");
    OK(hakuban_object_observe_contract_drop(observer));
    OK(hakuban_object_descriptor_drop(d));
    OK(hakuban_exchange_drop(ex));
}

static void test_log_level(void) {
    CHECK_ERR(hakuban_log_set_level(7), HAKUBAN_ERR_INVALID_ARGUMENT, "level 7");
    CHECK_ERR(hakuban_log_set_level(-1), HAKUBAN_ERR_INVALID_ARGUMENT, "level -1");
    OK(hakuban_log_set_level(HAKUBAN_LOG_OFF));
    OK(hakuban_log_set_level(HAKUBAN_LOG_WARN));
}

static void test_last_error_is_per_thread(void) {
    hakuban_object_state st = 0;
    CHECK_ERR(hakuban_object_state_new(&st, NULL, 1, NULL, 0, NULL, 0), HAKUBAN_ERR_INVALID_ARGUMENT,
              "version is NULL");
    /* a success does not clear it */
    OK(hakuban_log_set_level(HAKUBAN_LOG_WARN));
    CHECK(strstr(hakuban_last_error_message(), "version is NULL") != NULL);
}

static const test_case tests[] = {
    T(test_versions),
    T(test_exchange_options),
    T(test_tag_descriptors),
    T(test_object_descriptors),
    T(test_exchange_limits),
    T(test_states),
    T(test_json_states),
    T(test_observe_and_expose),
    T(test_failover_and_capacity),
    T(test_tag_observe),
    T(test_tag_expose),
    T(test_close_and_exchange_drop),
    T(test_next_timeout),
    T(test_snapshot),
    T(test_log_level),
    T(test_last_error_is_per_thread),
};

RUN_TESTS(tests)
