/*
 * shim.h — private to libhakuban: what the Go exports need from C and cannot
 * do themselves. Included by the cgo preamble of every file in capi/, after
 * the public header, so that cgo checks every //export against hakuban.h.
 */
#ifndef HAKUBAN_SHIM_H
#define HAKUBAN_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hakuban.h"

/*
 * const-qualified spellings for Go parameter types. cgo writes an export's
 * prototype from the Go parameter types; `*C.hakuban_cchar` becomes
 * `hakuban_cchar *`, which is `const char *`, so the prototype matches the
 * hand-written one in hakuban.h and the compiler rejects any drift.
 */
typedef const char hakuban_cchar;
typedef const char *const hakuban_cchar_cptr;
typedef const int64_t hakuban_cint64;
typedef const void hakuban_cvoid;
typedef const hakuban_exchange_options hakuban_cexchange_options;
typedef const hakuban_connector_options hakuban_cconnector_options;
typedef const hakuban_listener_options hakuban_clistener_options;

#define HAKUBAN_HIDDEN __attribute__((visibility("hidden")))

/* Sets the calling thread's last error message (copied, truncated). */
HAKUBAN_HIDDEN void hakuban__set_error(const char *msg, size_t len);

/* Static strings for hakuban_listener_options_init (C memory, never freed). */
HAKUBAN_HIDDEN const char *hakuban__default_listen_address(void);
HAKUBAN_HIDDEN const char *hakuban__default_listen_path(void);

/* malloc that may fail (cgo's C.malloc aborts instead). */
HAKUBAN_HIDDEN void *hakuban__malloc(size_t n);

/*
 * Callback trampolines. Go cannot call a C function pointer; these do, and
 * record on a thread-local stack which registration is running, so that a
 * drop called from inside a callback knows not to wait for itself.
 */
HAKUBAN_HIDDEN void hakuban__call_notify(hakuban_notify_fn fn, void *user_data, uint64_t reg);
HAKUBAN_HIDDEN void hakuban__call_log(hakuban_log_fn fn, int32_t level, const char *message,
                                      void *user_data, uint64_t reg);
HAKUBAN_HIDDEN void hakuban__call_drop(hakuban_drop_fn fn, void *user_data);
/* Whether the calling thread is inside a callback of registration reg. */
HAKUBAN_HIDDEN int hakuban__in_callback(uint64_t reg);

/*
 * Wake-up file descriptors: an eventfd on Linux (read end == write end), a
 * non-blocking pipe elsewhere. fd_new returns 0 or an errno value.
 */
HAKUBAN_HIDDEN int hakuban__fd_new(int *out_read, int *out_write);
HAKUBAN_HIDDEN void hakuban__fd_signal(int write_fd);
HAKUBAN_HIDDEN void hakuban__fd_drain(int read_fd);
HAKUBAN_HIDDEN void hakuban__fd_close(int read_fd, int write_fd);

#endif
