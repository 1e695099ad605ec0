//! Prefiq.
