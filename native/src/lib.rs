//! The ingestion validator's hot path, native: decode a batch of framed Avro messages and
//! apply the Layer-1 rules in one call. Python keeps the I/O (Kafka, Redis, transactions);
//! this does the per-message CPU work that capped the validator at a sixth of a bare
//! passthrough. The rules live only here; `fraud_platform.ingestion.rules` configures them.
//! So does the definition of a card number (`pan`), which every masking and the scanner use.

mod avro;
mod pan;
mod rules;
mod unprintable;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// Decodes and checks messages; built once per validator from the registered contracts.
#[pyclass(frozen)]
struct Checker {
    inner: rules::Checker,
}

#[pymethods]
impl Checker {
    /// `contracts`: (schema id, name, version, schema JSON) for every registered schema;
    /// records of contract `accept` are checked, any other contract is a wrong-topic reject.
    #[new]
    #[pyo3(signature = (contracts, accept, max_message_bytes, max_amount, max_future_skew_ms, max_age_ms, currencies))]
    fn new(
        contracts: Vec<(u32, String, u32, String)>,
        accept: &str,
        max_message_bytes: usize,
        max_amount: f64,
        max_future_skew_ms: i64,
        max_age_ms: i64,
        currencies: Vec<String>,
    ) -> PyResult<Self> {
        let limits = rules::Limits {
            max_message_bytes,
            max_amount,
            max_future_skew_ms,
            max_age_ms,
            currencies: currencies.into_iter().collect(),
        };
        rules::Checker::new(contracts, accept, limits)
            .map(|inner| Checker { inner })
            .map_err(PyValueError::new_err)
    }

    /// One (transaction_id, user_id, rejection, timestamp) per value, in order; rejection is
    /// None for a valid record, else (dead-letter topic, reason, detail); timestamp is the
    /// payload's event time (epoch ms). Ids and timestamp are None when undecoded.
    fn check_batch<'py>(&self, py: Python<'py>, values: &Bound<'py, PyList>, now_ms: i64) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for value in values.iter() {
            let bytes = if value.is_none() { None } else { Some(value.cast::<PyBytes>()?.as_bytes()) };
            let verdict = self.inner.check(bytes, now_ms);
            let rejection = match verdict.rejection {
                None => py.None().into_bound(py),
                Some(r) => (r.dlq, r.reason, r.detail).into_pyobject(py)?.into_any(),
            };
            out.append((verdict.transaction_id, verdict.user_id, rejection, verdict.timestamp))?;
        }
        Ok(out)
    }
}

/// The (start, end) byte offsets of the card numbers in `data` (text as UTF-8 or raw bytes).
#[pyfunction]
fn pan_spans(data: &[u8]) -> Vec<(usize, usize)> {
    pan::spans(data)
}

/// `data` with every card number's digits but the last 4 replaced by `*`, same length.
#[pyfunction]
fn mask_pans<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let mut masked = data.to_vec();
    pan::mask(&mut masked);
    PyBytes::new(py, &masked)
}

/// Python's `str.isprintable()`, as the validator applies it to every string field.
#[pyfunction]
fn printable(text: &str) -> bool {
    rules::printable(text)
}

#[pymodule]
fn fraud_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Checker>()?;
    m.add_function(wrap_pyfunction!(pan_spans, m)?)?;
    m.add_function(wrap_pyfunction!(mask_pans, m)?)?;
    m.add_function(wrap_pyfunction!(printable, m)?)
}
