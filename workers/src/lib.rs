//! The worker: consumes tasks of one or more roles and executes them. The
//! runtime (claim, complete, ack, retry, shutdown, reconnection) is in
//! [`runtime`]; what each revision's tasks do is in the `revisions` crate
//! (`revisions/src/<name>/`), whose registry the runtime builds its
//! executors from.

pub mod runtime;
