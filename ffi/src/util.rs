//! Argument checks, the callback context of the current thread, and callback slots.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::{Mutex, MutexGuard};

use crate::result::cmqtt_result::*;
use crate::result::{fail, FfiResult};

// ---- arguments --------------------------------------------------------------------------------

/// A required handle or struct.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    match unsafe { p.as_ref() } {
        Some(r) => Ok(r),
        None => fail(CMQTT_ERR_NULL_ARGUMENT, format!("{name} is NULL")),
    }
}

/// An options struct that can grow without breaking programs built against an older header:
/// its first field, `struct_size`, is `sizeof` the struct the program was built with (the
/// `_default()` functions set it).
pub(crate) trait Versioned: Copy {
    /// The defaults (with `struct_size` set to this library's size).
    fn defaults() -> Self;
}

/// A required options struct, read by its `struct_size`: fields the caller's (older) struct
/// does not have keep their defaults; a struct larger than this library knows, or a
/// `struct_size` that was never set, is refused.
pub(crate) unsafe fn arg_versioned<T: Versioned>(p: *const T, name: &str) -> FfiResult<T> {
    let _ = unsafe { arg_ref(p, name)? };
    // SAFETY: not NULL (checked above); every versioned struct starts with its u32 size.
    let size = unsafe { std::ptr::read_unaligned(p.cast::<u32>()) } as usize;
    let ours = std::mem::size_of::<T>();
    if size < std::mem::size_of::<u32>() || size > ours {
        return fail(
            CMQTT_ERR_INVALID_ARGUMENT,
            format!(
                "{name}->struct_size is {size}, this library's struct is {ours} bytes: start from the struct's _default() function (which sets it), or rebuild against this library's header"
            ),
        );
    }
    let mut out = T::defaults();
    // SAFETY: `size` bytes are readable at `p` (the caller's struct has that size) and fit in
    // `out`; the struct is plain data (repr(C), Copy).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&mut out as *mut T).cast::<u8>(), size);
    }
    Ok(out)
}

/// A required string.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    match unsafe { opt_str(p, name)? } {
        Some(s) => Ok(s),
        None => fail(CMQTT_ERR_NULL_ARGUMENT, format!("{name} is NULL")),
    }
}

/// An optional string (NULL = none).
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        return Ok(None);
    }
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => fail(
            CMQTT_ERR_INVALID_UTF8,
            format!("{name} is not valid UTF-8 ({e})"),
        ),
    }
}

/// A byte buffer: NULL is allowed only with length 0.
pub(crate) unsafe fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return fail(
            CMQTT_ERR_NULL_ARGUMENT,
            format!("{name} is NULL but its length is {len}"),
        );
    }
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// An output pointer: checked, and set to NULL before anything else happens (so it is NULL on
/// every failure).
pub(crate) unsafe fn arg_out<'a, T>(p: *mut *mut T, name: &str) -> FfiResult<&'a mut *mut T> {
    match unsafe { p.as_mut() } {
        Some(out) => {
            *out = std::ptr::null_mut();
            Ok(out)
        }
        None => fail(CMQTT_ERR_NULL_ARGUMENT, format!("{name} is NULL")),
    }
}

/// An optional scalar from a C struct field: negative = not set.
pub(crate) fn opt_num<T: TryFrom<i64>>(v: i64, name: &str) -> FfiResult<Option<T>> {
    if v < 0 {
        return Ok(None);
    }
    match T::try_from(v) {
        Ok(x) => Ok(Some(x)),
        Err(_) => fail(
            CMQTT_ERR_INVALID_ARGUMENT,
            format!("{name} = {v} is out of range"),
        ),
    }
}

/// An optional boolean from a C struct field: -1 = not set, 0, 1.
pub(crate) fn opt_bool(v: i32, name: &str) -> FfiResult<Option<bool>> {
    match v {
        -1 => Ok(None),
        0 => Ok(Some(false)),
        1 => Ok(Some(true)),
        _ => fail(
            CMQTT_ERR_INVALID_ARGUMENT,
            format!("{name} must be -1 (unset), 0 or 1, got {v}"),
        ),
    }
}

/// Text as a C string (NUL bytes, which cannot be inside one, are shown as `\0`).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

// ---- the callback context of this thread ------------------------------------------------------

