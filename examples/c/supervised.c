/*
 * supervised.c - publish through a supervised client: the library keeps the connection up
 * (reconnecting with backoff after broker, network, modem or port faults), publishes go through
 * an outbox and each returns a delivery ticket to wait on.
 *
 *   supervised [-p PORT] [-s SERVER] [-t TOPIC] [-m MESSAGE] [-n COUNT] [-q QOS] [-o OUTBOX]
 *              [-w SECONDS] [-B MAX_BACKOFF_MS] [-f] [-v]
 *
 * PORT defaults to $CMQTT_PORT (e.g. /dev/ttyUSB2, or the pty printed by `cmqtt sim`), SERVER to
 * $CMQTT_SERVER or tcp://127.0.0.1:1883. Each payload is "MESSAGE #i" (i = 1..COUNT), QoS 1 by
 * default. -o keeps the outbox in a file (what is left there is sent by the next run). -w is how
 * long to wait for the connection and for each delivery (default 60 s). -B caps the reconnect
 * backoff. Every supervisor event is printed ("event: ..."); -v prints the AT trace on stderr.
 *
 * -f (fault drill): publishes the first half, prints "ready for a fault", waits until the
 * connection is lost (stop the broker now), publishes the second half while disconnected, prints
 * "queued N while disconnected" (start the broker again now), then waits for every ticket.
 * ci/c.sh runs it that way with a broker restart.
 *
 * Exits 0 when every message was delivered (for QoS 1/2: acknowledged by the broker).
 *
 * Build: cc -std=c11 -Wall -Wextra supervised.c $(pkg-config --cflags --libs cmqtt)
 */
#define _POSIX_C_SOURCE 200809L
#include <cmqtt.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what, cmqtt_result r) {
    fprintf(stderr, "supervised: %s failed: %s (%u)\n  %s\n", what, cmqtt_result_str(r),
            (unsigned)r, cmqtt_last_error_message());
    return 1;
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

static atomic_int lost_count;

static void trace(void *userdata, cmqtt_direction direction, const char *line) {
    (void)userdata;
    fprintf(stderr, "%s %s\n", direction == CMQTT_DIRECTION_SEND ? ">>" : "<<", line);
}

/* Runs on the supervisor thread (states, losses, restores, failed attempts and publishes), on
 * the modem's dispatch thread (modem events) or on a publishing thread (drops): print only. */
