/* A little freestanding libc for functions: strings, formatting, and malloc on the microkernel's
 * brk heap and frame allocator. */
#include "nanvix.h"

void *memcpy(void *d, const void *s, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dd = d;
    const uint8_t *ss = s;
    if (dd == ss || n == 0)
        return d;
    if (dd < ss || dd >= ss + n)
        return memcpy(d, s, n);
    while (n--)
        dd[n] = ss[n];
    return d;
}

void *memset(void *d, int c, size_t n)
{
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return (uint8_t)a[i] < (uint8_t)b[i] ? -1 : 1;
        if (!a[i])
            return 0;
    }
    return 0;
}

int strcmp(const char *a, const char *b) { return strncmp(a, b, (size_t)-1); }

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return 0;
    }
}

long nx_atol(const char *s, size_t len)
{
    long v = 0;
    int neg = 0;
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t'))
        i++;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    return neg ? -v : v;
}

/* ---- formatting: %d %i %u %x %p %s %c %%, with l/z/ll sizes and a field width ---------------- */

struct out {
    char *buf;
    size_t cap, n;
};

static void put(struct out *o, char c)
{
    if (o->n + 1 < o->cap)
        o->buf[o->n] = c;
    o->n++;
}

static void put_num(struct out *o, uint64_t v, int base, int neg, int width, char pad)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[k++] = '-';
    for (int w = k; w < width; w++)
        put(o, pad);
    while (k)
        put(o, tmp[--k]);
}

int nx_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out o = {buf, cap, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0')
            pad = '0';
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(&o, v < 0 ? (uint64_t)-v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_num(&o, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
            break;
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (uint64_t)va_arg(ap, void *), 16, 0, width, pad);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                put(&o, *s);
            break;
        }
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case '%':
            put(&o, '%');
            break;
        default:
            return -1;
        }
    }
    if (cap)
        buf[o.n < cap ? o.n : cap - 1] = 0;
    return (int)o.n;
}

int nx_snprintf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = nx_vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- malloc: an address-ordered free list with coalescing; big blocks get their own pages ---- */

#define ALIGN 16
#define BIG (128 * 1024)
#define ARENA (64 * 1024)

struct chunk {
    size_t size;        /* bytes including this header; low bit set = a page-backed big block */
    struct chunk *next; /* free list only */
};
#define HDR sizeof(struct chunk)
static struct chunk *free_list;

static void free_insert(struct chunk *c)
{
    struct chunk **pp = &free_list;
    while (*pp && *pp < c)
        pp = &(*pp)->next;
    c->next = *pp;
    *pp = c;
    if (c->next && (uint8_t *)c + c->size == (uint8_t *)c->next) {
        c->size += c->next->size;
        c->next = c->next->next;
    }
    if (pp != &free_list) {
        struct chunk *prev = (struct chunk *)((uint8_t *)pp - __builtin_offsetof(struct chunk, next));
        if ((uint8_t *)prev + prev->size == (uint8_t *)c) {
            prev->size += c->size;
            prev->next = c->next;
        }
    }
}

static int grow(size_t need)
{
    size_t n = need > ARENA ? need : ARENA;
    n = (n + NX_PAGE_4K - 1) & ~(NX_PAGE_4K - 1);
    void *p = nx_sbrk((long)n);
    if (p == (void *)-1)
        p = nx_mmap(n);
    if (!p)
        return 0;
    struct chunk *c = p;
    c->size = n;
    free_insert(c);
    return 1;
}

void *malloc(size_t n)
{
    if (n == 0)
        n = 1;
    if (n > ((size_t)1 << 40))
        return 0;
    size_t need = (n + HDR + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need >= BIG) {
        size_t bytes = (need + NX_PAGE_4K - 1) & ~(NX_PAGE_4K - 1);
        struct chunk *c = nx_mmap(bytes);
        if (!c)
            return 0;
        c->size = bytes | 1;
        return c + 1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        for (struct chunk **pp = &free_list; *pp; pp = &(*pp)->next) {
            struct chunk *c = *pp;
            if (c->size < need)
                continue;
            if (c->size - need >= HDR + ALIGN) {
                struct chunk *rest = (struct chunk *)((uint8_t *)c + need);
                rest->size = c->size - need;
                rest->next = c->next;
                *pp = rest;
                c->size = need;
            } else {
                *pp = c->next;
            }
            return c + 1;
        }
        if (!grow(need))
            return 0;
    }
    return 0;
}

void free(void *p)
{
    if (!p)
        return;
    struct chunk *c = (struct chunk *)p - 1;
    if (c->size & 1)
        nx_munmap(c, c->size & ~(size_t)1);
    else
        free_insert(c);
}

void *calloc(size_t n, size_t size)
{
    if (size && n > ((size_t)-1) / size)
        return 0;
    void *p = malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    struct chunk *c = (struct chunk *)p - 1;
    size_t have = (c->size & ~(size_t)1) - HDR;
    if (n <= have)
        return p;
    void *q = malloc(n);
    if (q) {
        memcpy(q, p, have);
        free(p);
    }
    return q;
}
