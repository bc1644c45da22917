//! Value types with their own validation: redacting URLs and secrets, bind addresses.

mod bind;
mod secret;
mod url;

pub use bind::BindAddress;
pub use secret::Secret;
pub use url::{AmqpUrl, DatabaseUrl, HttpUrl, MemcachedUrl, RedisUrl, UrlError};

pub(crate) use bind::same_listener;
pub(crate) use url::{MASK, redact_url_text};

#[cfg(test)]
mod tests;
