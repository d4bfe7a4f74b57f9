// The trampolines of CLua.h: they call Swift and raise Lua errors only from C frames.
#include "CLua.h"
#include <stdio.h>
#include <lua5.1/lua-cjson.h>
#include <lua5.1/lua-bitop.h>

static clua_handler current_handler;
static int hook_id;

void clua_set_handler(clua_handler handler) { current_handler = handler; }

static int trampoline(lua_State *L) {
    int which = (int)lua_tointeger(L, lua_upvalueindex(1));
    int results = current_handler(L, which);
    if (results < 0) return lua_error(L);
    return results;
}

void clua_push_function(lua_State *L, int which) {
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
    return L;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (current_handler(L, hook_id) < 0) {
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
