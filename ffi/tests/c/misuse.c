/*
 * misuse.c - the C API under misuse: NULL handles and pointers, NULL callbacks, invalid UTF-8,
 * bad arguments, publishing after disconnect, calls from callbacks that are not allowed, the
 * password kept out of traces, several threads on one client; the supervisor: bad
 * configurations, NULLs, outbox policies (drop-oldest, error, never blocking on the supervisor
 * thread), what its callbacks may not do, tickets outliving it, and a supervised session.
 *
 *   misuse                      the checks that need no modem
 *   misuse PORT [SERVER]        also the ones against a modem (or the emulator's pty) and a
 *                               broker (default tcp://127.0.0.1:1883); PORT/SERVER may also come
 *                               from $CMQTT_PORT / $CMQTT_SERVER
 *
 * Prints one line per check ("ok" / "FAIL") and exits non-zero if any check failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <cmqtt.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define EXPECT(expr, want)                                                                         \
    do {                                                                                           \
        cmqtt_result r_ = (expr);                                                                  \
        checks++;                                                                                  \
        if (r_ != (want)) {                                                                        \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s\n     -> %u (%s), want %u (%s)\n     last error: %s\n",       \
                   __FILE__, __LINE__, #expr, (unsigned)r_, cmqtt_result_str(r_),                  \
                   (unsigned)(want), cmqtt_result_str(want), cmqtt_last_error_message());          \
        } else {                                                                                   \
            printf("ok   %s -> %s\n", #expr, #want);                                               \
        }                                                                                          \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        } else {                                                                                   \
            printf("ok   %s\n", #cond);                                                            \
        }                                                                                          \
    } while (0)

/* For checks inside callbacks: counted, printed only when they fail. */
#define CHECK_QUIET(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
        }                                                                                          \
    } while (0)

static const char BAD_UTF8[] = {'b', 'a', 'd', (char)0xc3, (char)0x28, 0};
static const char PASSWORD[] = "s3cret-pw-do-not-show";

/* ---- without a modem ------------------------------------------------------------------------ */