/// What the current thread is doing on the library's behalf.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// Not inside a callback.
    None,
    /// Inside a trace callback: the library holds its command lock; nothing may call back.
    Trace,
    /// Inside a message, connection-lost or event callback, on the dispatch thread; `slot` is
    /// the address of the slot whose callback runs.
    Dispatch { slot: usize },
}

thread_local! {
    static CONTEXT: Cell<Context> = const { Cell::new(Context::None) };
    static LENT_MESSAGE: Cell<usize> = const { Cell::new(0) };
}

/// Restores the previous context on drop (also if the callback somehow unwinds).
pub(crate) struct ContextGuard {
    prev: Context,
    prev_lent: usize,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.set(self.prev));
        LENT_MESSAGE.with(|m| m.set(self.prev_lent));
    }
}

pub(crate) fn enter(ctx: Context, lent_message: usize) -> ContextGuard {
    ContextGuard {
        prev: CONTEXT.with(|c| c.replace(ctx)),
        prev_lent: LENT_MESSAGE.with(|m| m.replace(lent_message)),
    }
}

pub(crate) fn context() -> Context {
    CONTEXT.with(|c| c.get())
}

/// The message the running callback was given (it must not be freed by the callback).
pub(crate) fn lent_message() -> usize {
    LENT_MESSAGE.with(|m| m.get())
}

/// Functions that talk to the modem refuse to run inside a trace callback (the library holds
/// its command lock there: the call would deadlock).
pub(crate) fn not_in_trace() -> FfiResult<()> {
    if context() == Context::Trace {
        return fail(
            CMQTT_ERR_IN_CALLBACK,
            "this function cannot be called from a trace callback",
        );
    }
    Ok(())
}

/// Freeing a handle is refused inside any callback.
pub(crate) fn not_in_callback(what: &str) -> FfiResult<()> {
    if context() != Context::None {
        return fail(
            CMQTT_ERR_IN_CALLBACK,
            format!("{what} cannot be called from a callback; free the handle from another thread after the callback returned"),
        );
    }
    Ok(())
}

// ---- callback slots ---------------------------------------------------------------------------

/// The `void *userdata` of a callback: passed back untouched, on the library's threads.
#[derive(Clone, Copy)]
pub(crate) struct Userdata(pub *mut c_void);

// SAFETY: the library never dereferences it; the C caller promised (in the header's contract)
// that it may be used from the library's threads.
unsafe impl Send for Userdata {}
unsafe impl Sync for Userdata {}

impl Userdata {
    /// The pointer (a method, so that closures capture the `Send` wrapper, not the raw field).
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The C callbacks installed on one handle. `running` is held while one of them runs, so that
/// replacing or clearing them can wait until the old ones are no longer running: after
/// `cmqtt_client_set_callbacks` (or a free) returns, the old userdata is not in use.
pub(crate) struct Slot<C: Copy> {
    current: Mutex<Option<C>>,
    running: Mutex<()>,
}

impl<C: Copy> Slot<C> {
    pub(crate) fn new() -> Self {
        Slot {
            current: Mutex::new(None),
            running: Mutex::new(()),
        }
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// Replaces the callbacks, then waits for a running old one to return.
    #[cfg(test)]
    pub(crate) fn set(&self, c: Option<C>) {
        self.replace(c);
        self.wait_idle();
    }

    /// Replaces the callbacks (they apply from the next call).
    pub(crate) fn replace(&self, c: Option<C>) {
        *lock(&self.current) = c;
    }

    /// Waits until no callback of this slot runs, unless this thread is running one (it
    /// replaced its own callbacks: waiting for itself would never end).
    pub(crate) fn wait_idle(&self) {
        if context() != (Context::Dispatch { slot: self.addr() }) {
            drop(lock(&self.running));
        }
    }

    /// Runs `f` with the current callbacks (`None`: cleared meanwhile), marked as a callback
    /// of this slot on this thread.
    pub(crate) fn run<R>(&self, lent_message: usize, f: impl FnOnce(Option<C>) -> R) -> R {
        if context() == (Context::Dispatch { slot: self.addr() }) {
            // Re-entered from one of this slot's own callbacks on this thread (e.g. a supervisor
            // event raised by a publish the event callback made): `running` is already held.
            let c = *lock(&self.current);
            let _ctx = enter(Context::Dispatch { slot: self.addr() }, lent_message);
            return f(c);
        }
        let _running = lock(&self.running);
        let c = *lock(&self.current);
        let _ctx = enter(Context::Dispatch { slot: self.addr() }, lent_message);
        f(c)
    }
}
