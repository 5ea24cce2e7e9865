//! Values crossing between Python and the host, as JSON.
//!
//! Why JSON rather than walking Python objects: a guest's input, a tool's result and a
//! provider's answer are JSON on the host side anyway, and Python's own `json` module
//! already refuses what JSON cannot hold (cycles, sets, NaN is allowed but a custom
//! object is not) with a `ValueError`/`TypeError` instead of recursing into the host's
//! stack. The text is measured before it is parsed, so a caller can bound it.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn json_fn<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("json")?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py).clone())
}

/// `obj` as JSON text (`json.dumps`: compact, UTF-8 as is, NaN and infinities refused).
pub fn dumps_text<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    kwargs.set_item("ensure_ascii", false)?;
    kwargs.set_item("separators", (",", ":"))?;
    Ok(json_fn(py, &DUMPS, "dumps")?
        .call((obj,), Some(&kwargs))?
        .cast_into::<PyString>()?)
}

/// `obj` as JSON text, owned.
pub fn dumps(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(dumps_text(obj)?.to_str()?.to_owned())
}

/// The Python value of JSON `text`.
pub fn loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    json_fn(py, &LOADS, "loads")?.call1((text,))
}

/// The Python value of `value`.
pub fn to_py<'py>(py: Python<'py>, value: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    loads(py, &text)
}

/// `obj` read as a `T` (through its JSON); `what` names it in the error.
pub fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let text = dumps(obj)?;
    parse(&text, what)
}

/// JSON `text` read as a `T`; `what` names it in the error.
pub fn parse<T: DeserializeOwned>(text: &str, what: &str) -> PyResult<T> {
    serde_json::from_str(text)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{what}: {e}")))
}

/// A JSON object from `obj` (`None` is an empty object).
pub fn object(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Value> {
    match obj {
        None => Ok(Value::Object(Default::default())),
        Some(obj) if obj.is_none() => Ok(Value::Object(Default::default())),
        Some(obj) => match from_py::<Value>(obj, what)? {
            value @ Value::Object(_) => Ok(value),
            _ => Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{what} must be a dict (a JSON object)"
            ))),
        },
    }
}

/// A value serialised off the GIL (on a tokio thread) and turned into Python objects
/// only when an awaitable completes, where the GIL is held anyway.
pub struct Json(pub String);

impl Json {
    /// `value`'s JSON.
    pub fn of(value: &impl Serialize) -> PyResult<Self> {
        serde_json::to_string(value)
            .map(Json)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }
}

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        loads(py, &self.0)
    }
}
