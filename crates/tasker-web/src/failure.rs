//! [`AuthFailure`]: why a request did not authenticate, specific enough for logs and metrics,
//! and summarised for the caller without internals.

use jsonwebtoken::Algorithm;

use crate::permission::UnknownGrant;

/// Why a request's credential was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header and no API key header.
    #[error("no credential: send `Authorization: Bearer <token>` or the API key header")]
    Missing,
    /// The credential is not readable: not ASCII, another scheme, empty, or too long.
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// The token's `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token names an algorithm that is not accepted for its key.
    #[error("the token's algorithm {0:?} is not accepted")]
    AlgorithmNotAccepted(Algorithm),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` is not the configured audience.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A required claim is missing or has the wrong type.
    #[error("the token's claim `{0}` is missing or invalid")]
    BadClaim(String),
    /// The token is not a well-formed JWT.
    #[error("the token is not a well-formed JWT")]
    BadToken,
    /// The token's `kid` is missing or not among the verification keys.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The verification keys could not be fetched and none are usable.
    #[error("the verification keys are unavailable")]
    KeysUnavailable,
    /// The API key is not one of the configured keys.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// Strict validation: the credential carries a permission outside the vocabulary.
    #[error("{0}")]
    UnknownPermission(UnknownGrant),
}

impl AuthFailure {
    /// The reason label of metrics and of the problem's `reason` member: `missing`,
    /// `malformed`, `expired`, `not_yet_valid`, `invalid`, `unknown_key`, `keys_unavailable`,
    /// `unknown_permission`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed(_) => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::AlgorithmNotAccepted(_)
            | Self::BadSignature
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::BadClaim(_)
            | Self::BadToken
            | Self::InvalidApiKey => "invalid",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::UnknownPermission(_) => "unknown_permission",
        }
    }

    /// What the caller is told. Deliberately less than [`Display`](std::fmt::Display) for
    /// signature and claim failures, which are logged in full but answered as "invalid", so a
    /// forger learns nothing about which check failed.
    pub fn public_detail(&self) -> &'static str {
        match self {
            Self::Missing => "No credential was sent.",
            Self::Malformed(_) => "The credential is malformed.",
            Self::Expired => "The token has expired.",
            Self::NotYetValid => "The token is not valid yet.",
            Self::KeysUnavailable => "Tokens cannot be verified right now; try again later.",
            Self::InvalidApiKey => "The API key is not valid.",
            Self::UnknownPermission(_) => "The credential grants an unknown permission.",
            _ => "The token is not valid.",
        }
    }

    /// Whether the failure is the server's (the keys cannot be fetched): answered 503, not 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable)
    }
}

impl From<jsonwebtoken::errors::Error> for AuthFailure {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match error.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                Self::BadClaim(claim.clone())
            }
            ErrorKind::InvalidSubject => Self::BadClaim("sub".to_owned()),
            _ => Self::BadToken,
        }
    }
}
