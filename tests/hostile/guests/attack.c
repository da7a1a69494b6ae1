/* attack: a hostile tenant's function. The input is one command and its words; each command is
 * one attack (or a probe a test uses to look at what an attack left). Commands that end normally
 * set a result the test parses; the rest fault, hang or storm on purpose.
 *
 *   insn NAME            run one privileged or faulting instruction (see insn())
 *   peek ADDR | poke ADDR | jump ADDR    read, write or execute at a guest address (hex)
 *   recurse              unbounded recursion (a stack overflow)
 *   hc NR A0             a raw hypercall; result "ret=<eax>"
 *   port DIR SIZE PORT   one `in`/`out` of 1, 2 or 4 bytes on a port (hex); result "survived"
 *   outs                 a `rep outsb` of 16 bytes to the doorbell port
 *   grow N COUNT [hold KEY]  COUNT NX_HC_GROW(N) hypercalls, then (hold) wait until KEY exists;
 *                        result "granted=<k> refused=<m>"
 *   malloc SIZE          malloc(SIZE) until refused, every page touched; "chunks=<k> again=<0|1>"
 *   threads              create threads until refused; "made=<k> err=<e> joined=<j>"
 *   ring WHAT [hold]     write the channel's indices or entries as no honest guest does (ring());
 *                        "ring nopstorm": nops as fast as they are answered, until the host's stop
 *                        with hold, stay parked on the channel until the deadline
 *   scan HEX             count a marker in every byte this VM can read; "found=<n>" (1 is the
 *                        scanner's own copy)
 *   files N SIZE TAG     create files TAG-<i> of SIZE bytes until refused; "made=<k> err=<e>"
 *   dirs N TAG           create N nested directories under TAG, one more per call; "made=<k> err=<e>"
 *   wide N TAG           create N directories TAG-<i>/ each with a file; "made=<k> err=<e>"
 *   rmdir PATH...        remove each (empty) directory: file_delete with NX_DELETE_DIR;
 *                        "made=<removed> err=<last error>"
 *   append PATH SIZE N   N appends of SIZE bytes; "done=<k> err=<e>"
 *   write PATH OFF SIZE  one write of SIZE bytes at offset OFF (decimal); "ret=<r>"
 *   kvkeys N SIZE TAG    put keys TAG-<i> with SIZE-byte values until refused; "made=<k> err=<e>"
 *   kvbig SIZE           put one value of SIZE bytes; "ret=<r>"
 *   kvadd KEY DELTA      "ret=<r>"
 *   log N SIZE KIND      N log calls of SIZE bytes (KIND text|bin|forge); "ok=<k> err=<e>"
 *   durable N TAG        N rounds of (kv put TAG-<i>, append line i to TAG.log); the result has
 *                        one digit per round: bit 0 the put acknowledged, bit 1 the append
 *   name OP HEX          a raw request whose name (path or key) is any bytes; "ret=<r>"
 *   adds N KEY           N kv_adds of 1; "ok=<k> eio=<e> other=<o> last=<value>"
 *   smash                overwrite its own nx_main with ud2, then end normally
 *   threadfault          a second thread jumps to an unmapped address
 *   bigresult            exit with a result length of 2^32 - 1
 *   spin                 compute forever (only its deadline ends it)
 *   ping                 a channel round trip and a key lookup; "clock=<0|1> get=<r>"
 */
#include <nanvix.h>

#define RING ((struct nx_ring_hdr *)NX_GPA_CHANNEL)
#define SQ ((struct nx_sqe *)(NX_GPA_CHANNEL + NX_SQ_OFF))
#define CQ ((struct nx_cqe *)(NX_GPA_CHANNEL + NX_CQ_OFF))
#define DATA ((uint8_t *)(NX_GPA_CHANNEL + NX_DATA_OFF))
#define INFO ((struct nx_info *)NX_GPA_INFO)
#define MASK (NX_RING_ENTRIES - 1)

