/*
 * tmqtt-pub — publish one message (or each line of stdin, or the same message
 * N times) to an MQTT broker, then disconnect. A thin main over the client
 * library's blocking layer; flags as mosquitto_pub. Exit status 0 when every
 * publish completed (QoS 1: PUBACK, QoS 2: PUBCOMP), 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tools_common.h"

/* Wait while still serving the connection (keep-alive, acks). */
static void wait_s(tm_client *c, double s)
{
    if (s > 0)
        tm_sync_run_until(c, NULL, NULL, (int)(s * 1000.0));
}

static int publish_one(tm_tool *t, tm_client *c, const void *p, size_t len)
{
    char err[512];
    const tm_props *props = t->copt.version == TM_V5 ? &t->p_publish.props : NULL;
    if (tm_sync_publish(c, t->topic, p, len, (uint8_t)t->qos, t->retain, props,
                        TM_TOOL_TIMEOUT_MS, err, sizeof err) < 0) {
        tm_tools_err(t, "publish to '%s' failed: %s", t->topic, err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tm_tool t;
    int r = tm_tools_parse(&t, TM_TOOL_PUB, argc, argv);
    if (r != 0) {
        tm_tools_free(&t);
        return r > 0 ? 0 : 1;
    }
    tm_client *c;
    if (tm_tools_connect(&t, &c) < 0) {
        tm_tools_free(&t);
        return 1;
    }
    int rc = 0;
    if (t.msg_mode == TM_MSG_LINES) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            if (n > 0 && line[n - 1] == '\r')
                n--;
            if (publish_one(&t, c, line, (size_t)n) < 0)
                rc = 1;
        }
        free(line);
    } else {
        const void *p = t.msg_mode == TM_MSG_NULL ? "" : (const void *)t.message;
        size_t len = t.msg_mode == TM_MSG_NULL ? 0 : t.message_len;
        for (long i = 0; i < t.repeat && rc == 0; i++) {
            if (i > 0)
                wait_s(c, t.repeat_delay);
            if (publish_one(&t, c, p, len) < 0)
                rc = 1;
        }
    }
    if (tm_client_get_state(c) == TM_CS_CONNECTED)
        tm_sync_disconnect(c, 0, t.copt.version == TM_V5 ? &t.p_disconnect.props : NULL,
                           TM_TOOL_TIMEOUT_MS);
    else
        tm_client_free(c);
    tm_tools_free(&t);
    return rc;
}
