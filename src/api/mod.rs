//! HTTP surfaces of a node: the REST API and Prometheus metrics.

pub mod metrics;
