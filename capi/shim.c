/*
 * shim.c — the C half of libhakuban: what Go cannot do (thread-local
 * storage, calling C function pointers) and the functions that need no Go
 * at all. See shim.h.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* ---- versions (compiled from the header: the library reports what it was
 * built from) ---- */

const char *hakuban_version(void) { return HAKUBAN_VERSION; }

uint32_t hakuban_abi_version(void) { return HAKUBAN_ABI_VERSION; }

/* ---- last error ---- */

#define HAKUBAN_ERROR_CAP 1024

/* Fixed-size, so that a thread's message never needs freeing when the thread
 * ends (threads of the host program are not ours to hook). */
static _Thread_local char hakuban__error[HAKUBAN_ERROR_CAP];

void hakuban__set_error(const char *msg, size_t len) {
    if (len >= HAKUBAN_ERROR_CAP) {
        len = HAKUBAN_ERROR_CAP - 1;
        /* do not cut a UTF-8 sequence in half */
        while (len > 0 && ((unsigned char)msg[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    memcpy(hakuban__error, msg, len);
    hakuban__error[len] = '\0';
}

const char *hakuban_last_error_message(void) { return hakuban__error; }

void hakuban_string_free(char *s) { free(s); }

void *hakuban__malloc(size_t n) { return malloc(n == 0 ? 1 : n); }

/* The listener's defaults; a Go test checks them against core's. */
const char *hakuban__default_listen_address(void) { return "127.0.0.1:3001"; }

const char *hakuban__default_listen_path(void) { return "/"; }

/* ---- callbacks ---- */

struct hakuban__frame {
    uint64_t reg;
    struct hakuban__frame *prev;
};

static _Thread_local struct hakuban__frame *hakuban__frames;

void hakuban__call_notify(hakuban_notify_fn fn, void *user_data, uint64_t reg) {
    struct hakuban__frame frame = {reg, hakuban__frames};
    hakuban__frames = &frame;
    fn(user_data);
    hakuban__frames = frame.prev;
}

void hakuban__call_log(hakuban_log_fn fn, int32_t level, const char *message, void *user_data,
                       uint64_t reg) {
    struct hakuban__frame frame = {reg, hakuban__frames};
    hakuban__frames = &frame;
    fn(level, message, user_data);
    hakuban__frames = frame.prev;
}

void hakuban__call_drop(hakuban_drop_fn fn, void *user_data) { fn(user_data); }

int hakuban__in_callback(uint64_t reg) {
    for (struct hakuban__frame *f = hakuban__frames; f != NULL; f = f->prev) {
        if (f->reg == reg) {
            return 1;
        }
    }
    return 0;
}

/* ---- wake-up fds ---- */

int hakuban__fd_new(int *out_read, int *out_write) {
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    *out_read = fd;
    *out_write = fd;
    return 0;
#else
    int p[2];
    if (pipe(p) != 0) {
        return errno;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *out_read = p[0];
    *out_write = p[1];
    return 0;
#endif
}

void hakuban__fd_signal(int write_fd) {
#ifdef __linux__
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(write_fd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
#else
    char b = 1;
    ssize_t r;
    do {
        r = write(write_fd, &b, 1);
    } while (r < 0 && errno == EINTR);
#endif
    /* EAGAIN (counter or pipe full) still leaves the fd readable: fine. */
    (void)r;
}

void hakuban__fd_drain(int read_fd) {
    char buf[64];
    for (;;) {
        ssize_t r = read(read_fd, buf, sizeof buf);
        if (r > 0) {
#ifdef __linux__
            return; /* an eventfd read resets the counter at once */
#else
            continue;
#endif
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        return; /* EAGAIN: empty */
    }
}

void hakuban__fd_close(int read_fd, int write_fd) {
    close(read_fd);
    if (write_fd != read_fd) {
        close(write_fd);
    }
}
