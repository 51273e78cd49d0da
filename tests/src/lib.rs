//! The integration tests live in `tests/`; their harness is the `testkit` crate.
