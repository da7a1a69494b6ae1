/* io: a small I/O tool for tests. The input is a list of commands separated by ';':
 *   kvput KEY VALUE | kvget KEY | kvdel KEY | kvadd KEY DELTA
 *   fwrite PATH DATA | fappend PATH DATA | fread PATH | fsize PATH | fdel PATH
 * The result lists one answer per command, separated by ';': the call's return value, then
 * ':' and the bytes read for kvget/fread when it succeeded. Always exits 0. */
#include <nanvix.h>

static char out[8192];
static size_t olen;

static void emit(const char *s, size_t n)
{
    if (olen + n > sizeof out)
        n = sizeof out - olen;
    memcpy(out + olen, s, n);
    olen += n;
}

static void emit_num(long v)
{
    char b[32];
    int n = nx_snprintf(b, sizeof b, "%ld", v);
    emit(b, (size_t)n);
}

/* Next space-separated word of [*p, end) copied into w (NUL-terminated). */
static size_t word(const char **p, const char *end, char *w, size_t cap)
{
    while (*p < end && **p == ' ')
        (*p)++;
    size_t n = 0;
    while (*p < end && **p != ' ' && n + 1 < cap)
        w[n++] = *(*p)++;
    w[n] = 0;
    return n;
}

static void run(const char *p, const char *end)
{
    char op[16], name[300], buf[4096];
    word(&p, end, op, sizeof op);
    word(&p, end, name, sizeof name);
    if (p < end && *p == ' ')
        p++;
    const char *val = p;
    size_t vlen = (size_t)(end - p);
    long r;
    if (!strcmp(op, "kvput")) {
        r = nx_kv_put(name, val, vlen);
    } else if (!strcmp(op, "kvget")) {
        r = nx_kv_get(name, buf, sizeof buf);
        emit_num(r);
        if (r >= 0) {
            emit(":", 1);
            emit(buf, r < (long)sizeof buf ? (size_t)r : sizeof buf);
        }
        return;
    } else if (!strcmp(op, "kvdel")) {
        r = nx_kv_delete(name);
    } else if (!strcmp(op, "kvadd")) {
        r = nx_kv_add(name, nx_atol(val, vlen));
    } else if (!strcmp(op, "fwrite")) {
        r = nx_file_write(name, val, vlen, 0);
    } else if (!strcmp(op, "fappend")) {
        r = nx_file_append(name, val, vlen);
    } else if (!strcmp(op, "fread")) {
        r = nx_file_read(name, buf, sizeof buf, 0);
        emit_num(r);
        if (r >= 0) {
            emit(":", 1);
            emit(buf, (size_t)r);
        }
        return;
    } else if (!strcmp(op, "fsize")) {
        r = nx_file_size(name);
    } else if (!strcmp(op, "fdel")) {
        r = nx_file_delete(name);
    } else {
        emit("?", 1);
        return;
    }
    emit_num(r);
}

int nx_main(const char *input, size_t len)
{
    const char *p = input, *end = input + len;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != ';')
            q++;
        if (p != input)
            emit(";", 1);
        run(p, q);
        p = q < end ? q + 1 : q;
    }
    nx_result(out, olen);
    return 0;
}
