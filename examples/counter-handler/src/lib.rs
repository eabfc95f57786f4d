//! Example counter handler. A shell until the guest SDK issue fills it with a real component.
#![deny(missing_docs)]

pub use alga_storage_guest as guest;
