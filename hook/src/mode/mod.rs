//! One module per network mode: what setup creates and teardown removes.

pub mod bridge;
pub mod container;
pub mod host;
pub mod none;