static char big[NX_DATA_SLOT];

/* ---- words of the input ------------------------------------------------------------------- */
static const char *in_p, *in_end;

static size_t word(char *w, size_t cap)
{
    while (in_p < in_end && *in_p == ' ')
        in_p++;
    size_t n = 0;
    while (in_p < in_end && *in_p != ' ' && n + 1 < cap)
        w[n++] = *in_p++;
    w[n] = 0;
    return n;
}

static long num(void)
{
    char w[32];
    size_t n = word(w, sizeof w);
    return nx_atol(w, n);
}

static uint64_t hex(void)
{
    char w[32];
    size_t n = word(w, sizeof w);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (c == 'x' || c == 'X')
            v = 0;
        else if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
    }
    return v;
}

/* The next word as hex digits -> bytes; returns how many. */
static size_t hexbytes(uint8_t *out, size_t cap)
{
    char hx[2 * 300 + 2];
    size_t hn = word(hx, sizeof hx), n = 0;
    for (size_t i = 0; i + 1 < hn && n < cap; i += 2) {
        const char *c = hx + i;
        int hi = c[0] <= '9' ? c[0] - '0' : c[0] - 'a' + 10, lo = c[1] <= '9' ? c[1] - '0' : c[1] - 'a' + 10;
        out[n++] = (uint8_t)(hi * 16 + lo);
    }
    return n;
}

static void fill(char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (char)('a' + (seed >> 33) % 26);
    }
}

/* ---- privileged and faulting instructions --------------------------------------------------- */
static int insn(const char *name)
{
    static const uint8_t desc[10] = {0};
    volatile int zero = 0;
    if (!strcmp(name, "hlt"))
        __asm__ volatile("hlt");
    else if (!strcmp(name, "cli"))
        __asm__ volatile("cli");
    else if (!strcmp(name, "sti"))
        __asm__ volatile("sti");
    else if (!strcmp(name, "wrmsr"))   /* IA32_LSTAR */
        __asm__ volatile("wrmsr" ::"c"(0xc0000082u), "a"(0x1000u), "d"(0u));
    else if (!strcmp(name, "rdmsr"))   /* IA32_EFER */
        __asm__ volatile("rdmsr" ::"c"(0xc0000080u) : "eax", "edx");
    else if (!strcmp(name, "lgdt"))
        __asm__ volatile("lgdt %0" ::"m"(desc));
    else if (!strcmp(name, "lidt"))
        __asm__ volatile("lidt %0" ::"m"(desc));
    else if (!strcmp(name, "ltr"))
        __asm__ volatile("ltr %w0" ::"r"(0x40));
    else if (!strcmp(name, "movcr3"))
        __asm__ volatile("mov %0, %%cr3" ::"r"(0x2000ull));
    else if (!strcmp(name, "movcr0"))
        __asm__ volatile("mov %0, %%cr0" ::"r"(0x11ull));
    else if (!strcmp(name, "invlpg"))
        __asm__ volatile("invlpg (%0)" ::"r"(0x400000ull) : "memory");
    else if (!strcmp(name, "int3"))
        __asm__ volatile("int3");
    else if (!strcmp(name, "int80"))
        __asm__ volatile("int $0x80");
    else if (!strcmp(name, "ud2"))
        __asm__ volatile("ud2");
    else if (!strcmp(name, "div0")) /* (in asm: gcc turns 1 / x into a compare) */
        __asm__ volatile("cqo\n idivq %1" ::"a"(1L), "r"((long)zero) : "rdx");
    else if (!strcmp(name, "syscall"))
        __asm__ volatile("syscall" ::: "rcx", "r11", "memory");
    else if (!strcmp(name, "sysret"))
        __asm__ volatile("sysretq" ::: "memory");
    else if (!strcmp(name, "sysenter"))
        __asm__ volatile("sysenter" ::: "memory");
    else if (!strcmp(name, "wbinvd"))
        __asm__ volatile("wbinvd");
    else if (!strcmp(name, "rdpmc"))
        __asm__ volatile("rdpmc" ::"c"(0u) : "eax", "edx");
    else if (!strcmp(name, "xsetbv"))
        __asm__ volatile("xsetbv" ::"c"(0u), "a"(7u), "d"(0u));
    else if (!strcmp(name, "swapgs"))
        __asm__ volatile("swapgs");
    else if (!strcmp(name, "iretq")) /* to CPL0 code with a forged frame */
        __asm__ volatile("pushq $0x2b\n pushq %%rsp\n pushq $0x2\n pushq $0x8\n pushq $0x400000\n iretq" ::: "memory");
    else if (!strcmp(name, "ljmp0")) /* a far jump through a GDT selector of its own choosing */
        __asm__ volatile("pushq $0x8\n pushq $0x400000\n lretq" ::: "memory");
    else if (!strcmp(name, "movss")) /* load a null stack segment */
        __asm__ volatile("mov %0, %%ss" ::"r"(0) : "memory");
    else if (!strcmp(name, "ptwrite")) /* the PML4 (supervisor-only) */
        *(volatile uint64_t *)NX_GPA_PML4 = 0x1000 | 7;
    else if (!strcmp(name, "gdtwrite"))
        *(volatile uint64_t *)(NX_GPA_GDT + 8) = 0x00af9b000000ffffull; /* a ring-0 code descriptor */
    else
        return -1;
    return 0;
}

