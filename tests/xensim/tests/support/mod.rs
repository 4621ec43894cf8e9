//! What the integration tests share. Each test file compiles all of it and
//! uses a part.
#![allow(dead_code)]

pub mod pattern;
pub mod props;
pub mod vif;
