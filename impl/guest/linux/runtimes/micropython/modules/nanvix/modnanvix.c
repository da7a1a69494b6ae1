// The `nanvix` module of Python functions: the snapshot point, the result, the key-value store
// and the log, each a private system call of the Linux-ABI layer (nanvix_linux.h).
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "py/runtime.h"
#include "py/objstr.h"

#include "nanvix_abi.h"
#include "nanvix_linux.h"

static uint8_t value_buf[NX_DATA_SLOT];

static int64_t request(uint32_t op, mp_obj_t key, const void *val, size_t vlen, uint64_t arg, uint32_t *got)
{
    size_t klen = 0;
    const char *k = key == MP_OBJ_NULL ? "" : mp_obj_str_get_data(key, &klen);
    struct nx_sys_request r = {
        .opcode = op, .name = k, .name_len = (uint32_t)klen, .value = val, .value_len = (uint32_t)vlen,
        .out = value_buf, .out_cap = got ? sizeof value_buf : 0, .arg = arg,
    };
    if (syscall(NX_SYS_REQUEST, &r) != 0)
        mp_raise_OSError(errno);
    if (got)
        *got = r.out_len;
    return r.result;
}

static mp_obj_t nanvix_snapshot(void)
{
    syscall(NX_SYS_SNAPSHOT);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(nanvix_snapshot_obj, nanvix_snapshot);

static mp_obj_t nanvix_result(mp_obj_t data)
{
    size_t n;
    const char *p = mp_obj_str_get_data(data, &n);   // str or bytes
    syscall(NX_SYS_RESULT, p, n);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(nanvix_result_obj, nanvix_result);

static mp_obj_t nanvix_kv_get(mp_obj_t key)
{
    uint32_t got = 0;
    int64_t r = request(NX_OP_KV_GET, key, NULL, 0, 0, &got);
    if (r == -NX_ENOENT)
        return mp_const_none;
    if (r < 0)
        mp_raise_OSError((int)-r);
    return mp_obj_new_bytes(value_buf, got);
}
static MP_DEFINE_CONST_FUN_OBJ_1(nanvix_kv_get_obj, nanvix_kv_get);

static mp_obj_t nanvix_kv_put(mp_obj_t key, mp_obj_t value)
{
    size_t n;
    const char *v = mp_obj_str_get_data(value, &n);
    int64_t r = request(NX_OP_KV_PUT, key, v, n, 0, NULL);
    if (r < 0)
        mp_raise_OSError((int)-r);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(nanvix_kv_put_obj, nanvix_kv_put);

static mp_obj_t nanvix_kv_add(size_t n_args, const mp_obj_t *args)
{
    mp_int_t delta = n_args > 1 ? mp_obj_get_int(args[1]) : 1;
    int64_t r = request(NX_OP_KV_ADD, args[0], NULL, 0, (uint64_t)(int64_t)delta, NULL);
    if (r < 0 && r >= -133)   // (an error code; a counter that low is not told apart)
        mp_raise_OSError((int)-r);
    return mp_obj_new_int_from_ll(r);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(nanvix_kv_add_obj, 1, 2, nanvix_kv_add);

static mp_obj_t nanvix_kv_delete(mp_obj_t key)
{
    int64_t r = request(NX_OP_KV_DELETE, key, NULL, 0, 0, NULL);
    if (r < 0 && r != -NX_ENOENT)
        mp_raise_OSError((int)-r);
    return mp_obj_new_bool(r == 0);
}
static MP_DEFINE_CONST_FUN_OBJ_1(nanvix_kv_delete_obj, nanvix_kv_delete);

static mp_obj_t nanvix_log(mp_obj_t msg)
{
    size_t n;
    const char *p = mp_obj_str_get_data(msg, &n);
    request(NX_OP_LOG, MP_OBJ_NULL, p, n, 0, NULL);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(nanvix_log_obj, nanvix_log);

static const mp_rom_map_elem_t nanvix_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_nanvix) },
    { MP_ROM_QSTR(MP_QSTR_snapshot), MP_ROM_PTR(&nanvix_snapshot_obj) },
    { MP_ROM_QSTR(MP_QSTR_result), MP_ROM_PTR(&nanvix_result_obj) },
    { MP_ROM_QSTR(MP_QSTR_kv_get), MP_ROM_PTR(&nanvix_kv_get_obj) },
    { MP_ROM_QSTR(MP_QSTR_kv_put), MP_ROM_PTR(&nanvix_kv_put_obj) },
    { MP_ROM_QSTR(MP_QSTR_kv_add), MP_ROM_PTR(&nanvix_kv_add_obj) },
    { MP_ROM_QSTR(MP_QSTR_kv_delete), MP_ROM_PTR(&nanvix_kv_delete_obj) },
    { MP_ROM_QSTR(MP_QSTR_log), MP_ROM_PTR(&nanvix_log_obj) },
};
static MP_DEFINE_CONST_DICT(nanvix_globals, nanvix_globals_table);

const mp_obj_module_t nanvix_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&nanvix_globals,
};
MP_REGISTER_MODULE(MP_QSTR_nanvix, nanvix_user_cmodule);
