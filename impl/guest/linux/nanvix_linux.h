/* The Linux-ABI layer's own interface, shared by the layer (linux.c), the image builder's boot
 * block (image.py writes struct nx_limage) and the programs built for nanvix (the JavaScript and
 * Python drivers): a few private system calls, above Linux's numbers. */
#ifndef NANVIX_LINUX_H
#define NANVIX_LINUX_H

#include <stdint.h>

#define NX_SYS_SNAPSHOT 500   /* () the interpreter is ready: the host snapshots the VM here */
#define NX_SYS_RESULT 501     /* (buf, len) the invocation's result */
#define NX_SYS_REQUEST 502    /* (struct nx_sys_request *) a kv or log request; 0 or -errno if
                               * the request itself is bad; its answer in .result */

struct nx_sys_request {
    uint32_t opcode;          /* NX_OP_LOG or NX_OP_KV_* only: files go through the fd table */
    uint32_t name_len;
    const void *name;         /* the key */
    const void *value;
    uint32_t value_len;
    uint32_t out_cap;
    void *out;
    uint64_t arg;
    uint32_t out_len;         /* written back: bytes at out */
    uint32_t _rsvd;
    int64_t result;           /* written back: the request's result (>= 0, or -NX_E*) */
};

/* The boot block of an image (nx_linux_image, generated per image by image.py). */
#define NX_LIMG_STDOUT_RESULT 1u   /* fd 1 is the invocation's result (else the log) */
#define NX_LIMG_SNAPSHOT_AT_ENTRY 2u /* snapshot before the program starts (else it asks) */

struct nx_lfile {             /* a read-only file built into the image, under /.nanvix/ */
    const char *name;         /* "handler.py" */
    const uint8_t *data;
    uint64_t len;
};

struct nx_limage {
    uint64_t entry, phdr, phnum, phent;
    uint64_t stack_size;
    uint32_t flags, argc, envc, nfiles;
    const char *const *argv;
    const char *const *envp;
    const struct nx_lfile *files;
};

/* A program calls them with musl's syscall(2) function, e.g. syscall(NX_SYS_SNAPSHOT). */

#endif
