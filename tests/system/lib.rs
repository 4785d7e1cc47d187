//! No library: the tests are in `main.rs`.
