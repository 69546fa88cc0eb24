/*
 * misuse.c - the C API under misuse: NULL handles and pointers, NULL callbacks, invalid UTF-8,
 * bad arguments, publishing after disconnect, calls from callbacks that are not allowed, the
 * password kept out of traces, several threads on one client.
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

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("libcmqtt %s misuse tests\n", cmqtt_version());
    without_modem();
    const char *port = argc > 1 ? argv[1] : getenv("CMQTT_PORT");
    const char *server = argc > 2 ? argv[2] : getenv("CMQTT_SERVER");
    if (!server || !*server) server = "tcp://127.0.0.1:1883";
    if (port && *port) {
        with_modem(port, server);
    } else {
        printf("\n(no PORT: skipped the checks that need a modem)\n");
    }
    printf("\n%d check(s), %d failure(s)\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