static void without_modem(void) {
    printf("\n== without a modem\n");
    cmqtt_modem *m = (cmqtt_modem *)&failures; /* garbage on purpose: must be set to NULL */
    cmqtt_client *c = NULL;
    cmqtt_message *msg = NULL;
    cmqtt_string_list *list = NULL;
    uint8_t u8 = 0, u8b = 0;
    const char *t = "t";
    cmqtt_modem_options mo = cmqtt_modem_options_default();
    cmqtt_client_options co = cmqtt_client_options_default();
    cmqtt_ssl_config ssl = cmqtt_ssl_config_default();

    /* NULL handles and pointers */
    EXPECT(cmqtt_modem_open(NULL, 115200, &m), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(m == NULL);
    EXPECT(cmqtt_modem_open("/dev/null", 115200, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_open_with("/dev/null", NULL, &m), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_start(NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_stop(NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_set_event_callback(NULL, NULL, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_ssl_configure(NULL, 0, &ssl), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_cert_upload(NULL, "ca.pem", NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_cert_list(NULL, &list), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_cert_delete(NULL, "ca.pem"), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_command(NULL, "AT", 1000, &list), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_signal_quality(NULL, &u8, &u8b), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_modem_registration(NULL, &u8), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_acquire(NULL, 0, "id", false, &c), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_acquire_with(NULL, 0, &co, &c), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_connect(NULL, "tcp://h:1883", 60, true, NULL, NULL),
           CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_publish(NULL, t, NULL, 0, 0, false, 60), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_subscribe(NULL, t, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_subscribe_many(NULL, &t, &u8, 1), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_unsubscribe(NULL, t), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_unsubscribe_many(NULL, &t, 1), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_disconnect(NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_will(NULL, t, NULL, 0, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_check_utf8(NULL, false), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_op_timeout(NULL, 60), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_version(NULL, 4), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_ssl_context(NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_callbacks(NULL, NULL, NULL, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_receive(NULL, 0, &msg), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(msg == NULL && list == NULL && c == NULL);
    CHECK(strstr(cmqtt_last_error_message(), "client") != NULL);
    CHECK(cmqtt_last_modem_code() == -1);

    /* Accessors with NULL: neutral values, never a crash; strings never NULL */
    size_t len = 123;
    CHECK(cmqtt_message_topic(NULL, &len) == NULL && len == 0);
    CHECK(cmqtt_message_payload(NULL, NULL) == NULL);
    CHECK(cmqtt_message_client(NULL) == -1);
    CHECK(cmqtt_message_copy(NULL) == NULL);
    CHECK(cmqtt_client_index(NULL) == -1);
    CHECK(!cmqtt_client_is_connected(NULL));
    CHECK(cmqtt_modem_model(NULL) == CMQTT_MODEL_AUTO);
    CHECK(strcmp(cmqtt_modem_firmware(NULL), "") == 0);
    CHECK(strcmp(cmqtt_modem_model_name(NULL), "") == 0);
    CHECK(cmqtt_string_list_len(NULL) == 0 && cmqtt_string_list_get(NULL, 0) == NULL);

    /* free(NULL) is a no-op; double free is undefined (like free(3)) and not tested */
    EXPECT(cmqtt_client_free(NULL), CMQTT_OK);
    EXPECT(cmqtt_modem_free(NULL), CMQTT_OK);
    cmqtt_message_free(NULL);
    cmqtt_string_list_free(NULL);

    /* Invalid UTF-8, bad ports, bad enum values */
    m = (cmqtt_modem *)&failures;
    EXPECT(cmqtt_modem_open(BAD_UTF8, 115200, &m), CMQTT_ERR_INVALID_UTF8);
    CHECK(m == NULL);
    EXPECT(cmqtt_modem_open("/dev/cmqtt-misuse-no-such-port", 115200, &m), CMQTT_ERR_SERIAL);
    CHECK(m == NULL);
    CHECK(strstr(cmqtt_last_error_message(), "/dev/cmqtt-misuse-no-such-port") != NULL);
    mo.model = 77;
    EXPECT(cmqtt_modem_open_with("/dev/null", &mo, &m), CMQTT_ERR_INVALID_ARGUMENT);

    /* Result texts: static, never NULL, also for unknown values */
    const cmqtt_result known[] = {CMQTT_OK, CMQTT_ERR_NULL_ARGUMENT, CMQTT_ERR_SERIAL,
                                  CMQTT_ERR_TIMEOUT, CMQTT_ERR_FAILED, CMQTT_ERR_DISCONNECT_FAILED,
                                  CMQTT_ERR_PANIC};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *s = cmqtt_result_str(known[i]);
        CHECK(s != NULL && *s != '\0' && strstr(s, "unknown") == NULL);
    }
    CHECK(strstr(cmqtt_result_str(CMQTT_ERR_REFUSED_BAD_CREDENTIALS), "bad user name") != NULL);
    CHECK(strcmp(cmqtt_result_str((cmqtt_result)4242), "unknown cmqtt_result value") == 0);
    CHECK(strcmp(cmqtt_result_str((cmqtt_result)300), "unknown cmqtt_result value") == 0);
    CHECK(CMQTT_ERR_FAILED == 301 && CMQTT_ERR_DISCONNECT_FAILED == 335 && CMQTT_OK == 0);
    CHECK(cmqtt_version() != NULL && *cmqtt_version() != '\0');
    CHECK(strcmp(cmqtt_model_name(CMQTT_MODEL_SIM7672X), "sim7672x") == 0);
    CHECK(strcmp(cmqtt_model_name((cmqtt_model)99), "unknown") == 0);
}

/* ---- with a modem and a broker -------------------------------------------------------------- */

static atomic_int trace_lines;
static atomic_int trace_connect_lines;
static atomic_int trace_password_seen;
static atomic_int trace_reentry_refused;
static atomic_int trace_reentry_allowed;

static cmqtt_modem *_Atomic g_modem; /* set once open returned (NULL while it runs) */

static void trace(void *userdata, cmqtt_direction direction, const char *line) {
    (void)userdata;
    (void)direction;
    atomic_fetch_add(&trace_lines, 1);
    if (strstr(line, "CMQTTCONNECT")) atomic_fetch_add(&trace_connect_lines, 1);
    if (strstr(line, PASSWORD)) atomic_fetch_add(&trace_password_seen, 1);
    /* Calling the library from a trace is refused (it would deadlock), not undefined; the
     * context is checked before the handle, so this holds while g_modem is still NULL too. */
    if (cmqtt_modem_start(atomic_load(&g_modem)) == CMQTT_ERR_IN_CALLBACK) {
        atomic_fetch_add(&trace_reentry_refused, 1);
    } else {
        atomic_fetch_add(&trace_reentry_allowed, 1);
    }
}

struct cb_state {
    cmqtt_client *client;
    cmqtt_modem *modem;
    atomic_int messages;
    atomic_int free_client_refused;
    atomic_int free_modem_refused;
    atomic_int publish_in_callback_ok;
    atomic_int lent_free_ignored;
};

static void on_message(void *userdata, const cmqtt_message *msg) {
    struct cb_state *st = userdata;
    size_t len = 0;
    const char *topic = cmqtt_message_topic(msg, &len);
    if (cmqtt_client_free(st->client) == CMQTT_ERR_IN_CALLBACK) {
        atomic_fetch_add(&st->free_client_refused, 1);
    }
    if (cmqtt_modem_free(st->modem) == CMQTT_ERR_IN_CALLBACK) {
        atomic_fetch_add(&st->free_modem_refused, 1);
    }
    if (strncmp(topic, "misuse/in/", 10) == 0) {
        /* Allowed: publish on our own client from its callback. */
        if (cmqtt_client_publish(st->client, "misuse/out/reply", (const uint8_t *)"r", 1, 1, false,
                                 60) == CMQTT_OK) {
            atomic_fetch_add(&st->publish_in_callback_ok, 1);
        }
    }
    /* The lent message must not be freed; doing it anyway is detected and ignored. */
    cmqtt_message_free((cmqtt_message *)msg);
    if (cmqtt_message_topic(msg, NULL) == topic) {
        atomic_fetch_add(&st->lent_free_ignored, 1);
    }
    atomic_fetch_add(&st->messages, 1);
}

struct pub_thread {
    cmqtt_client *client;
    int id;
    int ok;
};

static void *publisher(void *arg) {
    struct pub_thread *p = arg;
    char topic[64], payload[64];
    p->ok = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(topic, sizeof topic, "misuse/threads/%d", p->id);
        snprintf(payload, sizeof payload, "thread %d message %d", p->id, i);
        if (cmqtt_client_publish(p->client, topic, (const uint8_t *)payload, strlen(payload), 1,
                                 false, 60) == CMQTT_OK) {
            p->ok++;
        }
    }
    return NULL;
}

static int wait_for(atomic_int *counter, int want, int seconds) {
    for (int i = 0; i < seconds * 20 && atomic_load(counter) < want; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(counter) >= want;
}

static void with_modem(const char *port, const char *server) {
    printf("\n== with the modem on %s and the broker %s\n", port, server);
    cmqtt_modem *m = NULL;
    cmqtt_client *c = NULL, *c1 = NULL, *dup = NULL;
    cmqtt_message *msg = NULL;
    cmqtt_modem_options mo = cmqtt_modem_options_default();
    /* A capacity beyond the maximum: a typed error naming the limit, not an aborted process */
    mo.queue_capacity = UINT32_MAX;
    EXPECT(cmqtt_modem_open_with(port, &mo, &m), CMQTT_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK(strstr(cmqtt_last_error_message(), "1048576") != NULL);
    mo.queue_capacity = CMQTT_MAX_QUEUE_CAPACITY + 1;
    EXPECT(cmqtt_modem_open_with(port, &mo, &m), CMQTT_ERR_INVALID_ARGUMENT);
    mo.queue_capacity = 0;
    mo.baud = 0;
    EXPECT(cmqtt_modem_open_with(port, &mo, &m), CMQTT_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL && strstr(cmqtt_last_error_message(), "baud") != NULL);
    mo.baud = 115200;
    mo.trace = trace;
    EXPECT(cmqtt_modem_open_with(port, &mo, &m), CMQTT_OK);
    if (!m) return;
    atomic_store(&g_modem, m);
    printf("     modem %s (%s), firmware %s\n", cmqtt_modem_model_name(m),
           cmqtt_model_name(cmqtt_modem_model(m)), cmqtt_modem_firmware(m));
    EXPECT(cmqtt_modem_start(m), CMQTT_OK);
    EXPECT(cmqtt_modem_start(m), CMQTT_OK); /* already started: still success */

    /* Acquire: invalid UTF-8, bad index, bad id, then the real one */
    EXPECT(cmqtt_client_acquire(m, 0, BAD_UTF8, false, &c), CMQTT_ERR_INVALID_UTF8);
    EXPECT(cmqtt_client_acquire(m, 0, NULL, false, &c), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_acquire(m, 0, "id", false, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_acquire(m, 2, "id", false, &c), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_acquire(m, 0, "has\"quote", false, &c), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_acquire(m, 0, "", false, &c), CMQTT_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    char long_id[200];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    EXPECT(cmqtt_client_acquire(m, 0, long_id, false, &c), CMQTT_ERR_INVALID_ARGUMENT);
    cmqtt_client_options co = cmqtt_client_options_default();
    co.client_id = "misuse-c";
    co.check_utf8 = 5;
    EXPECT(cmqtt_client_acquire_with(m, 0, &co, &c), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_acquire(m, 0, "misuse-c", false, &c), CMQTT_OK);
    if (!c) {
        cmqtt_modem_free(m);
        return;
    }
    CHECK(cmqtt_client_index(c) == 0);
    /* The same index twice: the modem's own error, one to one */
    cmqtt_result r = cmqtt_client_acquire(m, 0, "misuse-dup", false, &dup);
    printf("     acquire index 0 twice -> %u (%s), modem code %d\n", (unsigned)r,
           cmqtt_result_str(r), cmqtt_last_modem_code());
    CHECK(r != CMQTT_OK && dup == NULL);
    CHECK(r <= 300 || r >= 400 || (int)r - 300 == cmqtt_last_modem_code());

    /* Before connecting */
    const uint8_t *p = (const uint8_t *)"payload";
    EXPECT(cmqtt_client_publish(c, "misuse/x", p, 7, 1, false, 60), CMQTT_ERR_NOT_CONNECTED);
    EXPECT(cmqtt_client_subscribe(c, "misuse/x", 1), CMQTT_ERR_NOT_CONNECTED);
    EXPECT(cmqtt_client_connect(c, NULL, 60, true, NULL, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_connect(c, server, 60, true, BAD_UTF8, NULL), CMQTT_ERR_INVALID_UTF8);
    EXPECT(cmqtt_client_connect(c, server, 0, true, NULL, NULL), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_set_will(c, "misuse/will", (const uint8_t *)"gone", 4, 3),
           CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_set_will(c, "misuse/will", NULL, 4, 1), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_set_will(c, "misuse/will", (const uint8_t *)"gone", 4, 1), CMQTT_OK);
    EXPECT(cmqtt_client_set_op_timeout(c, 5), CMQTT_ERR_INVALID_ARGUMENT);

    /* Connect with a password: it must never be traced nor appear in an error text */
    EXPECT(cmqtt_client_connect(c, server, 60, true, "misuse-user", PASSWORD), CMQTT_OK);
    CHECK(cmqtt_client_is_connected(c));
    cmqtt_string_list *lines = NULL;
    r = cmqtt_modem_command(m, "AT+CMQTTCONNECT?", 5000, &lines);
    printf("     AT+CMQTTCONNECT? -> %s, %zu line(s)\n", cmqtt_result_str(r),
           cmqtt_string_list_len(lines));
    cmqtt_string_list_free(lines);
    CHECK(atomic_load(&trace_connect_lines) > 0);
    CHECK(atomic_load(&trace_password_seen) == 0);
    CHECK(strstr(cmqtt_last_error_message(), PASSWORD) == NULL);
    CHECK(atomic_load(&trace_reentry_refused) > 0 && atomic_load(&trace_reentry_allowed) == 0);

    /* Bad publishes: wrong QoS, topics over 1024 bytes, NULL payload with a length */
    EXPECT(cmqtt_client_publish(c, "misuse/x", p, 7, 3, false, 60), CMQTT_ERR_INVALID_ARGUMENT);
    char topic[1026];
    memset(topic, 'a', 1025);
    topic[1025] = 0;
    EXPECT(cmqtt_client_publish(c, topic, p, 7, 1, false, 60), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_subscribe(c, topic, 1), CMQTT_ERR_INVALID_ARGUMENT);
    topic[1024] = 0; /* exactly 1024 bytes is allowed */
    EXPECT(cmqtt_client_publish(c, topic, p, 7, 0, false, 60), CMQTT_OK);
    EXPECT(cmqtt_client_publish(c, "misuse/x", NULL, 7, 1, false, 60), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_publish(c, "misuse/x", NULL, 0, 1, false, 60), CMQTT_OK);
    EXPECT(cmqtt_client_publish(c, "misuse/x", p, 7, 1, false, 5), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_publish(c, BAD_UTF8, p, 7, 1, false, 60), CMQTT_ERR_INVALID_UTF8);

    /* Multi-topic subscribe with a NULL inside, empty lists, wrong QoS */
    const char *topics[] = {"misuse/in/a", NULL};
    const uint8_t qos[] = {1, 1};
    EXPECT(cmqtt_client_subscribe_many(c, topics, qos, 2), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_subscribe_many(c, topics, NULL, 1), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_client_subscribe_many(c, NULL, NULL, 0), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_unsubscribe_many(c, NULL, 0), CMQTT_ERR_INVALID_ARGUMENT);
    const uint8_t bad_qos[] = {1, 7};
    const char *two[] = {"misuse/in/a", "misuse/in/b"};
    EXPECT(cmqtt_client_subscribe_many(c, two, bad_qos, 2), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_client_subscribe_many(c, two, qos, 2), CMQTT_OK);

    /* Pull mode: nothing yet, then our own message */
    EXPECT(cmqtt_client_receive(c, 10, &msg), CMQTT_ERR_TIMEOUT);
    CHECK(msg == NULL);
    EXPECT(cmqtt_client_publish(c, "misuse/in/a", (const uint8_t *)"pull", 4, 1, false, 60),
           CMQTT_OK);
    EXPECT(cmqtt_client_receive(c, 10000, &msg), CMQTT_OK);
    if (msg) {
        size_t tl = 0, pl = 0;
        const char *mt = cmqtt_message_topic(msg, &tl);
        const uint8_t *mp = cmqtt_message_payload(msg, &pl);
        CHECK(tl == 11 && strcmp(mt, "misuse/in/a") == 0);
        CHECK(pl == 4 && memcmp(mp, "pull", 4) == 0 && mp[4] == 0);
        CHECK(cmqtt_message_client(msg) == 0);
        cmqtt_message *copy = cmqtt_message_copy(msg);
        cmqtt_message_free(msg);
        CHECK(copy != NULL && strcmp(cmqtt_message_topic(copy, NULL), "misuse/in/a") == 0);
        cmqtt_message_free(copy);
        msg = NULL;
    }

    /* Callbacks: NULL callbacks are allowed (they clear); what a callback may and may not do */
    struct cb_state st = {.client = c, .modem = m};
    EXPECT(cmqtt_client_set_callbacks(c, NULL, NULL, NULL), CMQTT_OK);
    EXPECT(cmqtt_client_set_callbacks(c, &st, on_message, NULL), CMQTT_OK);
    EXPECT(cmqtt_modem_set_event_callback(m, NULL, NULL), CMQTT_OK);
    EXPECT(cmqtt_client_publish(c, "misuse/in/b", (const uint8_t *)"cb", 2, 1, false, 60),
           CMQTT_OK);
    CHECK(wait_for(&st.messages, 1, 10));
    CHECK(wait_for(&st.publish_in_callback_ok, 1, 10));
    CHECK(atomic_load(&st.free_client_refused) >= 1);
    CHECK(atomic_load(&st.free_modem_refused) >= 1);
    CHECK(atomic_load(&st.lent_free_ignored) >= 1);
    EXPECT(cmqtt_client_set_callbacks(c, NULL, NULL, NULL), CMQTT_OK);
    /* After clearing, messages are queued for receive again */
    EXPECT(cmqtt_client_publish(c, "misuse/in/a", (const uint8_t *)"again", 5, 1, false, 60),
           CMQTT_OK);
    EXPECT(cmqtt_client_receive(c, 10000, &msg), CMQTT_OK);
    cmqtt_message_free(msg);
    msg = NULL;

    /* Several threads publishing on one client */
    pthread_t threads[4];
    struct pub_thread pt[4];
    for (int i = 0; i < 4; i++) {
        pt[i].client = c;
        pt[i].id = i;
        pthread_create(&threads[i], NULL, publisher, &pt[i]);
    }
    int all = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        all += pt[i].ok;
    }
    printf("     4 threads x 5 publishes: %d ok\n", all);
    CHECK(all == 20);

    /* The second client index works alongside */
    EXPECT(cmqtt_client_acquire(m, 1, "misuse-c1", false, &c1), CMQTT_OK);
    CHECK(cmqtt_client_index(c1) == 1);

    /* Disconnect; then publishing is refused */
    EXPECT(cmqtt_client_unsubscribe(c, "misuse/in/a"), CMQTT_OK);
    EXPECT(cmqtt_client_disconnect(c, 0), CMQTT_OK);
    CHECK(!cmqtt_client_is_connected(c));
    EXPECT(cmqtt_client_publish(c, "misuse/x", p, 7, 1, false, 60), CMQTT_ERR_NOT_CONNECTED);
    EXPECT(cmqtt_client_subscribe(c, "misuse/x", 1), CMQTT_ERR_NOT_CONNECTED);
    EXPECT(cmqtt_client_unsubscribe(c, "misuse/x"), CMQTT_ERR_NOT_CONNECTED);

    /* Stop refuses while clients are acquired (the modem's error 21), then works */
    r = cmqtt_modem_stop(m);
    printf("     stop with clients acquired -> %u (%s), modem code %d\n", (unsigned)r,
           cmqtt_result_str(r), cmqtt_last_modem_code());
    CHECK(r != CMQTT_OK);

    /* Free the modem first: the clients keep the session alive */
    EXPECT(cmqtt_modem_free(m), CMQTT_OK);
    EXPECT(cmqtt_client_free(c1), CMQTT_OK);
    EXPECT(cmqtt_client_free(c), CMQTT_OK);
}

/* ---- the supervisor without a modem --------------------------------------------------------- */

/* A supervisor whose port does not exist: it keeps failing to open, publishes wait in the outbox. */
static cmqtt_supervisor_config offline_config(void) {
    cmqtt_supervisor_config cfg = cmqtt_supervisor_config_default();
    cfg.port = "/dev/cmqtt-misuse-no-such-port";
    cfg.client.client_id = "misuse-sup";
    cfg.server = "tcp://127.0.0.1:1883";
    cfg.backoff_initial_ms = 20;
    cfg.backoff_max_ms = 100;
    return cfg;
}

struct sup_state {
    cmqtt_supervisor *sup;
    cmqtt_delivery *ticket;
    atomic_int dropped_events;
    atomic_ullong dropped_id;
    atomic_int free_refused;
    atomic_int flush_refused;
    atomic_int flush_zero_timeout;
    atomic_int wait_refused;
    atomic_int waiting_events;
    int publish_on_waiting;                    /* publish from the first WAITING event */
    atomic_int publish_from_supervisor_thread; /* result + 1 of that publish */
    atomic_int stopped_events;
    atomic_int messages;
    atomic_int publish_in_message_ok;
    atomic_int free_in_message_refused;
    atomic_int lent_free_ignored;
    pthread_t main_thread;
    atomic_int stopped_on_main;
};

static void sup_on_event(void *userdata, const cmqtt_supervisor_event *e) {
    struct sup_state *st = userdata;
    CHECK_QUIET(e->text != NULL);
    if (e->kind == CMQTT_SUPERVISOR_EVENT_DROPPED) {
        atomic_fetch_add(&st->dropped_events, 1);
        atomic_store(&st->dropped_id, e->id);
        /* Not allowed from an event callback: freeing, waiting. Allowed: a zero timeout. */
        if (cmqtt_supervisor_free(st->sup) == CMQTT_ERR_IN_CALLBACK) {
            atomic_fetch_add(&st->free_refused, 1);
        }
        if (cmqtt_supervisor_flush(st->sup, 100) == CMQTT_ERR_IN_CALLBACK) {
            atomic_fetch_add(&st->flush_refused, 1);
        }
        if (cmqtt_supervisor_flush(st->sup, 0) == CMQTT_ERR_TIMEOUT) {
            atomic_fetch_add(&st->flush_zero_timeout, 1);
        }
        if (st->ticket && cmqtt_delivery_wait(st->ticket, 100) == CMQTT_ERR_IN_CALLBACK) {
            atomic_fetch_add(&st->wait_refused, 1);
        }
    }
    if (e->kind == CMQTT_SUPERVISOR_EVENT_STATE && e->state == CMQTT_STATE_WAITING) {
        /* On the supervisor thread, a publish into a full BLOCK outbox must not wait. */
        if (atomic_fetch_add(&st->waiting_events, 1) == 0 && st->publish_on_waiting) {
            cmqtt_result r = cmqtt_supervisor_publish(st->sup, "misuse/sup/cb",
                                                      (const uint8_t *)"x", 1, 1, false, NULL);
            atomic_store(&st->publish_from_supervisor_thread, (int)r + 1);
        }
    }
    if (e->kind == CMQTT_SUPERVISOR_EVENT_STATE && e->state == CMQTT_STATE_STOPPED) {
        atomic_fetch_add(&st->stopped_events, 1);
        if (pthread_equal(pthread_self(), st->main_thread)) {
            atomic_fetch_add(&st->stopped_on_main, 1);
        }
    }
}

static void supervisor_without_modem(void) {
    printf("\n== the supervisor without a modem\n");
    cmqtt_supervisor *s = (cmqtt_supervisor *)&failures; /* garbage: must be set to NULL */
    cmqtt_supervisor_config cfg = cmqtt_supervisor_config_default();
    cmqtt_delivery *d = (cmqtt_delivery *)&failures;
    cmqtt_message *msg = NULL;

    /* Defaults are the core's */
    CHECK(cfg.endpoint == CMQTT_ENDPOINT_SERIAL && cfg.modem.baud == 115200);
    CHECK(cfg.keepalive_s == 60 && cfg.clean_session && cfg.pub_timeout_s == 60);
    CHECK(cfg.outbox_capacity == 1000 && cfg.when_full == CMQTT_WHEN_FULL_BLOCK);
    CHECK(cfg.backoff_initial_ms == 500 && cfg.backoff_max_ms == 60000);
    CHECK(cfg.ssl_ctx == -1 && cfg.usb_interface == -1 && cfg.will_topic == NULL);

    /* NULL config, output, required fields */
    EXPECT(cmqtt_supervisor_new(NULL, &s), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(s == NULL);
    EXPECT(cmqtt_supervisor_new(&cfg, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_ERR_NULL_ARGUMENT); /* port NULL */
    CHECK(strstr(cmqtt_last_error_message(), "port") != NULL);
    cfg = offline_config();
    cfg.client.client_id = NULL;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(strstr(cmqtt_last_error_message(), "client_id") != NULL);
    cfg = offline_config();
    cfg.server = NULL;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(s == NULL);

    /* Bad configurations: refused at once, nothing started */
#define BAD_CONFIG(field_assignment, want)                                                         \
    do {                                                                                           \
        cfg = offline_config();                                                                    \
        field_assignment;                                                                          \
        EXPECT(cmqtt_supervisor_new(&cfg, &s), want);                                              \
        CHECK(s == NULL);                                                                          \
    } while (0)
    BAD_CONFIG(cfg.endpoint = 9, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.when_full = 7, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.modem.model = 42, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.server = BAD_UTF8, CMQTT_ERR_INVALID_UTF8);
    BAD_CONFIG(cfg.port = BAD_UTF8, CMQTT_ERR_INVALID_UTF8);
    BAD_CONFIG(cfg.password = BAD_UTF8, CMQTT_ERR_INVALID_UTF8);
    BAD_CONFIG(cfg.server = "http://127.0.0.1:1883", CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.server = "mqtts://127.0.0.1", CMQTT_ERR_INVALID_ARGUMENT); /* no TLS client */
    BAD_CONFIG(cfg.port = "usb:zz:1", CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.client.client_id = "has\"quote", CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.client.client_id = "", CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.client.check_utf8 = 5, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.index = 2, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.keepalive_s = 0, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.password = "pw-without-user", CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.backoff_jitter = 2.0, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.backoff_jitter = NAN, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG((cfg.backoff_initial_ms = 5000, cfg.backoff_max_ms = 100), CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.pub_timeout_s = 5, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.queue_capacity = 0, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.queue_capacity = UINT32_MAX, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.modem.queue_capacity = UINT32_MAX, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.outbox_capacity = SIZE_MAX, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.subscription_count = 2, CMQTT_ERR_NULL_ARGUMENT);
    cmqtt_subscription subs[2] = {{"misuse/sup/a", 1}, {"misuse/sup/b", 3}};
    BAD_CONFIG((cfg.subscriptions = subs, cfg.subscription_count = 2), CMQTT_ERR_INVALID_ARGUMENT);
    subs[1].topic = NULL;
    BAD_CONFIG((cfg.subscriptions = subs, cfg.subscription_count = 2), CMQTT_ERR_NULL_ARGUMENT);
    BAD_CONFIG(cfg.will_message_len = 4, CMQTT_ERR_INVALID_ARGUMENT); /* a message, no topic */
    BAD_CONFIG(cfg.will_topic = "misuse/will", CMQTT_ERR_INVALID_ARGUMENT); /* empty message */
    BAD_CONFIG((cfg.will_topic = "misuse/will", cfg.will_message_len = 4), CMQTT_ERR_NULL_ARGUMENT);
    BAD_CONFIG((cfg.will_topic = "misuse/will", cfg.will_message = (const uint8_t *)"gone",
                cfg.will_message_len = 4, cfg.will_qos = 3),
               CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.ssl_ctx = 10, CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG((cfg.ssl_ctx = 0, cfg.ssl.enable_sni = 7), CMQTT_ERR_INVALID_ARGUMENT);
    cmqtt_cert_file cert = {"dir/ca.pem", (const uint8_t *)"pem", 3};
    BAD_CONFIG((cfg.certs = &cert, cfg.cert_count = 1), CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG((cfg.endpoint = CMQTT_ENDPOINT_TCP, cfg.tcp_address = NULL), CMQTT_ERR_NULL_ARGUMENT);
    BAD_CONFIG((cfg.endpoint = CMQTT_ENDPOINT_TCP, cfg.tcp_address = "no port"),
               CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.endpoint = CMQTT_ENDPOINT_USB, CMQTT_ERR_INVALID_ARGUMENT); /* vid/pid 0 */
    BAD_CONFIG((cfg.endpoint = CMQTT_ENDPOINT_USB, cfg.usb_vid = 0x1e0e, cfg.usb_pid = 0x9011,
                cfg.usb_interface = 300),
               CMQTT_ERR_INVALID_ARGUMENT);
    BAD_CONFIG(cfg.outbox_path = "/nonexistent-cmqtt-dir/outbox.bin", CMQTT_ERR_IO);
    char not_outbox[] = "/tmp/cmqtt-misuse-not-outbox-XXXXXX";
    int fd = mkstemp(not_outbox);
    if (fd >= 0) {
        CHECK(write(fd, "not an outbox", 13) == 13);
        close(fd);
        BAD_CONFIG(cfg.outbox_path = not_outbox, CMQTT_ERR_INVALID_ARGUMENT);
        CHECK(strstr(cmqtt_last_error_message(), "not a cmqtt outbox file") != NULL);
        unlink(not_outbox);
    }
#undef BAD_CONFIG
    cfg = offline_config();
    cfg.endpoint = CMQTT_ENDPOINT_TCP;
    cfg.tcp_address = "127.0.0.1:9"; /* valid, nothing listens: accepted, keeps trying */
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_OK);
    EXPECT(cmqtt_supervisor_free(s), CMQTT_OK);
    s = NULL;

    /* NULL handles: refused; accessors give neutral values */
    EXPECT(cmqtt_supervisor_publish(NULL, "t", NULL, 0, 1, false, &d), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(d == NULL);
    EXPECT(cmqtt_supervisor_subscribe(NULL, "t", 1), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_receive(NULL, 0, &msg), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_set_callbacks(NULL, NULL, NULL, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_wait_connected(NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_flush(NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_delivery_wait(NULL, 0), CMQTT_ERR_NULL_ARGUMENT);
    CHECK(cmqtt_supervisor_state(NULL) == CMQTT_STATE_NONE);
    CHECK(cmqtt_supervisor_outbox_len(NULL) == 0);
    CHECK(cmqtt_delivery_id(NULL) == 0);
    CHECK(cmqtt_delivery_status(NULL) == CMQTT_DELIVERY_NONE);
    EXPECT(cmqtt_supervisor_free(NULL), CMQTT_OK);
    cmqtt_delivery_free(NULL);
    CHECK(strcmp(cmqtt_state_name(CMQTT_STATE_CONNECTED), "connected") == 0);
    CHECK(strcmp(cmqtt_state_name(CMQTT_STATE_WAITING), "waiting") == 0);
    CHECK(strcmp(cmqtt_state_name((cmqtt_state)77), "unknown") == 0);
    CHECK(strstr(cmqtt_result_str(CMQTT_ERR_OUTBOX_FULL), "full") != NULL);
    CHECK(CMQTT_ERR_OUTBOX_FULL == 400 && CMQTT_ERR_DELIVERY_DROPPED == 402);

    /* Drop-oldest: the first ticket is dropped, an event says so (on this thread, inside the
     * publish); what the event callback may not do is refused there */
    struct sup_state st;
    memset(&st, 0, sizeof st);
    st.main_thread = pthread_self();
    cfg = offline_config();
    cfg.outbox_capacity = 2;
    cfg.when_full = CMQTT_WHEN_FULL_DROP_OLDEST;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_OK);
    if (!s) return;
    st.sup = s;
    EXPECT(cmqtt_supervisor_set_callbacks(s, &st, NULL, sup_on_event), CMQTT_OK);
    cmqtt_delivery *t1 = NULL, *t2 = NULL, *t3 = NULL;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"1", 1, 1, false, &t1),
           CMQTT_OK);
    st.ticket = t1;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"2", 1, 2, true, &t2),
           CMQTT_OK);
    CHECK(cmqtt_delivery_id(t1) >= 1 && cmqtt_delivery_id(t2) == cmqtt_delivery_id(t1) + 1);
    CHECK(cmqtt_delivery_status(t1) == CMQTT_DELIVERY_QUEUED);
    EXPECT(cmqtt_delivery_wait(t1, 0), CMQTT_ERR_TIMEOUT);
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"3", 1, 1, false, &t3),
           CMQTT_OK);
    CHECK(cmqtt_delivery_status(t1) == CMQTT_DELIVERY_DROPPED);
    EXPECT(cmqtt_delivery_wait(t1, 1000), CMQTT_ERR_DELIVERY_DROPPED);
    CHECK(cmqtt_supervisor_outbox_len(s) == 2);
    CHECK(atomic_load(&st.dropped_events) == 1);
    CHECK(atomic_load(&st.dropped_id) == cmqtt_delivery_id(t1));
    CHECK(atomic_load(&st.free_refused) == 1);
    CHECK(atomic_load(&st.flush_refused) == 1);
    CHECK(atomic_load(&st.flush_zero_timeout) == 1);
    CHECK(atomic_load(&st.wait_refused) == 1);
    /* Publishing: bad arguments refused at once; the ticket is optional */
    d = (cmqtt_delivery *)&failures;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", NULL, 0, 3, false, &d),
           CMQTT_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    EXPECT(cmqtt_supervisor_publish(s, "", NULL, 0, 1, false, NULL), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_supervisor_publish(s, BAD_UTF8, NULL, 0, 1, false, NULL), CMQTT_ERR_INVALID_UTF8);
    EXPECT(cmqtt_supervisor_publish(s, NULL, NULL, 0, 1, false, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", NULL, 5, 1, false, NULL),
           CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_subscribe(s, "misuse/sup/#", 3), CMQTT_ERR_INVALID_ARGUMENT);
    EXPECT(cmqtt_supervisor_subscribe(s, BAD_UTF8, 1), CMQTT_ERR_INVALID_UTF8);
    EXPECT(cmqtt_supervisor_subscribe(s, "misuse/sup/#", 1), CMQTT_OK);
    EXPECT(cmqtt_supervisor_receive(s, 10, &msg), CMQTT_ERR_TIMEOUT);
    CHECK(msg == NULL);
    EXPECT(cmqtt_supervisor_receive(s, 10, NULL), CMQTT_ERR_NULL_ARGUMENT);
    EXPECT(cmqtt_supervisor_wait_connected(s, 50), CMQTT_ERR_TIMEOUT);
    EXPECT(cmqtt_supervisor_flush(s, 50), CMQTT_ERR_TIMEOUT);
    CHECK(strstr(cmqtt_last_error_message(), "outbox") != NULL);
    cmqtt_state state = cmqtt_supervisor_state(s);
    CHECK(state == CMQTT_STATE_OPENING || state == CMQTT_STATE_WAITING);
    st.ticket = NULL;
    EXPECT(cmqtt_supervisor_free(s), CMQTT_OK);
    CHECK(atomic_load(&st.stopped_events) == 1 && atomic_load(&st.stopped_on_main) == 1);
    /* Tickets outlive their supervisor, keeping their status */
    CHECK(cmqtt_delivery_status(t2) == CMQTT_DELIVERY_QUEUED);
    CHECK(cmqtt_delivery_status(t1) == CMQTT_DELIVERY_DROPPED);
    EXPECT(cmqtt_delivery_wait(t3, 10), CMQTT_ERR_TIMEOUT);
    cmqtt_delivery_free(t1);
    cmqtt_delivery_free(t2);
    cmqtt_delivery_free(t3);

    /* Error policy: a full outbox refuses */
    cfg = offline_config();
    cfg.outbox_capacity = 1;
    cfg.when_full = CMQTT_WHEN_FULL_ERROR;
    s = NULL;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_OK);
    if (!s) return;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"1", 1, 1, false, NULL),
           CMQTT_OK);
    d = (cmqtt_delivery *)&failures;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"2", 1, 1, false, &d),
           CMQTT_ERR_OUTBOX_FULL);
    CHECK(d == NULL && cmqtt_supervisor_outbox_len(s) == 1);
    EXPECT(cmqtt_supervisor_free(s), CMQTT_OK);

    /* Block policy: from the supervisor thread (an event callback) a publish into a full
     * outbox returns at once instead of waiting pub_timeout_s */
    memset(&st, 0, sizeof st);
    st.main_thread = pthread_self();
    cfg = offline_config();
    cfg.outbox_capacity = 1;
    s = NULL;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_OK);
    if (!s) return;
    st.sup = s;
    st.publish_on_waiting = 1;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/x", (const uint8_t *)"1", 1, 1, false,
                                    &st.ticket),
           CMQTT_OK);
    EXPECT(cmqtt_supervisor_set_callbacks(s, &st, NULL, sup_on_event), CMQTT_OK);
    CHECK(wait_for(&st.publish_from_supervisor_thread, 1, 10));
    CHECK(atomic_load(&st.publish_from_supervisor_thread) == (int)CMQTT_ERR_OUTBOX_FULL + 1);
    /* Clearing the callbacks: when it returns, they are not running */
    EXPECT(cmqtt_supervisor_set_callbacks(s, NULL, NULL, NULL), CMQTT_OK);
    int seen = atomic_load(&st.waiting_events);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(atomic_load(&st.waiting_events) == seen);
    EXPECT(cmqtt_supervisor_free(s), CMQTT_OK);
    CHECK(atomic_load(&st.stopped_events) == 0);
    cmqtt_delivery_free(st.ticket);
}

/* ---- a supervised session ------------------------------------------------------------------- */

static void sup_on_message(void *userdata, const cmqtt_message *msg) {
    struct sup_state *st = userdata;
    size_t len = 0;
    const char *topic = cmqtt_message_topic(msg, &len);
    if (cmqtt_supervisor_free(st->sup) == CMQTT_ERR_IN_CALLBACK) {
        atomic_fetch_add(&st->free_in_message_refused, 1);
    }
    if (strcmp(topic, "misuse/sup/in/cb") == 0 &&
        cmqtt_supervisor_publish(st->sup, "misuse/sup/out", (const uint8_t *)"r", 1, 1, false,
                                 NULL) == CMQTT_OK) {
        atomic_fetch_add(&st->publish_in_message_ok, 1);
    }
    cmqtt_message_free((cmqtt_message *)msg); /* lent: ignored */
    if (cmqtt_message_topic(msg, NULL) == topic) {
        atomic_fetch_add(&st->lent_free_ignored, 1);
    }
    atomic_fetch_add(&st->messages, 1);
}

static void with_supervisor(const char *port, const char *server) {
    printf("\n== a supervised session on %s with the broker %s\n", port, server);
    struct sup_state st;
    memset(&st, 0, sizeof st);
    st.main_thread = pthread_self();
    cmqtt_supervisor_config cfg = cmqtt_supervisor_config_default();
    cmqtt_subscription subs[] = {{"misuse/sup/in/#", 1}};
    cfg.port = port;
    cfg.client.client_id = "misuse-supervised";
    cfg.server = server;
    cfg.username = "misuse-user";
    cfg.password = PASSWORD;
    cfg.subscriptions = subs;
    cfg.subscription_count = 1;
    cfg.connect_timeout_ms = 10000;
    cfg.backoff_initial_ms = 100;
    cfg.backoff_max_ms = 1000;
    cmqtt_supervisor *s = NULL;
    EXPECT(cmqtt_supervisor_new(&cfg, &s), CMQTT_OK);
    if (!s) return;
    st.sup = s;
    EXPECT(cmqtt_supervisor_wait_connected(s, 30000), CMQTT_OK);
    CHECK(cmqtt_supervisor_state(s) == CMQTT_STATE_CONNECTED);
    CHECK(strstr(cmqtt_last_error_message(), PASSWORD) == NULL);

    /* Publish with a ticket; our own subscription brings it back for receive */
    cmqtt_delivery *d = NULL;
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/in/pull", (const uint8_t *)"pull\0x", 6, 1,
                                    false, &d),
           CMQTT_OK);
    EXPECT(cmqtt_delivery_wait(d, 30000), CMQTT_OK);
    CHECK(cmqtt_delivery_status(d) == CMQTT_DELIVERY_DELIVERED);
    cmqtt_message *msg = NULL;
    EXPECT(cmqtt_supervisor_receive(s, 10000, &msg), CMQTT_OK);
    if (msg) {
        size_t tl = 0, pl = 0;
        const char *mt = cmqtt_message_topic(msg, &tl);
        const uint8_t *mp = cmqtt_message_payload(msg, &pl);
        CHECK(strcmp(mt, "misuse/sup/in/pull") == 0 && tl == 18);
        CHECK(pl == 6 && memcmp(mp, "pull\0x", 6) == 0);
        cmqtt_message_free(msg);
    }

    /* A subscription added at run time, and the message callback */
    EXPECT(cmqtt_supervisor_subscribe(s, "misuse/sup/extra", 1), CMQTT_OK);
    EXPECT(cmqtt_supervisor_set_callbacks(s, &st, sup_on_message, sup_on_event), CMQTT_OK);
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/in/cb", (const uint8_t *)"cb", 2, 1, false,
                                    NULL),
           CMQTT_OK);
    CHECK(wait_for(&st.messages, 1, 10));
    CHECK(wait_for(&st.publish_in_message_ok, 1, 10));
    CHECK(atomic_load(&st.free_in_message_refused) >= 1);
    CHECK(atomic_load(&st.lent_free_ignored) >= 1);
    EXPECT(cmqtt_supervisor_flush(s, 30000), CMQTT_OK);
    CHECK(cmqtt_supervisor_outbox_len(s) == 0);
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/extra", (const uint8_t *)"e", 1, 1, false,
                                    NULL),
           CMQTT_OK);
    CHECK(wait_for(&st.messages, 2, 10));
    /* Back to queueing */
    EXPECT(cmqtt_supervisor_set_callbacks(s, &st, NULL, sup_on_event), CMQTT_OK);
    EXPECT(cmqtt_supervisor_publish(s, "misuse/sup/in/again", (const uint8_t *)"a", 1, 0, false,
                                    NULL),
           CMQTT_OK);
    msg = NULL;
    EXPECT(cmqtt_supervisor_receive(s, 10000, &msg), CMQTT_OK);
    cmqtt_message_free(msg);

    EXPECT(cmqtt_supervisor_free(s), CMQTT_OK);
    CHECK(atomic_load(&st.stopped_events) == 1 && atomic_load(&st.stopped_on_main) == 1);
    CHECK(cmqtt_delivery_status(d) == CMQTT_DELIVERY_DELIVERED);
    cmqtt_delivery_free(d);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("libcmqtt %s misuse tests\n", cmqtt_version());
    without_modem();
    supervisor_without_modem();
    const char *port = argc > 1 ? argv[1] : getenv("CMQTT_PORT");
    const char *server = argc > 2 ? argv[2] : getenv("CMQTT_SERVER");
    if (!server || !*server) server = "tcp://127.0.0.1:1883";
    if (port && *port) {
        with_modem(port, server);
        with_supervisor(port, server);
    } else {
        printf("\n(no PORT: skipped the checks that need a modem)\n");
    }
    printf("\n%d check(s), %d failure(s)\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
