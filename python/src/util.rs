//! Argument conversion: Python values to what the core takes. Ranges are checked by the core
//! (its `InvalidArgument` becomes `ValueError`); only what does not fit the core's integer
//! types is refused here, with the same wording.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

/// An integer argument that the core takes as `u8`; `allowed` is the spec's range, for the
/// message of a value too large for `u8` (the core checks the rest).
pub(crate) fn arg_u8(name: &str, v: i64, allowed: &str) -> PyResult<u8> {
    u8::try_from(v).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid argument {name}: must be {allowed}, got {v}"
        ))
    })
}

/// Like [`arg_u8`] for `u16`.
pub(crate) fn arg_u16(name: &str, v: i64, allowed: &str) -> PyResult<u16> {
    u16::try_from(v).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid argument {name}: must be {allowed}, got {v}"
        ))
    })
}

/// Like [`arg_u8`] for `u32`.
pub(crate) fn arg_u32(name: &str, v: i64, allowed: &str) -> PyResult<u32> {
    u32::try_from(v).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid argument {name}: must be {allowed}, got {v}"
        ))
    })
}

/// A `str` as UTF-8; lone surrogates (a topic decoded with `surrogateescape`) go back to the
/// bytes they stood for.
fn str_bytes(s: &Bound<'_, PyString>) -> PyResult<Vec<u8>> {
    match s.to_cow() {
        Ok(c) => Ok(c.as_bytes().to_vec()),
        Err(_) => Ok(s
            .call_method1("encode", ("utf-8", "surrogateescape"))?
            .cast::<PyBytes>()?
            .as_bytes()
            .to_vec()),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `bytes`, `bytearray`, `memoryview`, or `str` (encoded as UTF-8).
pub(crate) fn bytes_or_str(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return str_bytes(s);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let b = obj
            .py()
            .import("builtins")?
            .getattr("bytes")?
            .call1((obj,))?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be bytes, bytearray, memoryview or str, not {}",
        type_name(obj)
    )))
}

/// A topic: `str` (UTF-8) or `bytes`/`bytearray`.
pub(crate) fn topic(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return str_bytes(s);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be str or bytes, not {}",
        type_name(obj)
    )))
}

/// Whether `obj` is a single topic rather than a list of them.
pub(crate) fn is_topic(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyString>().is_ok()
        || obj.cast::<PyBytes>().is_ok()
        || obj.cast::<PyByteArray>().is_ok()
}

/// The file at `path`, read with the GIL released and only up to `limit` bytes plus one
/// (`Read::take`): a larger file (or `/dev/zero`, a FIFO that never ends) is a `ValueError`
/// naming the file and the limit, after reading `limit + 1` bytes at most. `takes` says who
/// takes at most `limit` bytes ("the modem's certificate store takes").
pub(crate) fn read_file_bounded(
    py: Python<'_>,
    path: &std::path::Path,
    limit: usize,
    takes: &str,
) -> PyResult<Vec<u8>> {
    use std::io::Read;
    let data = py.detach(|| -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        std::fs::File::open(path)?
            .take(limit as u64 + 1)
            .read_to_end(&mut v)?;
        Ok(v)
    })?;
    if data.len() > limit {
        return Err(PyValueError::new_err(format!(
            "{} is larger than {limit} bytes: {takes} at most {limit} bytes",
            path.display()
        )));
    }
    Ok(data)
}

/// A callback argument: callable or None.
pub(crate) fn callback(name: &str, obj: Option<Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) if o.is_callable() => Ok(Some(o.unbind())),
        Some(o) => Err(PyTypeError::new_err(format!(
            "{name} must be a callable or None, not {}",
            type_name(&o)
        ))),
    }
}
