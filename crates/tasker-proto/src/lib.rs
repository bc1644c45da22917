//! Tasker's gRPC API types: the protobuf messages and services of `proto/tasker/v1/`
//! (package `tasker.v1`), and exact conversions between them and the domain types.
//!
//! - [`v1`]: the generated code (`cargo xtask codegen` writes it from the `.proto` files with
//!   a protobuf compiler in Rust; it is committed, and `cargo xtask codegen --check` fails when
//!   it is stale). It has its own lint settings.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//! - [`convert`]: domain ↔ protobuf. A value that cannot be converted exactly is a
//!   [`convert::ConvertError`] naming the field, never a silent default.

pub mod convert;

/// The generated messages, enums, clients and servers of package `tasker.v1`.
#[path = "gen/tasker.v1.rs"]
pub mod v1;

/// The encoded `FileDescriptorSet` of the `.proto` files and their imports, for server
/// reflection (`tonic-reflection`) and the wire-compatibility check.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/tasker_descriptor.binpb");
