/* The JavaScript driver, run by QuickJS in the user VM: load the function (handler.js, built into
 * the image, a script that defines a global `function handle(data)`), stop at the snapshot point,
 * then per invocation call handle(input as a string) and hand back the string it returns (or the
 * value of a promise it returns). console.log and print write to stdout, which is the invocation's
 * log; an exception goes to stderr, the log too. The `std` and `os` modules of quickjs-libc are
 * globals (their file functions map to the tenant's tree), and `nanvix` holds kv and log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "quickjs.h"
#include "quickjs-libc.h"

#include "nanvix_abi.h"
#include "nanvix_linux.h"

void JS_NanvixReseed(JSContext *ctx, uint64_t seed);   /* added to quickjs.c by the build */

static uint8_t value_buf[NX_DATA_SLOT];

static JSValue request(JSContext *ctx, uint32_t op, JSValueConst key, const void *val, size_t vlen,
                       uint64_t arg, int64_t *result, uint32_t *got)
{
    size_t klen = 0;
    const char *k = JS_IsUndefined(key) ? NULL : JS_ToCStringLen(ctx, &klen, key);
    if (!JS_IsUndefined(key) && !k)
        return JS_EXCEPTION;
    struct nx_sys_request r = {
        .opcode = op, .name = k ? k : "", .name_len = (uint32_t)klen, .value = val, .value_len = (uint32_t)vlen,
        .out = value_buf, .out_cap = got ? sizeof value_buf : 0, .arg = arg,
    };
    long e = syscall(NX_SYS_REQUEST, &r);
    if (k)
        JS_FreeCString(ctx, k);
    if (e != 0)
        return JS_ThrowInternalError(ctx, "nanvix: request refused (errno %d)", errno);
    *result = r.result;
    if (got)
        *got = r.out_len;
    return JS_UNDEFINED;
}

static JSValue throw_code(JSContext *ctx, const char *what, int64_t r)
{
    return JS_ThrowInternalError(ctx, "nanvix.%s: %s", what, strerror((int)-r));
}

static JSValue kv_get(JSContext *ctx, JSValueConst this, int argc, JSValueConst *argv)
{
    int64_t r;
    uint32_t got = 0;
    if (JS_IsException(request(ctx, NX_OP_KV_GET, argv[0], NULL, 0, 0, &r, &got)))
        return JS_EXCEPTION;
    if (r == -NX_ENOENT)
        return JS_NULL;
    if (r < 0)
        return throw_code(ctx, "kv_get", r);
    return JS_NewStringLen(ctx, (const char *)value_buf, got);
}

static JSValue kv_put(JSContext *ctx, JSValueConst this, int argc, JSValueConst *argv)
{
    size_t n;
    const char *v = JS_ToCStringLen(ctx, &n, argv[1]);
    if (!v)
        return JS_EXCEPTION;
    int64_t r;
    JSValue e = request(ctx, NX_OP_KV_PUT, argv[0], v, n, 0, &r, NULL);
    JS_FreeCString(ctx, v);
    if (JS_IsException(e))
        return e;
    return r < 0 ? throw_code(ctx, "kv_put", r) : JS_UNDEFINED;
}

static JSValue kv_add(JSContext *ctx, JSValueConst this, int argc, JSValueConst *argv)
{
    int64_t delta = 1, r;
    if (argc > 1 && JS_ToInt64(ctx, &delta, argv[1]))
        return JS_EXCEPTION;
    if (JS_IsException(request(ctx, NX_OP_KV_ADD, argv[0], NULL, 0, (uint64_t)delta, &r, NULL)))
        return JS_EXCEPTION;
    if (r < 0 && r >= -133)   /* (an error code; a counter that low is not told apart) */
        return throw_code(ctx, "kv_add", r);
    return JS_NewInt64(ctx, r);
}

static JSValue kv_delete(JSContext *ctx, JSValueConst this, int argc, JSValueConst *argv)
{
    int64_t r;
    if (JS_IsException(request(ctx, NX_OP_KV_DELETE, argv[0], NULL, 0, 0, &r, NULL)))
        return JS_EXCEPTION;
    if (r < 0 && r != -NX_ENOENT)
        return throw_code(ctx, "kv_delete", r);
    return JS_NewBool(ctx, r == 0);
}