static void on_event(void *userdata, const cmqtt_supervisor_event *e) {
    (void)userdata;
    switch (e->kind) {
    case CMQTT_SUPERVISOR_EVENT_STATE:
        if (e->state == CMQTT_STATE_WAITING) {
            printf("event: state waiting (%u failed attempt(s), next in %llu ms)\n", e->attempt,
                   (unsigned long long)e->delay_ms);
        } else {
            printf("event: state %s\n", cmqtt_state_name(e->state));
        }
        break;
    case CMQTT_SUPERVISOR_EVENT_LOST:
        atomic_fetch_add(&lost_count, 1);
        printf("event: lost (loss %u): %s\n", (unsigned)e->loss, e->text);
        break;
    case CMQTT_SUPERVISOR_EVENT_RESTORED:
        printf("event: restored after %u failed attempt(s)\n", e->attempt);
        break;
    case CMQTT_SUPERVISOR_EVENT_ATTEMPT_FAILED:
        printf("event: attempt %u failed: %s\n", e->attempt, e->text);
        break;
    case CMQTT_SUPERVISOR_EVENT_DROPPED:
        printf("event: publish %llu dropped\n", (unsigned long long)e->id);
        break;
    case CMQTT_SUPERVISOR_EVENT_FAILED:
        printf("event: publish %llu failed: %s\n", (unsigned long long)e->id, e->text);
        break;
    case CMQTT_SUPERVISOR_EVENT_MODEM:
        printf("event: modem: %s\n", e->modem_event->text);
        break;
    default:
        printf("event: kind %u: %s\n", (unsigned)e->kind, e->text);
        break;
    }
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Publishes "MESSAGE #i" for i in [from, to], keeping each ticket. */
static int publish_range(cmqtt_supervisor *sup, const char *topic, const char *message, int qos,
                         long from, long to, cmqtt_delivery **tickets) {
    for (long i = from; i <= to; i++) {
        char payload[512];
        snprintf(payload, sizeof payload, "%s #%ld", message, i);
        cmqtt_result r = cmqtt_supervisor_publish(sup, topic, (const uint8_t *)payload,
                                                  strlen(payload), (uint8_t)qos, false,
                                                  &tickets[i - 1]);
        if (r != CMQTT_OK) {
            return fail("publish", r);
        }
        printf("queued %s: %s (ticket %llu)\n", topic, payload,
               (unsigned long long)cmqtt_delivery_id(tickets[i - 1]));
    }
    return 0;
}

/* Waits for the tickets [from, to]; returns how many were not delivered. */
static int wait_range(cmqtt_delivery **tickets, long from, long to, long wait_s) {
    int bad = 0;
    for (long i = from; i <= to; i++) {
        cmqtt_result r = cmqtt_delivery_wait(tickets[i - 1], (uint32_t)(wait_s * 1000));
        if (r != CMQTT_OK) {
            fprintf(stderr, "supervised: message #%ld (ticket %llu): %s: %s\n", i,
                    (unsigned long long)cmqtt_delivery_id(tickets[i - 1]), cmqtt_result_str(r),
                    cmqtt_last_error_message());
            bad++;
        }
    }
    return bad;
}

int main(int argc, char **argv) {
    const char *port = env_or("CMQTT_PORT", NULL);
    const char *server = env_or("CMQTT_SERVER", "tcp://127.0.0.1:1883");
    const char *topic = "cmqtt/example/supervised";
    const char *message = "hello from a supervised C client";
    const char *outbox = NULL;
    long count = 10, qos = 1, wait_s = 60, max_backoff_ms = 0;
    int drill = 0, verbose = 0, opt;
    while ((opt = getopt(argc, argv, "p:s:t:m:n:q:o:w:B:fv")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 's': server = optarg; break;
        case 't': topic = optarg; break;
        case 'm': message = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'q': qos = strtol(optarg, NULL, 10); break;
        case 'o': outbox = optarg; break;
        case 'w': wait_s = strtol(optarg, NULL, 10); break;
        case 'B': max_backoff_ms = strtol(optarg, NULL, 10); break;
        case 'f': drill = 1; break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s [-p PORT] [-s SERVER] [-t TOPIC] [-m MESSAGE] [-n COUNT] "
                            "[-q QOS] [-o OUTBOX] [-w SECONDS] [-B MAX_BACKOFF_MS] [-f] [-v]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "supervised: no port: pass -p PORT or set CMQTT_PORT\n");
        return 2;
    }
    if (count < 1 || (drill && count < 2)) {
        fprintf(stderr, "supervised: COUNT must be at least 1 (2 with -f)\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines as they happen, also into a pipe or file */
    printf("libcmqtt %s\n", cmqtt_version());

    char client_id[64];
    snprintf(client_id, sizeof client_id, "cmqtt-c-supervised-%ld", (long)getpid());
    cmqtt_supervisor_config cfg = cmqtt_supervisor_config_default();
    cfg.endpoint = CMQTT_ENDPOINT_SERIAL;
    cfg.port = port;
    cfg.client.client_id = client_id;
    cfg.server = server;
    cfg.connect_timeout_ms = 10000;
    cfg.outbox_path = outbox;
    if (max_backoff_ms > 0) {
        cfg.backoff_initial_ms = 100;
        cfg.backoff_max_ms = (uint32_t)max_backoff_ms;
    }
    if (verbose) {
        cfg.modem.trace = trace;
    }
    /* Set here, the callbacks see every event from the first (cmqtt_supervisor_set_callbacks
     * can change them later). */
    cfg.on_event = on_event;

    cmqtt_supervisor *sup = NULL;
    cmqtt_result r = cmqtt_supervisor_new(&cfg, &sup);
    if (r != CMQTT_OK) {
        return fail("cmqtt_supervisor_new", r);
    }
    /* The config (and client_id) may go now: the supervisor copied what it needs. */

    int status = 0;
    cmqtt_delivery **tickets = calloc((size_t)count, sizeof *tickets);
    if (!tickets) {
        cmqtt_supervisor_free(sup);
        return 1;
    }
    if ((r = cmqtt_supervisor_wait_connected(sup, (uint32_t)(wait_s * 1000))) != CMQTT_OK) {
        status = fail("wait_connected", r);
        goto out;
    }
    printf("connected to %s as %s\n", server, client_id);

    long half = drill ? count / 2 : count;
    if ((status = publish_range(sup, topic, message, (int)qos, 1, half, tickets)) != 0) {
        goto out;
    }
    if (drill) {
        if (wait_range(tickets, 1, half, wait_s) != 0) {
            status = 1;
            goto out;
        }
        printf("delivered %ld; ready for a fault\n", half);
        for (long i = 0; i < wait_s * 10 && atomic_load(&lost_count) == 0; i++) {
            sleep_ms(100);
        }
        if (atomic_load(&lost_count) == 0) {
            fprintf(stderr, "supervised: the connection was not lost within %ld s\n", wait_s);
            status = 1;
            goto out;
        }
        if ((status = publish_range(sup, topic, message, (int)qos, half + 1, count, tickets)) !=
            0) {
            goto out;
        }
        long queued = 0;
        for (long i = half + 1; i <= count; i++) {
            queued += cmqtt_delivery_status(tickets[i - 1]) == CMQTT_DELIVERY_QUEUED;
        }
        printf("queued %ld while disconnected (outbox %zu, state %s)\n", queued,
               cmqtt_supervisor_outbox_len(sup), cmqtt_state_name(cmqtt_supervisor_state(sup)));
    }
    int bad = wait_range(tickets, drill ? half + 1 : 1, count, wait_s);
    if (bad != 0) {
        status = 1;
    } else {
        printf("delivered %ld message(s); outbox %zu\n", count, cmqtt_supervisor_outbox_len(sup));
    }
    if ((r = cmqtt_supervisor_flush(sup, 1000)) != CMQTT_OK && status == 0) {
        status = fail("flush", r);
    }

out:
    for (long i = 0; i < count; i++) {
        cmqtt_delivery_free(tickets[i]); /* NULL is a no-op */
    }
    free(tickets);
    /* Disconnects, releases, closes the port; the final "stopped" event runs on this thread. */
    if ((r = cmqtt_supervisor_free(sup)) != CMQTT_OK && status == 0) {
        status = fail("free", r);
    }
    if (status == 0) {
        printf("done\n");
    }
    return status;
}
