//! Secret lifetimes (`90d`, `12w`, `24mo`, `1y`, and the tenant policy's ISO 8601 maximum): the
//! module lives in core, because preflight checks the same lifetime against the same policy
//! before any write, and a tool may not depend on another tool.

pub use s2s_core::lifetime::*;
