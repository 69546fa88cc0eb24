/*
 * subscribe.c - receive messages through a SIMCom modem with libcmqtt, by callback.
 *
 *   subscribe [-p PORT] [-s SERVER] [-t TOPIC]... [-n COUNT] [-w SECONDS] [-e] [-b BAUD] [-v]
 *
 * PORT defaults to $CMQTT_PORT, SERVER to $CMQTT_SERVER or tcp://127.0.0.1:1883, TOPIC to
 * cmqtt/example/# (repeat -t for several filters: one multi-topic subscribe). Prints each message
 * as it arrives, and "subscribed" once the subscription is in place. With -e the message callback
 * publishes every message back to "echo/<topic>" from the dispatch thread (which the library
 * allows). Exits 0 after COUNT messages (default 1), 1 when SECONDS (default 30) pass first.
 *
 * Build: cc -std=c11 -Wall -Wextra subscribe.c $(pkg-config --cflags --libs cmqtt) -lpthread
 */
#define _POSIX_C_SOURCE 200809L
#include <cmqtt.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 8

struct state {
    cmqtt_client *client;
    int echo;
    long wanted;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long received; /* under lock */
    int lost;      /* under lock */
};

static int fail(const char *what, cmqtt_result r) {
    fprintf(stderr, "subscribe: %s failed: %s (%u)\n  %s\n", what, cmqtt_result_str(r),
            (unsigned)r, cmqtt_last_error_message());
    return 1;
}

/* Runs on the library's dispatch thread; msg is valid only during the call. */
static void on_message(void *userdata, const cmqtt_message *msg) {
    struct state *st = userdata;
    size_t topic_len = 0, len = 0;
    const char *topic = cmqtt_message_topic(msg, &topic_len);
    const uint8_t *payload = cmqtt_message_payload(msg, &len);
    printf("message on %s (client %d, %zu bytes): %.*s\n", topic, cmqtt_message_client(msg), len,
           (int)len, (const char *)payload);
    fflush(stdout);
    if (st->echo) {
        char echo_topic[1100];
        snprintf(echo_topic, sizeof echo_topic, "echo/%s", topic);
        /* Publishing from a callback, on the client the callback belongs to, is allowed. */
        cmqtt_result r = cmqtt_client_publish(st->client, echo_topic, payload, len, 1, false, 60);
        if (r != CMQTT_OK) {
            fail("echo publish (in the callback)", r);
        }
    }
    pthread_mutex_lock(&st->lock);
    st->received++;
    pthread_cond_broadcast(&st->changed);
    pthread_mutex_unlock(&st->lock);
}

static void on_connection_lost(void *userdata, uint8_t client_index, uint8_t cause) {
    struct state *st = userdata;
    fprintf(stderr, "subscribe: client %u lost its connection (cause %u)\n", client_index, cause);
    pthread_mutex_lock(&st->lock);
    st->lost = 1;
    pthread_cond_broadcast(&st->changed);
    pthread_mutex_unlock(&st->lock);
}

static void on_event(void *userdata, const cmqtt_event *event) {
    (void)userdata;
    fprintf(stderr, "subscribe: modem event %u: %s\n", (unsigned)event->kind, event->text);
}

