//! The Python module `mlx2gguf._native` (cargo feature `python`, built by maturin into the
//! wheel): `convert`, `inspect`, `verify` and the `mlx2gguf` command, re-exported by the
//! package in `python/mlx2gguf/`.
//!
//! A conversion runs on its own thread with the GIL released; the calling Python thread
//! waits in short steps, calling the progress callback and looking for Ctrl-C, so a
//! KeyboardInterrupt cancels the conversion, which removes its temporary files, before it
//! is raised.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;

use crate::cli::{ConvertArgs, NanArg};
use crate::convert::CancelToken;
use crate::Error;

/// How long the waiting Python thread sleeps between looks at Ctrl-C and progress.
const POLL: Duration = Duration::from_millis(50);

#[pymodule(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::cli::quiet_caught_panics();
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}

/// `split_max_size`: a byte count, or a size with K, M, G or T as on the command line.
#[derive(FromPyObject)]
enum SizeArg {
    Bytes(u64),
    Text(String),
}

/// Converts an MLX checkpoint; returns the summary (`convert --json`), or the plan
/// (`convert --dry-run --json`) when `dry_run` is set.
#[pyfunction]
#[pyo3(signature = (
    model, output=None, *, adapter=None, outtype="auto".to_string(), threads=None, dry_run=false,
    progress=None, adapter_out=None, tensor_type=Vec::new(), pure=false, split_max_size=None,
    split_max_tensors=None, nan_policy="error", tokenizer_pre=None, imatrix=None,
    include_weights=Vec::new(), exclude_weights=Vec::new(), metadata=None,
))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one per command-line option
fn convert(
    py: Python<'_>,
    model: PathBuf,
    output: Option<PathBuf>,
    adapter: Option<PathBuf>,
    outtype: String,
    threads: Option<usize>,
    dry_run: bool,
    progress: Option<Bound<'_, PyAny>>,
    adapter_out: Option<PathBuf>,
    tensor_type: Vec<String>,
    pure: bool,
    split_max_size: Option<SizeArg>,
    split_max_tensors: Option<usize>,
    nan_policy: &str,
    tokenizer_pre: Option<String>,
    imatrix: Option<PathBuf>,
    include_weights: Vec<String>,
    exclude_weights: Vec<String>,
    metadata: Option<PathBuf>,
) -> PyResult<Py<PyAny>> {
    if progress.as_ref().is_some_and(|p| !p.is_callable()) {
        return Err(PyTypeError::new_err("progress must be a callable taking (done_bytes, total_bytes)"));
    }
    let nan_policy = NanArg::from_str(nan_policy, false).map_err(|_| {
        to_py_err(py, Error::Usage(format!("nan_policy '{nan_policy}' is not one of error, zero, keep")))
    })?;
    let args = ConvertArgs {
        model_dir: model,
        adapter,
        adapter_out,
        outtype,
        tensor_type,
        pure,
        outfile: output,
        nan_policy,
        split_max_size: split_max_size.map(|s| match s {
            SizeArg::Bytes(n) => n.to_string(),
            SizeArg::Text(t) => t,
        }),
        split_max_tensors,
        dry_run,
        json: true,
        quiet: true,
        threads,
        tokenizer_pre,
        imatrix,
        include_weights,
        exclude_weights,
        metadata,
    };
    run_conversion(py, &args, progress)
}

fn run_conversion(py: Python<'_>, args: &ConvertArgs, progress: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    let cancel = CancelToken::default();
    let mut opts = args.options(cancel.clone()).map_err(|e| to_py_err(py, e))?;
    if args.dry_run {
        let outtype = opts.outtype;
        let doc = wait_for(py, &cancel, None, move || crate::convert::dry_run(&opts).map(|d| d.to_json(outtype)))?;
        return json_to_py(py, &doc);
    }
    let mut reporter = progress.map(|callback| Reporter { callback, meter: Arc::default(), reported: None });
    if let Some(r) = &reporter {
        let meter = r.meter.clone();
        opts.progress = Some(Arc::new(move |done, total| meter.set(done, total)));
    }
    let doc = wait_for(py, &cancel, reporter.as_mut(), move || crate::convert::convert(&opts).map(|s| s.to_json()))?;
    json_to_py(py, &doc)
}

