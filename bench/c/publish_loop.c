/*
 * publish_loop.c - the bindings benchmark's publish loop in C, through libcmqtt.
 *
 *   publish_loop PORT BAUD SERVER TOPIC SIZE QOS N
 *
 * Opens the modem, connects, publishes 2 warm-up messages, then times N publishes of SIZE bytes
 * and prints "elapsed_ns=<ns> ok=<n>". The same loop as `cmqtt-bench child-publish` (Rust) and
 * bench/peers/cmqtt_loop.py (Python). Built by cmqtt-bench with cc -O2 against libcmqtt.so.
 */
#define _POSIX_C_SOURCE 200809L
#include <cmqtt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *what, cmqtt_result r) {
    fprintf(stderr, "publish_loop: %s: %s: %s\n", what, cmqtt_result_str(r), cmqtt_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s PORT BAUD SERVER TOPIC SIZE QOS N\n", argv[0]);
        return 2;
    }
    const char *port = argv[1];
    uint32_t baud = (uint32_t)strtoul(argv[2], NULL, 10);
    const char *server = argv[3];
    const char *topic = argv[4];
    size_t size = (size_t)strtoul(argv[5], NULL, 10);
    uint8_t qos = (uint8_t)strtoul(argv[6], NULL, 10);
    long n = strtol(argv[7], NULL, 10);

    uint8_t *payload = malloc(size ? size : 1);
    if (!payload) return 1;
    for (size_t i = 0; i < size; i++) payload[i] = (uint8_t)('a' + i % 26);

    cmqtt_modem_options options = cmqtt_modem_options_default();
    options.baud = baud;
    cmqtt_modem *modem = NULL;
    cmqtt_result r = cmqtt_modem_open_with(port, &options, &modem);
    if (r != CMQTT_OK) return fail("open", r);
    if ((r = cmqtt_modem_start(modem)) != CMQTT_OK) return fail("start", r);
    char id[64];
    snprintf(id, sizeof id, "bench-c-%ld", (long)getpid());
    cmqtt_client *client = NULL;
    if ((r = cmqtt_client_acquire(modem, 0, id, false, &client)) != CMQTT_OK) return fail("acquire", r);
    if ((r = cmqtt_client_connect(client, server, 60, true, NULL, NULL)) != CMQTT_OK) return fail("connect", r);
    for (int i = 0; i < 2; i++) {
        if ((r = cmqtt_client_publish(client, topic, payload, size, qos, false, 60)) != CMQTT_OK)
            return fail("publish", r);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if ((r = cmqtt_client_publish(client, topic, payload, size, qos, false, 60)) != CMQTT_OK)
            return fail("publish", r);
    }
    uint64_t t1 = now_ns();
    printf("elapsed_ns=%llu ok=%ld\n", (unsigned long long)(t1 - t0), n);
    fflush(stdout);
    if ((r = cmqtt_client_disconnect(client, 0)) != CMQTT_OK) return fail("disconnect", r);
    cmqtt_client_free(client);
    cmqtt_modem_free(modem);
    free(payload);
    return 0;
}
