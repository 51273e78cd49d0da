//! The worker: consumes tasks of one or more roles and executes them. The
//! runtime (claim, complete, ack, retry, shutdown, reconnection) is in
//! [`runtime`]; what each revision's tasks do is in [`revisions`].

pub mod revisions;
pub mod runtime;