static void trace(void *userdata, cmqtt_direction direction, const char *line) {
    (void)userdata;
    fprintf(stderr, "%s %s\n", direction == CMQTT_DIRECTION_SEND ? ">>" : "<<", line);
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

int main(int argc, char **argv) {
    const char *port = env_or("CMQTT_PORT", NULL);
    const char *server = env_or("CMQTT_SERVER", "tcp://127.0.0.1:1883");
    const char *topics[MAX_TOPICS];
    uint8_t qos[MAX_TOPICS];
    size_t ntopics = 0;
    long wait_s = 30;
    unsigned long baud = 115200;
    int verbose = 0, opt;
    struct state st = {.client = NULL, .echo = 0, .wanted = 1, .received = 0, .lost = 0};
    while ((opt = getopt(argc, argv, "p:s:t:n:w:eb:v")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 's': server = optarg; break;
        case 't':
            if (ntopics == MAX_TOPICS) {
                fprintf(stderr, "subscribe: at most %d topics\n", MAX_TOPICS);
                return 2;
            }
            qos[ntopics] = 1;
            topics[ntopics++] = optarg;
            break;
        case 'n': st.wanted = strtol(optarg, NULL, 10); break;
        case 'w': wait_s = strtol(optarg, NULL, 10); break;
        case 'e': st.echo = 1; break;
        case 'b': baud = strtoul(optarg, NULL, 10); break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s [-p PORT] [-s SERVER] [-t TOPIC]... [-n COUNT] "
                            "[-w SECONDS] [-e] [-b BAUD] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "subscribe: no port: pass -p PORT or set CMQTT_PORT\n");
        return 2;
    }
    if (ntopics == 0) {
        qos[0] = 1;
        topics[ntopics++] = "cmqtt/example/#";
    }
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.changed, NULL);

    cmqtt_modem_options options = cmqtt_modem_options_default();
    options.baud = (uint32_t)baud;
    if (verbose) {
        options.trace = trace;
    }
    cmqtt_modem *modem = NULL;
    cmqtt_result r = cmqtt_modem_open_with(port, &options, &modem);
    if (r != CMQTT_OK) {
        return fail("open", r);
    }
    int status = 0;
    char client_id[64];
    snprintf(client_id, sizeof client_id, "cmqtt-c-subscribe-%ld", (long)getpid());
    if ((r = cmqtt_modem_set_event_callback(modem, NULL, on_event)) != CMQTT_OK) {
        status = fail("set event callback", r);
    } else if ((r = cmqtt_modem_start(modem)) != CMQTT_OK) {
        status = fail("start", r);
    } else if ((r = cmqtt_client_acquire(modem, 0, client_id, false, &st.client)) != CMQTT_OK) {
        status = fail("acquire", r);
    } else if ((r = cmqtt_client_set_callbacks(st.client, &st, on_message, on_connection_lost)) !=
               CMQTT_OK) {
        status = fail("set callbacks", r);
    } else if ((r = cmqtt_client_connect(st.client, server, 60, true, NULL, NULL)) != CMQTT_OK) {
        status = fail("connect", r);
    } else if ((r = ntopics == 1 ? cmqtt_client_subscribe(st.client, topics[0], qos[0])
                                 : cmqtt_client_subscribe_many(st.client, topics, qos, ntopics)) !=
               CMQTT_OK) {
        status = fail("subscribe", r);
    } else {
        printf("subscribed to %zu topic(s) on %s\n", ntopics, server);
        fflush(stdout);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += wait_s;
        pthread_mutex_lock(&st.lock);
        int waited = 0;
        while (st.received < st.wanted && !st.lost && waited != ETIMEDOUT) {
            waited = pthread_cond_timedwait(&st.changed, &st.lock, &deadline);
        }
        long received = st.received;
        pthread_mutex_unlock(&st.lock);
        if (received < st.wanted) {
            fprintf(stderr, "subscribe: got %ld of %ld message(s)\n", received, st.wanted);
            status = 1;
        } else {
            printf("received %ld message(s)\n", received);
        }
        /* Stop the callbacks before the state they use goes away; then leave cleanly. */
        cmqtt_client_set_callbacks(st.client, NULL, NULL, NULL);
        if ((r = cmqtt_client_unsubscribe_many(st.client, topics, ntopics)) != CMQTT_OK &&
            status == 0) {
            status = fail("unsubscribe", r);
        }
        if ((r = cmqtt_client_disconnect(st.client, 0)) != CMQTT_OK && status == 0) {
            status = fail("disconnect", r);
        }
    }
    if ((r = cmqtt_client_free(st.client)) != CMQTT_OK && status == 0) {
        status = fail("free client", r);
    }
    cmqtt_modem_free(modem);
    pthread_cond_destroy(&st.changed);
    pthread_mutex_destroy(&st.lock);
    return status;
}
