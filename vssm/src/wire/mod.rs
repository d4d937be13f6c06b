//! The wire format: proto3-JSON messages of the first VSSM, kept apart from
//! the domain types. Field names are lowerCamelCase with the snake_case
//! spelling accepted on input; unknown fields are refused by name.

pub mod authz;
pub mod codec;
pub mod key_admin;
pub mod lifecycle;
pub mod messages;

pub use codec::{Bytes, Int64, SecretBytes, SecretString};
pub use messages::*;
