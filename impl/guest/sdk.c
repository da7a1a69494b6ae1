/* The SDK's I/O calls: each one is a request on the channel (nx_request in the microkernel).
 * Calls larger than one request's data slot are split here. */
#include "nanvix.h"

static uint32_t name_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > NX_NAME_MAX ? NX_NAME_MAX + 1 : (uint32_t)n; /* the system VM refuses it */
}

#define CHUNK (NX_DATA_SLOT - NX_NAME_MAX - 1)

long nx_log(const char *msg, size_t len)
{
    size_t done = 0;
    do {
        uint32_t n = (uint32_t)(len - done < CHUNK ? len - done : CHUNK);
        long r = nx_request(NX_OP_LOG, 0, 0, 0, msg + done, n, 0, 0, 0, 0);
        if (r < 0)
            return r;
        done += n;
    } while (done < len);
    return (long)len;
}

int nx_printf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = nx_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return n;
    return (int)nx_log(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

int nx_result_printf(const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = nx_vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= 0)
        nx_result(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    return n;
}

size_t nx_file_pread(const char *path, void *buf, size_t cap, uint64_t offset, long *err)
{
    size_t done = 0;
    *err = 0;
    while (done < cap) {
        uint32_t want = (uint32_t)(cap - done < NX_DATA_SLOT ? cap - done : NX_DATA_SLOT), got = 0;
        long r = nx_request(NX_OP_FILE_READ, 0, path, name_len(path), 0, 0, (uint8_t *)buf + done,
                            want, offset + done, &got);
        if (r < 0) {
            *err = r;
            break;
        }
        done += got;
        if (got < want)
            break;
    }
    return done;
}

size_t nx_file_pwrite(const char *path, const void *buf, size_t len, uint64_t offset, uint32_t flags,
                      long *err, uint64_t *end)
{
    size_t done = 0;
    *err = 0;
    do {
        uint32_t n = (uint32_t)(len - done < CHUNK ? len - done : CHUNK), got = 0;
        uint64_t at = 0;
        long r = nx_request(NX_OP_FILE_WRITE, done ? flags & ~NX_WRITE_TRUNC : flags, path, name_len(path),
                            (const uint8_t *)buf + done, n, end ? &at : 0, end ? sizeof at : 0, offset + done, &got);
        if (r < 0) {
            *err = r;
            break;
        }
        done += n;
        if (end)   /* the system VM's answer: the file's size after an append */
            *end = got == sizeof at ? at : offset + done;
    } while (done < len);
    return done;
}

long nx_file_read(const char *path, void *buf, size_t cap, uint64_t offset)
{
    long err;
    size_t n = nx_file_pread(path, buf, cap, offset, &err);
    return err ? err : (long)n;
}

long nx_file_write(const char *path, const void *buf, size_t len, uint64_t offset)
{
    long err;
    nx_file_pwrite(path, buf, len, offset, NX_WRITE_TRUNC, &err, 0);
    return err ? err : (long)len;
}

long nx_file_append(const char *path, const void *buf, size_t len)
{
    long err;
    nx_file_pwrite(path, buf, len, 0, NX_WRITE_APPEND, &err, 0);
    return err ? err : (long)len;
}

long nx_file_size(const char *path)
{
    return nx_request(NX_OP_FILE_SIZE, 0, path, name_len(path), 0, 0, 0, 0, 0, 0);
}

long nx_file_delete(const char *path)
{
    return nx_request(NX_OP_FILE_DELETE, 0, path, name_len(path), 0, 0, 0, 0, 0, 0);
}

long nx_kv_get(const char *key, void *buf, size_t cap)
{
    uint32_t got = 0;
    uint32_t c = (uint32_t)(cap < NX_DATA_SLOT ? cap : NX_DATA_SLOT);
    long r = nx_request(NX_OP_KV_GET, 0, key, name_len(key), 0, 0, buf, c, 0, &got);
    return r; /* the full value length; at most cap bytes were copied */
}

long nx_kv_put(const char *key, const void *val, size_t len)
{
    if (len > CHUNK)
        return -NX_E2BIG;
    return nx_request(NX_OP_KV_PUT, 0, key, name_len(key), val, (uint32_t)len, 0, 0, 0, 0);
}

long nx_kv_delete(const char *key)
{
    return nx_request(NX_OP_KV_DELETE, 0, key, name_len(key), 0, 0, 0, 0, 0, 0);
}

long nx_kv_add(const char *key, int64_t delta)
{
    return nx_request(NX_OP_KV_ADD, 0, key, name_len(key), 0, 0, 0, 0, (uint64_t)delta, 0);
}

uint64_t nx_clock_ns(void)
{
    long r = nx_request(NX_OP_CLOCK, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    return r < 0 ? 0 : (uint64_t)r;
}