/// The latest (bytes written, total bytes), set by the writer thread.
#[derive(Default)]
struct Meter {
    done: AtomicU64,
    total: AtomicU64,
}

impl Meter {
    fn set(&self, done: u64, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

/// Calls the Python progress callback, on the Python thread, when the meter moved.
struct Reporter<'py> {
    callback: Bound<'py, PyAny>,
    meter: Arc<Meter>,
    reported: Option<(u64, u64)>,
}

impl Reporter<'_> {
    fn report(&mut self) -> PyResult<()> {
        let now = self.meter.get();
        if now.1 == 0 || self.reported == Some(now) {
            return Ok(());
        }
        self.reported = Some(now);
        self.callback.call1(now).map(drop)
    }
}

/// Runs `work` on its own thread with the GIL released. This thread reports progress and
/// looks for signals every [`POLL`]; a Python exception (KeyboardInterrupt from Ctrl-C, or
/// one the progress callback raised) cancels the work, waits for it to clean up, and is
/// raised.
fn wait_for<T: Send + 'static>(
    py: Python<'_>,
    cancel: &CancelToken,
    mut progress: Option<&mut Reporter<'_>>,
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> PyResult<T> {
    let caller = std::thread::current();
    let worker = std::thread::Builder::new()
        .name("mlx2gguf".into())
        .spawn(move || {
            let result = work();
            caller.unpark();
            result
        })
        .map_err(|e| internal_error(py, format!("cannot start the conversion thread: {e}")))?;
    let raised = loop {
        if worker.is_finished() {
            break None;
        }
        py.detach(|| std::thread::park_timeout(POLL));
        let looked = progress.as_mut().map_or(Ok(()), |p| p.report()).and_then(|()| py.check_signals());
        if let Err(e) = looked {
            cancel.cancel();
            break Some(e);
        }
    };
    let joined = py.detach(move || worker.join());
    if let Some(e) = raised {
        return Err(e);
    }
    let result = joined.map_err(|_| internal_error(py, "the conversion thread panicked".into()))?;
    let value = result.map_err(|e| to_py_err(py, e))?;
    // The final count, so that a progress display ends at its total.
    if let Some(p) = progress {
        p.report()?;
    }
    Ok(value)
}

/// `inspect` of an MLX folder, a cached repo id or a GGUF file, as `inspect --json` prints it.
#[pyfunction]
fn inspect(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let text = py.detach(|| crate::inspect::inspect(&path, true)).map_err(|e| to_py_err(py, e))?;
    json_module(py)?.call_method1("loads", (text,)).map(Bound::unbind)
}

/// `verify` of a GGUF file: `{"path", "ok", "problems": [{"rule", "message", "warning"}]}`.
#[pyfunction]
fn verify(py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
    let problems = py.detach(|| crate::verify::verify_gguf(&path)).map_err(|e| to_py_err(py, e))?;
    json_to_py(py, &crate::verify::report_json(&path, &problems))
}

/// The `mlx2gguf` command line with these arguments (program name first); returns its
/// exit code.
#[pyfunction(name = "main")]
fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(move || crate::cli::main_with_args(argv))
}

fn json_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("json")
}

fn json_to_py(py: Python<'_>, doc: &serde_json::Value) -> PyResult<Py<PyAny>> {
    json_module(py)?.call_method1("loads", (doc.to_string(),)).map(Bound::unbind)
}

/// The library's error as the package's exception (`mlx2gguf.UsageError`, `InputError`,
/// `IoError`: `python/mlx2gguf/_errors.py`), or KeyboardInterrupt when it was interrupted.
fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let class = match &e {
        Error::Interrupted(_) => return PyKeyboardInterrupt::new_err(e.to_string()),
        Error::Usage(_) => "UsageError",
        Error::Io { .. } => "IoError",
        Error::Input { .. } | Error::Tensor { .. } | Error::Config { .. } | Error::Gguf { .. } => "InputError",
    };
    package_error(py, class, e.to_string())
}

fn internal_error(py: Python<'_>, msg: String) -> PyErr {
    package_error(py, "InternalError", msg)
}

fn package_error(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let made = py.import("mlx2gguf._errors").and_then(|m| m.getattr(class)).and_then(|c| c.call1((msg,)));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    }
}
