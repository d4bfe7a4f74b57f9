// The Lua 5.1 interpreter (Debian's liblua5.1-0-dev) and the libraries Redis's scripting loads
// that Debian packages (lua-cjson, lua-bitop), plus the few C entry points Swift cannot write
// itself: Lua reports errors with longjmp, which must never cross a Swift frame, so every Lua
// function the scripting layer provides is a C trampoline that calls Swift, and raises the error
// Swift left on the stack only after Swift has returned (Sources/Services/Scripting/).
#ifndef REACTORD_CLUA_H
#define REACTORD_CLUA_H

#include <lua5.1/lua.h>
#include <lua5.1/lauxlib.h>
#include <lua5.1/lualib.h>

/// What Swift implements for every provided Lua function: `which` names the function, `context`
/// is the state's (``clua_set_context``). It returns the number of results it pushed, or -1 when it
/// left an error value on top of the stack that must be raised.
typedef int (*clua_handler)(lua_State *L, int which, void *context);

/// Sets the one handler every trampoline calls (once per process; the same for every state).
void clua_set_handler(clua_handler handler);

/// A new state with the base, table, string, math and debug libraries and cjson and bit loaded.
lua_State *clua_open(void);

/// Seeds the generator behind math.random (the state's math.random and math.randomseed are the
/// shim's: POSIX's 48-bit lrand48 generator, as Redis's scripts have it).
void clua_seed_random(int seed);

/// Sets the pointer every call of the handler from `L` receives. Kept as the state's allocator
/// data (luaL_newstate's allocator ignores it), so that a call finds it with one read instead of a
/// registry lookup.
void clua_set_context(lua_State *L, void *context);

/// The pointer ``clua_set_context`` set for `L`.
void *clua_context(lua_State *L);

/// Pushes a Lua function that calls the handler with `which`.
void clua_push_function(lua_State *L, int which);

/// Calls the handler with `which` every `count` instructions (0: no hook). A -1 from it raises the
/// error it pushed, and from then on the hook runs at every line, so that the code cannot catch
/// the error with pcall and carry on (FUNCTION LOAD's time limit).
void clua_set_interrupt_hook(lua_State *L, int which, int count);

/// Pushes a function `guard(original, readonly)` that returns `original` wrapped so that it
/// refuses ("Attempt to modify a readonly table") a first argument that is a key of `readonly`.
/// A C function, so that the error points at the script's line, as Redis's does.
void clua_push_guard_factory(lua_State *L);

/// Formats a number as C's "%.17g" (the text Redis passes to a command for a Lua number).
/// Returns the length written into `buffer` (at least 32 bytes).
int clua_format_double(double value, char *buffer, int size);

/// The bytes of redis.call's argument `index`: a string's own, or a number formatted as
/// ``clua_format_double`` formats it into `number` (40 bytes). NULL for any other type.
const char *clua_argument(lua_State *L, int index, char *number, size_t *length);

/// Copies redis.call's arguments 1 to `count` (each as ``clua_argument`` gives it, `number`
/// its 40-byte scratch) one after another into `buffer`, and the offset where each ends into
/// `ends`. Returns 0; 1 (nothing meaningful written) when an argument is neither a string nor a
/// number; 2 when they do not fit in `capacity` bytes, with the bytes they need in `needed`.
int clua_collect_arguments(lua_State *L, int count, char *buffer, size_t capacity, size_t *ends, size_t *needed,
                           char *number);

/// The Lua idioms lua.h spells as macros.
static inline void clua_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
static inline void clua_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
static inline int clua_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int clua_globalsindex(void) { return LUA_GLOBALSINDEX; }

#endif
