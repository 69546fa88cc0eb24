/*
 * publish.c - publish messages through a SIMCom modem with libcmqtt.
 *
 *   publish [-p PORT] [-s SERVER] [-t TOPIC] [-m MESSAGE] [-n COUNT] [-q QOS] [-b BAUD] [-v]
 *
 * PORT defaults to $CMQTT_PORT (e.g. /dev/ttyUSB2, or the pty printed by `cmqtt sim`), SERVER to
 * $CMQTT_SERVER or tcp://127.0.0.1:1883. With COUNT > 1 each payload is "MESSAGE #i".
 * -v prints the AT trace on stderr. Exits 0 when every message was published.
 *
 * Build: cc -std=c11 -Wall -Wextra publish.c $(pkg-config --cflags --libs cmqtt)
 */
#define _POSIX_C_SOURCE 200809L
#include <cmqtt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, cmqtt_result r) {
    fprintf(stderr, "publish: %s failed: %s (%u)\n  %s\n", what, cmqtt_result_str(r), (unsigned)r,
            cmqtt_last_error_message());
    if (cmqtt_last_modem_code() >= 0) {
        fprintf(stderr, "  modem <err> code: %d\n", cmqtt_last_modem_code());
    }
    return 1;
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
    const char *topic = "cmqtt/example/c";
    const char *message = "hello from C";
    long count = 1, qos = 1;
    unsigned long baud = 115200;
    int verbose = 0, opt;
    while ((opt = getopt(argc, argv, "p:s:t:m:n:q:b:v")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 's': server = optarg; break;
        case 't': topic = optarg; break;
        case 'm': message = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'q': qos = strtol(optarg, NULL, 10); break;
        case 'b': baud = strtoul(optarg, NULL, 10); break;
        case 'v': verbose = 1; break;
        default:
            fprintf(stderr, "usage: %s [-p PORT] [-s SERVER] [-t TOPIC] [-m MESSAGE] [-n COUNT] "
                            "[-q QOS] [-b BAUD] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "publish: no port: pass -p PORT or set CMQTT_PORT\n");
        return 2;
    }
    printf("libcmqtt %s\n", cmqtt_version());

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
    printf("modem: %s (%s), firmware %s\n", cmqtt_modem_model_name(modem),
           cmqtt_model_name(cmqtt_modem_model(modem)), cmqtt_modem_firmware(modem));

    int status = 0;
    cmqtt_client *client = NULL;
    char client_id[64];
    snprintf(client_id, sizeof client_id, "cmqtt-c-publish-%ld", (long)getpid());
    if ((r = cmqtt_modem_start(modem)) != CMQTT_OK) {
        status = fail("start", r);
    } else if ((r = cmqtt_client_acquire(modem, 0, client_id, false, &client)) != CMQTT_OK) {
        status = fail("acquire", r);
    } else if ((r = cmqtt_client_connect(client, server, 60, true, NULL, NULL)) != CMQTT_OK) {
        status = fail("connect", r);
    } else {
        printf("connected to %s as %s\n", server, client_id);
        for (long i = 1; i <= count && status == 0; i++) {
            char payload[512];
            if (count > 1) {
                snprintf(payload, sizeof payload, "%s #%ld", message, i);
            } else {
                snprintf(payload, sizeof payload, "%s", message);
            }
            r = cmqtt_client_publish(client, topic, (const uint8_t *)payload, strlen(payload),
                                     (uint8_t)qos, false, 60);
            if (r != CMQTT_OK) {
                status = fail("publish", r);
            } else {
                printf("published %s: %s\n", topic, payload);
            }
        }
        if ((r = cmqtt_client_disconnect(client, 0)) != CMQTT_OK && status == 0) {
            status = fail("disconnect", r);
        }
    }
    /* Freeing the client releases its index; the modem goes last (either order is allowed). */
    if ((r = cmqtt_client_free(client)) != CMQTT_OK && status == 0) {
        status = fail("free client", r);
    }
    cmqtt_modem_free(modem);
    if (status == 0) {
        printf("done\n");
    }
    return status;
}