/* ---- ring abuse ------------------------------------------------------------------------------ */
static uint32_t sq_tail, cq_head;

static void doorbell(void)
{
    __asm__ volatile("outb %%al, %0" ::"i"(NX_PORT_DOORBELL), "a"(0));
}

/* Submit one raw entry at the guest's private tail and wait for its answer (like malformed.c). */
static long raw(uint32_t opcode, uint32_t in_off, uint32_t in_len, uint32_t name_len, uint64_t arg)
{
    struct nx_sqe *e = &SQ[sq_tail & MASK];
    memset(e, 0, sizeof *e);
    e->opcode = opcode;
    e->user_data = 0xa77ac000u + sq_tail;
    e->in_off = in_off;
    e->in_len = in_len;
    e->name_len = name_len;
    e->arg = arg;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    RING->sq_tail = ++sq_tail;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    doorbell();
    while (RING->cq_tail == cq_head) {
        RING->cq_flags = NX_CQ_NOTIFY_ME;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (RING->cq_tail == cq_head)
            nx_hypercall(NX_HC_WAIT, 0, 0);
        RING->cq_flags = 0;
    }
    /* the answer must be to this request (as malformed.c checks): -1000 if another's */
    long r = CQ[cq_head & MASK].user_data == 0xa77ac000u + sq_tail - 1 ? (long)CQ[cq_head & MASK].result : -1000;
    RING->cq_head = ++cq_head;
    return r;
}

/* Wait (parked) until `n` more completions than cq_head are posted, or the deadline. */
static void await(uint32_t n)
{
    while (RING->cq_tail - cq_head < n) {
        RING->cq_flags = NX_CQ_NOTIFY_ME;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (RING->cq_tail - cq_head < n)
            nx_hypercall(NX_HC_WAIT, 0, 0);
        RING->cq_flags = 0;
    }
}

