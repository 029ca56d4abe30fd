//! Each CI platform's view of a source.

pub mod gitlab;
