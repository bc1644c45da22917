//! [`Principal`]: who made a request, how they proved it, and what they may do.

use crate::permission::{Grants, Permission};

/// How a principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A JWT bearer token.
    Jwt {
        /// The token's `iss`.
        issuer: String,
    },
    /// An API key.
    ApiKey {
        /// The key's configured description (never the key).
        description: String,
    },
    /// Authentication is disabled: every request is anonymous and allowed.
    Disabled,
}

impl AuthMethod {
    /// The method's name in metrics and logs: `jwt`, `api_key`, `disabled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Jwt { .. } => "jwt",
            Self::ApiKey { .. } => "api_key",
            Self::Disabled => "disabled",
        }
    }
}

/// The authenticated caller of one request, put in the request's extensions by the
/// authentication layer (handlers take it with `Extension<Principal>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or the API key's description, or `anonymous`.
    pub subject: String,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// What the caller may do.
    pub grants: Grants,
    /// The token's `exp` (seconds since the epoch), if any.
    pub expires_at: Option<u64>,
}

impl Principal {
    /// The principal of every request when authentication is disabled.
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".to_owned(),
            method: AuthMethod::Disabled,
            grants: Grants::everything(),
            expires_at: None,
        }
    }

    /// Whether the principal may do what `permission` names.
    pub fn allows(&self, permission: Permission) -> bool {
        self.grants.allows(permission)
    }
}