static void ring(const char *what)
{
    sq_tail = RING->sq_tail;
    cq_head = RING->cq_head;
    const uint32_t DS = (uint32_t)NX_DATA_SIZE;
    if (!strcmp(what, "sqahead")) {          /* sq_tail far past sq_head */
        RING->sq_tail = sq_tail + 1000;
        doorbell();
        nx_result("done", 4);
    } else if (!strcmp(what, "sqbehind")) {  /* sq_tail behind sq_head: "un-submit" */
        raw(NX_OP_NOP, 0, 0, 0, 0);
        RING->sq_tail = sq_tail - 5;
        doorbell();
        nx_result("done", 4);
    } else if (!strcmp(what, "cqahead")) {   /* cq_head past cq_tail, with one request posted */
        memcpy(DATA, "ctr", 3);
        RING->cq_head = cq_head + 1000;
        struct nx_sqe *e = &SQ[sq_tail & MASK];
        memset(e, 0, sizeof *e);
        e->opcode = NX_OP_KV_ADD;
        e->in_len = e->name_len = 3;
        e->arg = 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        RING->sq_tail = sq_tail + 1;
        doorbell();
        nx_result("done", 4);
    } else if (!strcmp(what, "owned")) {     /* forge every field the system VM owns, then use the SDK */
        RING->sq_head = sq_tail + 7;
        RING->sq_flags = 0xffffffffu;
        RING->magic = 0;
        RING->entries = 0xffffffffu;
        RING->data_off = 0xfffff000u;
        RING->data_size = 0xffffffffu;
        RING->slot_size = 1;
        long p = nx_kv_put("owned", "fine", 4);
        char b[8] = {0};
        long g = nx_kv_get("owned", b, 4);
        nx_result_printf("put=%ld get=%ld val=%s", p, g, b);
    } else if (!strcmp(what, "replay")) {    /* 64 kv_adds, then the same 64 entries again by
                                               * moving sq_tail only: each index is one request */
        memcpy(DATA, "replay", 6);
        for (uint32_t i = 0; i < NX_RING_ENTRIES; i++)
            raw(NX_OP_KV_ADD, 0, 6, 6, 1);
        RING->sq_tail = sq_tail += NX_RING_ENTRIES;
        doorbell();
        await(NX_RING_ENTRIES);
        long last = (long)CQ[(cq_head + NX_RING_ENTRIES - 1) & MASK].result;
        RING->cq_head = cq_head += NX_RING_ENTRIES;
        nx_result_printf("last=%ld", last);
    } else if (!strcmp(what, "plant")) {     /* fill every SQ entry with kv_adds, submit none */
        memcpy(DATA, "planted", 7);
        for (uint32_t i = 0; i < NX_RING_ENTRIES; i++) {
            struct nx_sqe *e = &SQ[i];
            memset(e, 0, sizeof *e);
            e->opcode = NX_OP_KV_ADD;
            e->in_len = e->name_len = 7;
            e->arg = 1;
        }
        nx_result("planted", 7);
    } else if (!strcmp(what, "fire")) {      /* submit whatever the SQ holds, 64 entries */
        RING->sq_tail = sq_tail += NX_RING_ENTRIES;
        doorbell();
        await(NX_RING_ENTRIES);
        long worst = 0;
        for (uint32_t i = 0; i < NX_RING_ENTRIES; i++) {
            long r = (long)CQ[(cq_head + i) & MASK].result;
            worst = r != 0 ? r : worst;
        }
        RING->cq_head = cq_head += NX_RING_ENTRIES;
        nx_result_printf("nonzero=%ld", worst);
    } else if (!strcmp(what, "scribble")) {  /* 64 requests, then garbage over every entry and the
                                               * data while the system VM reads them */
        memcpy(DATA, "scribbled", 9);
        for (uint32_t i = 0; i < NX_RING_ENTRIES; i++) {
            struct nx_sqe *e = &SQ[(sq_tail + i) & MASK];
            memset(e, 0, sizeof *e);
            e->opcode = NX_OP_KV_ADD;
            e->in_len = e->name_len = 9;
            e->arg = 1;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        RING->sq_tail = sq_tail + NX_RING_ENTRIES;
        doorbell();
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (long round = 0; round < 20000; round++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint32_t *w = (uint32_t *)&SQ[x & MASK];
            w[(x >> 8) % 16] = (uint32_t)(x >> 32);
            DATA[(x >> 20) % 4096] = (uint8_t)x;
            if (round % 64 == 0)
                doorbell();
        }
        nx_result("scribbled", 9);
    } else if (!strcmp(what, "noreap")) {    /* fill the CQ, never reap it, keep submitting */
        for (uint32_t i = 0; i < 2 * NX_RING_ENTRIES; i++) {
            while (RING->sq_tail - RING->sq_head >= NX_RING_ENTRIES)
                nx_hypercall(NX_HC_WAIT, 0, 0);  /* nothing will ever wake it: the deadline ends it */
            struct nx_sqe *e = &SQ[RING->sq_tail & MASK];
            memset(e, 0, sizeof *e);
            RING->sq_tail = RING->sq_tail + 1;
            doorbell();
        }
        for (;;)
            nx_hypercall(NX_HC_WAIT, 0, 0);
    } else if (!strcmp(what, "nopstorm")) {  /* a nop posted the moment a slot frees, each answer
                                               * reaped at once: work its system VM answers without
                                               * leaving its polling loop; until the host writes
                                               * command_arg[3] (the test's stop) */
        while (!((volatile uint64_t *)INFO->command_arg)[3]) {
            uint32_t t = RING->cq_tail;
            if (t != cq_head)
                RING->cq_head = cq_head = t;
            if (sq_tail - cq_head < NX_RING_ENTRIES) {
                struct nx_sqe *e = &SQ[sq_tail & MASK];
                memset(e, 0, sizeof *e);
                e->user_data = sq_tail;
                __atomic_thread_fence(__ATOMIC_RELEASE);
                RING->sq_tail = ++sq_tail;
                if (RING->sq_flags & NX_SQ_NEED_WAKEUP)
                    doorbell();
            }
        }
        nx_result("stopped", 7);
    } else if (!strcmp(what, "bounds")) {    /* every out-of-bounds entry kind, then a valid one */
        long r1 = raw(NX_OP_KV_GET, DS, 1, 0, 0);
        long r2 = raw(NX_OP_KV_GET, 0xffffffffu, 0xffffffffu, 0, 0);
        long r3 = raw(NX_OP_KV_GET, 16, 4, 5, 0);
        long r4 = raw(0x80000000u, 0, 0, 0, 0);
        memcpy(DATA, "k", 1);
        long r5 = raw(NX_OP_KV_ADD, 0, 1, 1, 3);
        nx_result_printf("%ld,%ld,%ld,%ld,%ld", r1, r2, r3, r4, r5);
    } else {
        nx_result("?", 1);
    }
}

/* ---- everything a guest can read -------------------------------------------------------------- */
static long scan_range(uint64_t lo, uint64_t hi, const uint8_t *m, size_t n)
{
    long found = 0;
    for (uint64_t a = lo; a + n <= hi; a++)
        if (*(volatile uint8_t *)a == m[0] && !memcmp((const void *)a, m, n))
            found++;
    return found;
}

/* ---- entry ------------------------------------------------------------------------------------ */
int nx_main(const char *input, size_t len)
{
    char cmd[16], w[256], tag[64];
    in_p = input;
    in_end = input + len;
    word(cmd, sizeof cmd);

    if (!strcmp(cmd, "insn")) {
        word(w, sizeof w);
        nx_result_printf("survived %s=%d", w, insn(w));
    } else if (!strcmp(cmd, "peek")) {
        nx_result_printf("read %lx", (unsigned long)*(volatile uint64_t *)hex());
    } else if (!strcmp(cmd, "poke")) {
        *(volatile uint64_t *)hex() = 0xdeadbeef;
        nx_result("survived", 8);
    } else if (!strcmp(cmd, "jump")) {
        ((void (*)(void))hex())();
        nx_result("survived", 8);
    } else if (!strcmp(cmd, "recurse")) {
        static volatile long depth;
        volatile char frame[512];
        frame[0] = (char)depth++;
        in_p = input;
        nx_main(input, len);   /* never returns normally */
        nx_result_printf("%d", frame[0]);
    } else if (!strcmp(cmd, "hc")) {
        uint32_t nr = (uint32_t)hex();
        uint64_t a0 = hex();
        nx_result_printf("ret=%lx", (unsigned long)nx_hypercall(nr, a0, 0));
    } else if (!strcmp(cmd, "port")) {
        char dir[8];
        word(dir, sizeof dir);
        long size = num();
        uint16_t port = (uint16_t)hex();
        uint32_t v = 0;
        if (dir[0] == 'i') {
            if (size == 1)
                __asm__ volatile("inb %%dx, %%al" : "=a"(v) : "d"(port));
            else if (size == 2)
                __asm__ volatile("inw %%dx, %%ax" : "=a"(v) : "d"(port));
            else
                __asm__ volatile("inl %%dx, %%eax" : "=a"(v) : "d"(port));
        } else {
            if (size == 1)
                __asm__ volatile("outb %%al, %%dx" ::"a"(0), "d"(port));
            else if (size == 2)
                __asm__ volatile("outw %%ax, %%dx" ::"a"(0), "d"(port));
            else
                __asm__ volatile("outl %%eax, %%dx" ::"a"(0), "d"(port));
        }
        nx_result_printf("survived %x", v);
    } else if (!strcmp(cmd, "outs")) {
        static const char bytes[16];
        const char *src = bytes;
        long cnt = 16;
        __asm__ volatile("rep outsb" : "+S"(src), "+c"(cnt) : "d"((uint16_t)NX_PORT_DOORBELL) : "memory");
        nx_result("survived", 8);
    } else if (!strcmp(cmd, "grow")) {
        uint64_t n = hex();
        long count = num(), granted = 0, refused = 0;
        for (long i = 0; i < count; i++) {
            if (nx_hypercall(NX_HC_GROW, n, 0))
                granted++;
            else
                refused++;
        }
        word(tag, sizeof tag);
        if (!strcmp(tag, "hold")) {   /* hold the pages until the key exists */
            char b[8];
            word(w, sizeof w);
            while (nx_kv_get(w, b, sizeof b) < 0)
                for (volatile int i = 0; i < 100000; i++)
                    ;
        }
        nx_result_printf("granted=%ld refused=%ld", granted, refused);
    } else if (!strcmp(cmd, "malloc")) {
        long size = num(), chunks = 0;
        static void *held[4096];
        for (; chunks < 4096; chunks++) {
            char *p = malloc((size_t)size);
            if (!p)
                break;
            for (long i = 0; i < size; i += 4096)
                p[i] = 1;
            held[chunks] = p;
        }
        for (long i = 0; i < chunks; i++)
            free(held[i]);
        void *again = malloc((size_t)size);
        nx_result_printf("chunks=%ld again=%d", chunks, again != 0);
    } else if (!strcmp(cmd, "threads")) {
        static nx_thread_t t[64];
        int made = 0, err = 0, joined = 0;
        while (made < 64) {
            err = nx_thread_create(&t[made], (void *(*)(void *))nx_thread_self, 0);
            if (err)
                break;
            made++;
        }
        for (int i = 0; i < made; i++)
            joined += nx_thread_join(t[i], 0) == 0;
        nx_result_printf("made=%d err=%d joined=%d", made, err, joined);
    } else if (!strcmp(cmd, "ring")) {
        word(w, sizeof w);
        ring(w);
        word(tag, sizeof tag);
        if (!strcmp(tag, "hold"))    /* stay on the channel until the deadline */
            for (;;)
                nx_hypercall(NX_HC_WAIT, 0, 0);
    } else if (!strcmp(cmd, "scan")) {
        uint8_t m[64];
        size_t n = hexbytes(m, sizeof m);
        /* the info block, the channel page, the RAM (image, heap, stacks): `m` itself is one
         * hit (the scanner's own control); the input holds the marker only as hex text */
        uint64_t ram_end = INFO->ram_base + INFO->ram_size;
        long found = scan_range(NX_GPA_INFO, NX_GPA_INFO + NX_INFO_SIZE, m, n) +
                     scan_range(NX_GPA_CHANNEL, NX_GPA_CHANNEL + NX_CHANNEL_SIZE, m, n) +
                     scan_range(INFO->ram_base, ram_end, m, n);
        nx_result_printf("found=%ld bytes=%lu", found, (unsigned long)(ram_end - INFO->ram_base));
    } else if (!strcmp(cmd, "files")) {
        long n = num(), size = num(), made = 0, err = 0;
        word(tag, sizeof tag);
        fill(big, (size_t)size, 1);
        for (; made < n; made++) {
            nx_snprintf(w, sizeof w, "%s-%ld", tag, made);
            long r = nx_file_write(w, big, (size_t)size, 0);
            if (r < 0) {
                err = r;
                break;
            }
        }
        nx_result_printf("made=%ld err=%ld", made, err);
    } else if (!strcmp(cmd, "dirs")) {
        long n = num(), made = 0, err = 0;
        word(tag, sizeof tag);
        size_t at = (size_t)nx_snprintf(w, sizeof w, "%s", tag);
        for (; made < n && at + 3 < sizeof w; made++) {
            nx_snprintf(w + at, sizeof w - at, "/f");
            long r = nx_file_write(w, "", 0, 0);
            if (r < 0) {
                err = r;
                break;
            }
            nx_file_delete(w);  /* the directory stays; the file is given back */
            at += (size_t)nx_snprintf(w + at, sizeof w - at, "/d");
        }
        nx_result_printf("made=%ld err=%ld", made, err);
    } else if (!strcmp(cmd, "rmdir")) {   /* file_delete with NX_DELETE_DIR, for each path */
        long ok = 0, err = 0;
        while (word(w, sizeof w)) {
            long r = nx_request(NX_OP_FILE_DELETE, NX_DELETE_DIR, w, (uint32_t)strlen(w), 0, 0, 0, 0, 0, 0);
            if (r < 0)
                err = r;
            else
                ok++;
        }
        nx_result_printf("made=%ld err=%ld", ok, err);
    } else if (!strcmp(cmd, "wide")) {
        long n = num(), made = 0, err = 0;
        word(tag, sizeof tag);
        for (; made < n; made++) {
            nx_snprintf(w, sizeof w, "%s-%ld/f", tag, made);
            long r = nx_file_write(w, "x", 1, 0);
            if (r < 0) {
                err = r;
                break;
            }
        }
        nx_result_printf("made=%ld err=%ld", made, err);
    } else if (!strcmp(cmd, "append")) {
        word(w, sizeof w);
        long size = num(), n = num(), done = 0, err = 0;
        fill(big, (size_t)size, 2);
        for (; done < n; done++) {
            long r = nx_file_append(w, big, (size_t)size);
            if (r < 0) {
                err = r;
                break;
            }
        }
        nx_result_printf("done=%ld err=%ld", done, err);
    } else if (!strcmp(cmd, "write")) {
        word(w, sizeof w);
        long off = num(), size = num();
        fill(big, (size_t)size, 3);
        nx_result_printf("ret=%ld", nx_request(NX_OP_FILE_WRITE, 0, w, (uint32_t)strlen(w), big,
                                               (uint32_t)size, 0, 0, (uint64_t)off, 0));
    } else if (!strcmp(cmd, "kvkeys")) {
        long n = num(), size = num(), made = 0, err = 0;
        word(tag, sizeof tag);
        fill(big, (size_t)size, 4);
        for (; made < n; made++) {
            nx_snprintf(w, sizeof w, "%s-%ld", tag, made);
            long r = nx_kv_put(w, big, (size_t)size);
            if (r < 0) {
                err = r;
                break;
            }
        }
        nx_result_printf("made=%ld err=%ld", made, err);
    } else if (!strcmp(cmd, "kvbig")) {
        long size = num();
        fill(big, (size_t)size, 5);
        nx_result_printf("ret=%ld", nx_kv_put("big", big, (size_t)size));
    } else if (!strcmp(cmd, "kvadd")) {
        word(w, sizeof w);
        long d = num();
        nx_result_printf("ret=%ld", nx_kv_add(w, d));
    } else if (!strcmp(cmd, "log")) {
        long n = num(), size = num(), ok = 0, err = 0;
        word(w, sizeof w);
        if (!strcmp(w, "bin")) {
            for (long i = 0; i < size; i++)
                big[i] = (char)(0x80 + i % 0x80);   /* not UTF-8 */
            for (long i = 0; i < size; i += 97)
                big[i] = '\n';
        } else if (!strcmp(w, "forge")) {
            size = nx_snprintf(big, sizeof big, "innocent\n2026-01-01T00:00:00Z sysvm forged line\r\x1b[2K");
        } else {
            fill(big, (size_t)size, 6);
        }
        for (long i = 0; i < n; i++) {
            long r = nx_request(NX_OP_LOG, 0, 0, 0, big, (uint32_t)size, 0, 0, 0, 0);
            if (r < 0)
                err = r;
            else
                ok++;
        }
        nx_result_printf("ok=%ld err=%ld", ok, err);
    } else if (!strcmp(cmd, "durable")) {
        long n = num();
        word(tag, sizeof tag);
        static char res[NX_RESULT_MAX];
        char key[80], line[80];
        for (long i = 0; i < n && i < (long)sizeof res; i++) {
            nx_snprintf(key, sizeof key, "%s-%ld", tag, i);
            int ln = nx_snprintf(line, sizeof line, "%ld\n", i);
            long p = nx_kv_put(key, line, (size_t)ln);
            nx_snprintf(w, sizeof w, "%s.log", tag);
            long a = nx_file_append(w, line, (size_t)ln);
            res[i] = (char)('0' + (p == ln) + 2 * (a == ln));
        }
        nx_result(res, (size_t)n);
    } else if (!strcmp(cmd, "name")) {
        long op = num();
        static uint8_t nm[300];
        size_t n = hexbytes(nm, sizeof nm);
        char out[64];
        nx_result_printf("ret=%ld", nx_request((uint32_t)op, 0, nm, (uint32_t)n, "v", 1, out, sizeof out, 0, 0));
    } else if (!strcmp(cmd, "adds")) {
        long n = num(), ok = 0, eio = 0, other = 0, last = 0;
        word(w, sizeof w);
        for (long i = 0; i < n; i++) {
            long r = nx_kv_add(w, 1);
            if (r > 0) {
                ok++;
                last = r;
            } else if (r == -NX_EIO) {
                eio++;
            } else {
                other++;
            }
        }
        nx_result_printf("ok=%ld eio=%ld other=%ld last=%ld", ok, eio, other, last);
    } else if (!strcmp(cmd, "smash")) {      /* its own code: ud2 over nx_main's first bytes */
        *(volatile uint16_t *)(uintptr_t)nx_main = 0x0b0f;
        nx_result("smashed", 7);
    } else if (!strcmp(cmd, "threadfault")) {
        nx_thread_t t;
        nx_thread_create(&t, (void *(*)(void *))(uintptr_t)0x10, 0);   /* a thread that jumps to 0x10 */
        nx_thread_join(t, 0);
        nx_result("survived", 8);
    } else if (!strcmp(cmd, "bigresult")) {  /* a result length no result area holds */
        INFO->result_len = 0xffffffffu;
        nx_hypercall(NX_HC_EXIT, 0, 0);
    } else if (!strcmp(cmd, "spin")) {
        for (volatile unsigned long i = 0;; i++)
            ;
    } else if (!strcmp(cmd, "ping")) {
        uint64_t c = nx_clock_ns();
        char b[8];
        nx_result_printf("clock=%d get=%ld", c > 0, nx_kv_get("__ping__", b, sizeof b));
    } else {
        nx_result("unknown command", 15);
        return 2;
    }
    return 0;
}
