//! Received messages and string lists.

use std::ffi::{c_char, CString};

use cmqtt_core::Message;

use crate::result::guard_value;
use crate::util::{c_string, lent_message};

/// A received message (opaque): topic, payload and the index of the client that received it.
pub struct cmqtt_message {
    client: u8,
    /// The topic bytes and a NUL that is not counted.
    topic: Vec<u8>,
    /// The payload bytes and a NUL that is not counted.
    payload: Vec<u8>,
}

impl cmqtt_message {
    pub(crate) fn new(m: &Message) -> cmqtt_message {
        let mut topic = Vec::with_capacity(m.topic.len() + 1);
        topic.extend_from_slice(&m.topic);
        topic.push(0);
        let mut payload = Vec::with_capacity(m.payload.len() + 1);
        payload.extend_from_slice(&m.payload);
        payload.push(0);
        cmqtt_message {
            client: m.client,
            topic,
            payload,
        }
    }

    pub(crate) fn boxed(self) -> *mut cmqtt_message {
        Box::into_raw(Box::new(self))
    }
}

/// The topic: NUL-terminated, and its length (without the NUL) in `*len_out` if `len_out` is not
/// NULL. The bytes are exactly what the broker sent (UTF-8 unless the client's UTF-8 check is
/// off). Valid as long as the message. NULL (and `*len_out` = 0) when `msg` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_message_topic(
    msg: *const cmqtt_message,
    len_out: *mut usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        let m = unsafe { msg.as_ref() };
        if let Some(l) = unsafe { len_out.as_mut() } {
            *l = m.map_or(0, |m| m.topic.len() - 1);
        }
        m.map_or(std::ptr::null(), |m| m.topic.as_ptr().cast())
    })
}

/// The payload (any bytes) and its length in `*len_out` if `len_out` is not NULL. A NUL that is
/// not counted follows the bytes, so a text payload can be printed as a C string. Never NULL for
/// a valid message (an empty payload is ""). Valid as long as the message. NULL (and
/// `*len_out` = 0) when `msg` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_message_payload(
    msg: *const cmqtt_message,
    len_out: *mut usize,
) -> *const u8 {
    guard_value(std::ptr::null(), || {
        let m = unsafe { msg.as_ref() };
        if let Some(l) = unsafe { len_out.as_mut() } {
            *l = m.map_or(0, |m| m.payload.len() - 1);
        }
        m.map_or(std::ptr::null(), |m| m.payload.as_ptr())
    })
}

/// The index (0 or 1) of the client that received the message; -1 when `msg` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_message_client(msg: *const cmqtt_message) -> i32 {
    guard_value(-1, || {
        unsafe { msg.as_ref() }.map_or(-1, |m| i32::from(m.client))
    })
}

/// An owned copy of a message (e.g. to keep one passed to a callback beyond the call). Free it
/// with `cmqtt_message_free`. NULL when `msg` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_message_copy(msg: *const cmqtt_message) -> *mut cmqtt_message {
    guard_value(std::ptr::null_mut(), || {
        unsafe { msg.as_ref() }.map_or(std::ptr::null_mut(), |m| {
            cmqtt_message {
                client: m.client,
                topic: m.topic.clone(),
                payload: m.payload.clone(),
            }
            .boxed()
        })
    })
}

/// Frees a message obtained from `cmqtt_client_receive` or `cmqtt_message_copy`. NULL is a
/// no-op. The message passed to a callback belongs to the library: freeing it there is
/// detected and ignored. Freeing a message twice is undefined behaviour, like free(3).
#[no_mangle]
pub unsafe extern "C" fn cmqtt_message_free(msg: *mut cmqtt_message) {
    guard_value((), || {
        if msg.is_null() || msg as usize == lent_message() {
            return;
        }
        drop(unsafe { Box::from_raw(msg) });
    })
}

/// A list of strings returned by the library (opaque), e.g. by `cmqtt_modem_cert_list`.
pub struct cmqtt_string_list {
    items: Vec<CString>,
}

impl cmqtt_string_list {
    pub(crate) fn boxed(items: &[String]) -> *mut cmqtt_string_list {
        Box::into_raw(Box::new(cmqtt_string_list {
            items: items.iter().map(|s| c_string(s)).collect(),
        }))
    }
}

/// The number of strings; 0 when `list` is NULL.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_string_list_len(list: *const cmqtt_string_list) -> usize {
    guard_value(0, || unsafe { list.as_ref() }.map_or(0, |l| l.items.len()))
}

/// String `i` (NUL-terminated, valid as long as the list); NULL when `list` is NULL or `i` is
/// out of range.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_string_list_get(
    list: *const cmqtt_string_list,
    i: usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        unsafe { list.as_ref() }
            .and_then(|l| l.items.get(i))
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// Frees a list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn cmqtt_string_list_free(list: *mut cmqtt_string_list) {
    guard_value((), || {
        if !list.is_null() {
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
