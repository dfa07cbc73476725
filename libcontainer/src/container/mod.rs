//! Container operations, one file each.
pub struct Container;
