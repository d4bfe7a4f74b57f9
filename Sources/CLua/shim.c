// The trampolines of CLua.h: they call Swift and raise Lua errors only from C frames.
#include "CLua.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <lua5.1/lua-cjson.h>
#include <lua5.1/lua-bitop.h>

static clua_handler current_handler;
static int hook_id;

void clua_set_handler(clua_handler handler) { current_handler = handler; }

void clua_set_context(lua_State *L, void *context) {
    void *previous;
    lua_Alloc allocator = lua_getallocf(L, &previous);
    lua_setallocf(L, allocator, context);
}

void *clua_context(lua_State *L) {
    void *context;
    lua_getallocf(L, &context);
    return context;
}

static int call_handler(lua_State *L, int which) {
    void *context;
    lua_getallocf(L, &context);
    int results = current_handler(L, which, context);
    if (results < 0) return lua_error(L);
    return results;
}

static int trampoline(lua_State *L) { return call_handler(L, (int)lua_tointeger(L, lua_upvalueindex(1))); }

/* redis.call and redis.pcall (the engine's LuaAPI 1 and 2), every script's hot path: their
 * number is in the code rather than read from an upvalue. */
static int trampoline_call(lua_State *L) { return call_handler(L, 1); }
static int trampoline_pcall(lua_State *L) { return call_handler(L, 2); }

void clua_push_function(lua_State *L, int which) {
    if (which == 1 || which == 2) {
        lua_pushcfunction(L, which == 1 ? trampoline_call : trampoline_pcall);
        return;
    }
    lua_pushinteger(L, which);
    lua_pushcclosure(L, trampoline, 1);
}

static void load_library(lua_State *L, const char *name, lua_CFunction open) {
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    // Debian's cjson returns its table without setting the global Redis's build sets.
    if (name[0] != '\0' && lua_istable(L, -1)) {
        lua_setglobal(L, name);
    } else {
        lua_pop(L, 1);
    }
}

/* math.random and math.randomseed as Redis's scripts see them: the 48-bit linear congruential
 * generator POSIX specifies for lrand48/srand48 (x' = 0x5DEECE66D x + 11 mod 2^48, 31 bits out),
 * kept here rather than libc's rand(), so that a seed gives the same numbers as in Redis on every
 * platform. Not reseeded per script: as in Redis 7, numbers differ from run to run unless the
 * script seeds them. Arguments are checked as Lua 5.1's own math.random checks them. */
static uint64_t random_state = 0x1234ABCD330EULL;
static const int32_t random_max = 0x7FFFFFFF;

static int32_t next_random(void) {
    random_state = (0x5DEECE66DULL * random_state + 0xB) & 0xFFFFFFFFFFFFULL;
    return (int32_t)(random_state >> 17);
}

static void seed_random(int32_t seed) { random_state = ((uint64_t)(uint32_t)seed << 16) | 0x330E; }

static int math_random(lua_State *L) {
    lua_Number r = (lua_Number)(next_random() % random_max) / (lua_Number)random_max;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        break;
    case 1: {
        int upper = luaL_checkint(L, 1);
        luaL_argcheck(L, 1 <= upper, 1, "interval is empty");
        lua_pushnumber(L, floor(r * upper) + 1);
        break;
    }
    case 2: {
        int lower = luaL_checkint(L, 1);
        int upper = luaL_checkint(L, 2);
        luaL_argcheck(L, lower <= upper, 2, "interval is empty");
        lua_pushnumber(L, floor(r * (upper - lower + 1)) + lower);
        break;
    }
    default: return luaL_error(L, "wrong number of arguments");
    }
    return 1;
}

static int math_randomseed(lua_State *L) {
    seed_random(luaL_checkint(L, 1));
    return 0;
}

void clua_seed_random(int seed) { seed_random(seed); }

lua_State *clua_open(void) {
    lua_State *L = luaL_newstate();
    if (L == NULL) return NULL;
    load_library(L, "", luaopen_base);
    load_library(L, LUA_TABLIBNAME, luaopen_table);
    load_library(L, LUA_STRLIBNAME, luaopen_string);
    load_library(L, LUA_MATHLIBNAME, luaopen_math);
    load_library(L, LUA_DBLIBNAME, luaopen_debug);
    load_library(L, "cjson", luaopen_cjson);
    load_library(L, "bit", luaopen_bit);
    lua_getglobal(L, LUA_MATHLIBNAME);
    lua_pushcfunction(L, math_random);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, math_randomseed);
    lua_setfield(L, -2, "randomseed");
    lua_pop(L, 1);
    return L;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    void *context;
    lua_getallocf(L, &context);
    if (current_handler(L, hook_id, context) < 0) {
        lua_sethook(L, interrupt_hook, LUA_MASKLINE, 0);
        lua_error(L);
    }
}

void clua_set_interrupt_hook(lua_State *L, int which, int count) {
    hook_id = which;
    if (count > 0) {
        lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, count);
    } else {
        lua_sethook(L, NULL, 0, 0);
    }
}

int clua_format_double(double value, char *buffer, int size) {
    int written = snprintf(buffer, (size_t)size, "%.17g", value);
    return written < size ? written : size - 1;
}

const char *clua_argument(lua_State *L, int index, char *number, size_t *length) {
    if (lua_type(L, index) == LUA_TNUMBER) {
        *length = (size_t)clua_format_double(lua_tonumber(L, index), number, 40);
        return number;
    }
    return lua_tolstring(L, index, length);
}

int clua_collect_arguments(lua_State *L, int count, char *buffer, size_t capacity, size_t *ends, size_t *needed,
                           char *number) {
    size_t used = 0;
    int fits = 1;
    for (int index = 1; index <= count; index++) {
        size_t length;
        const char *bytes = clua_argument(L, index, number, &length);
        if (bytes == NULL) return 1;
        if (fits && length <= capacity - used) {
            if (length > 0) memcpy(buffer + used, bytes, length);
        } else {
            fits = 0;
        }
        used += length;
        ends[index - 1] = used;
    }
    *needed = used;
    return fits ? 0 : 2;
}

/* Upvalues: the original function, the set of readonly tables. A readonly first argument is
 * refused as Redis's patched Lua refuses it; anything else goes to the original. */
static int guarded(lua_State *L) {
    if (lua_istable(L, 1)) {
        lua_pushvalue(L, 1);
        lua_rawget(L, lua_upvalueindex(2));
        int readonly = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (readonly) {
            lua_pushstring(L, "Attempt to modify a readonly table");  // without a position, as Redis's
            return lua_error(L);
        }
    }
    int count = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, count, LUA_MULTRET);
    return lua_gettop(L);
}

static int make_guard(lua_State *L) {
    lua_settop(L, 2);
    lua_pushcclosure(L, guarded, 2);
    return 1;
}

void clua_push_guard_factory(lua_State *L) { lua_pushcfunction(L, make_guard); }
