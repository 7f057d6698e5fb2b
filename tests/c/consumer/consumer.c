/* consumer.c — the smallest complete program against an installed
 * libhakuban: check the ABI, expose and observe one object. */
#include <hakuban.h>
#include <stdio.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int32_t rc_ = (expr);                                                                      \
        if (rc_ != HAKUBAN_OK) {                                                                   \
            fprintf(stderr, "%s: %d %s\n", #expr, (int)rc_, hakuban_last_error_message());         \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(void) {
    if (hakuban_abi_version() != HAKUBAN_ABI_VERSION) {
        fprintf(stderr, "libhakuban ABI %u, built against %d\n", hakuban_abi_version(),
                HAKUBAN_ABI_VERSION);
        return 1;
    }
    hakuban_exchange ex = 0;
    hakuban_object_descriptor d = 0;
    hakuban_object_observe_contract obs = 0;
    hakuban_object_expose_contract exp = 0;
    hakuban_object_state_sink sink = 0;
    hakuban_object_state st = 0, got = 0;
    TRY(hakuban_exchange_new(&ex, NULL));
    TRY(hakuban_object_descriptor_new(&d, "\"consumer\"", NULL, 0));
    TRY(hakuban_object_observe_contract_new(&obs, ex, d));
    TRY(hakuban_object_expose_contract_new(&exp, ex, d, 1));
    TRY(hakuban_object_expose_contract_next(&sink, exp, 5000));
    TRY(hakuban_object_state_new_json(&st, NULL, 0, "{\"hello\":\"installed world\"}"));
    TRY(hakuban_object_state_sink_send(sink, st));
    TRY(hakuban_object_observe_contract_next(&got, obs, 5000));
    const char *json = NULL;
    size_t len = 0;
    TRY(hakuban_object_state_json(&json, &len, got));
    printf("libhakuban %s: %s\n", hakuban_version(), json);
    int ok = strcmp(json, "{\"hello\":\"installed world\"}") == 0;
    hakuban_object_state_drop(got);
    hakuban_object_state_drop(st);
    hakuban_object_state_sink_drop(sink);
    hakuban_object_expose_contract_drop(exp);
    hakuban_object_observe_contract_drop(obs);
    hakuban_object_descriptor_drop(d);
    hakuban_exchange_drop(ex);
    return ok ? 0 : 1;
}
