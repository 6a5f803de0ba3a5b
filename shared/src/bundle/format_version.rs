//! The bundle layout's version, apart so that the manifest, its errors and the weights can all
//! name it without depending on one another.

/// Version of the bundle layout; readers refuse versions they do not know. Version 1 was one
/// model per export ([`crate::exported`]).
pub const BUNDLE_FORMAT_VERSION: u32 = 2;