static JSValue nx_log(JSContext *ctx, JSValueConst this, int argc, JSValueConst *argv)
{
    size_t n;
    const char *m = JS_ToCStringLen(ctx, &n, argv[0]);
    if (!m)
        return JS_EXCEPTION;
    fflush(stdout);   /* (console.log's lines first, in order) */
    int64_t r;
    JSValue e = request(ctx, NX_OP_LOG, JS_UNDEFINED, m, n, 0, &r, NULL);
    JS_FreeCString(ctx, m);
    return e;
}

static const JSCFunctionListEntry nanvix_funcs[] = {
    JS_CFUNC_DEF("kv_get", 1, kv_get),
    JS_CFUNC_DEF("kv_put", 2, kv_put),
    JS_CFUNC_DEF("kv_add", 2, kv_add),
    JS_CFUNC_DEF("kv_delete", 1, kv_delete),
    JS_CFUNC_DEF("log", 1, nx_log),
};

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

static int fail(JSContext *ctx)
{
    js_std_dump_error(ctx);
    fflush(stdout);
    fflush(stderr);
    return 1;
}

int main(int argc, char **argv)
{
    JSRuntime *rt = JS_NewRuntime();
    js_std_init_handlers(rt);
    JS_SetModuleLoaderFunc(rt, NULL, js_module_loader, NULL);
    JS_SetMaxStackSize(rt, 512 * 1024);
    JSContext *ctx = JS_NewContext(rt);
    js_init_module_std(ctx, "std");
    js_init_module_os(ctx, "os");
    js_std_add_helpers(ctx, 0, NULL);
    static const char globals[] = "import * as std from 'std'; import * as os from 'os';"
                                  "globalThis.std = std; globalThis.os = os;";
    JSValue v = JS_Eval(ctx, globals, sizeof globals - 1, "<nanvix>", JS_EVAL_TYPE_MODULE);
    if (JS_IsException(v))
        return fail(ctx);
    v = js_std_await(ctx, v);
    if (JS_IsException(v))
        return fail(ctx);
    JS_FreeValue(ctx, v);
    JSValue global = JS_GetGlobalObject(ctx);
    JSValue nx = JS_NewObject(ctx);
    JS_SetPropertyFunctionList(ctx, nx, nanvix_funcs, sizeof nanvix_funcs / sizeof nanvix_funcs[0]);
    JS_SetPropertyStr(ctx, global, "nanvix", nx);

    FILE *f = fopen("/.nanvix/handler.js", "rb");
    if (!f) {
        fprintf(stderr, "nanvix: no handler.js in the image\n");
        return 2;
    }
    size_t len;
    char *src = slurp(f, &len);
    fclose(f);
    v = JS_Eval(ctx, src, len, "handler.js", JS_EVAL_TYPE_GLOBAL);
    free(src);
    if (JS_IsException(v))
        return fail(ctx);
    JS_FreeValue(ctx, v);
    JSValue handle = JS_GetPropertyStr(ctx, global, "handle");
    if (!JS_IsFunction(ctx, handle)) {
        fprintf(stderr, "handler.js defines no global function handle(data)\n");
        return 2;
    }

    syscall(NX_SYS_SNAPSHOT);   /* --- every invocation starts here --- */
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) == sizeof seed)
        JS_NanvixReseed(ctx, seed);
    size_t ilen;
    char *input = slurp(stdin, &ilen);
    JSValue arg = JS_NewStringLen(ctx, input ? input : "", input ? ilen : 0);
    JSValue ret = JS_Call(ctx, handle, global, 1, &arg);
    if (JS_IsException(ret))
        return fail(ctx);
    ret = js_std_await(ctx, ret);   /* an async handle's promise: its value (else ret itself) */
    if (JS_IsException(ret))
        return fail(ctx);
    size_t rlen = 0;
    const char *out = JS_IsUndefined(ret) || JS_IsNull(ret) ? "" : JS_ToCStringLen(ctx, &rlen, ret);
    if (!out)
        return fail(ctx);
    syscall(NX_SYS_RESULT, out, rlen);
    fflush(stdout);
    return 0;
}
