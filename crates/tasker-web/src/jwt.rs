//! JWT bearer tokens: verification with a configured public key or with keys from a JWKS
//! endpoint.
//!
//! The accepted algorithms are the configured ones intersected with the key's family, so an
//! RSA key never verifies an HMAC or ECDSA token (the RS256 → HS256 confusion is impossible:
//! no HMAC key exists). `exp`, `iss`, `aud` and `sub` are required; `nbf`, when present, must
//! have passed; both with a small leeway for clock skew.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde_json::{Map, Value};

use crate::failure::AuthFailure;
use crate::jwks::Jwks;
use crate::permission::Grants;
use crate::principal::{AuthMethod, Principal};

/// The longest token accepted, in bytes. Real tokens are a few hundred bytes to a few KiB; a
/// larger one is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The default leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// How tokens are checked (the composition root maps `*.web.auth` onto it).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud` (the token's `aud` may be a list containing it).
    pub audience: String,
    /// The accepted algorithms (`jwt_allowed_algorithms`), before the intersection with the
    /// key's family.
    pub algorithms: Vec<Algorithm>,
    /// The claim holding the permissions (an array of strings).
    pub permissions_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Whether a permission outside the vocabulary refuses the token (otherwise it is dropped
    /// and logged).
    pub strict: bool,
}

/// Why a verifier could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    /// The public key is not a PEM RSA, EC or Ed25519 public key.
    #[error(
        "the JWT public key is not a PEM-encoded RSA, EC or Ed25519 public key (hint: it starts with `-----BEGIN PUBLIC KEY-----`)"
    )]
    UnreadableKey,
    /// No configured algorithm fits the key.
    #[error(
        "no algorithm of `jwt_allowed_algorithms` ({configured}) can be verified with this {family} key (hint: use {hint})"
    )]
    NoAlgorithmForKey {
        /// The configured algorithms.
        configured: String,
        /// The key's family.
        family: &'static str,
        /// Algorithms of that family.
        hint: &'static str,
    },
    /// No algorithm is configured, or one is symmetric.
    #[error("`jwt_allowed_algorithms` must name asymmetric algorithms only; {0:?} is not one")]
    SymmetricAlgorithm(Algorithm),
}

/// Where verification keys come from.
#[derive(Debug, Clone)]
enum Keys {
    Static {
        key: Arc<DecodingKey>,
        algorithms: Vec<Algorithm>,
    },
    Jwks(Jwks),
}

/// Verifies bearer tokens.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    settings: Arc<JwtSettings>,
    keys: Keys,
}

impl JwtVerifier {
    /// A verifier with one configured PEM public key.
    pub fn with_public_key(settings: JwtSettings, pem: &str) -> Result<Self, JwtConfigError> {
        check_asymmetric(&settings.algorithms)?;
        let pem = pem.as_bytes();
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| JwtConfigError::UnreadableKey)?;
        let algorithms = algorithms_for(&key, None, &settings.algorithms);
        if algorithms.is_empty() {
            let (family, hint) = family_names(&key);
            return Err(JwtConfigError::NoAlgorithmForKey {
                configured: names(&settings.algorithms),
                family,
                hint,
            });
        }
        Ok(Self {
            settings: Arc::new(settings),
            keys: Keys::Static {
                key: Arc::new(key),
                algorithms,
            },
        })
    }

    /// A verifier whose keys come from `jwks` (which refreshes itself).
    pub fn with_jwks(settings: JwtSettings, jwks: Jwks) -> Result<Self, JwtConfigError> {
        check_asymmetric(&settings.algorithms)?;
        Ok(Self {
            settings: Arc::new(settings),
            keys: Keys::Jwks(jwks),
        })
    }

    /// Verifies `token` and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthFailure::Malformed("the token is too long"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::BadToken)?;
        let (key, accepted) = match &self.keys {
            Keys::Static { key, algorithms } => (Arc::clone(key), algorithms.clone()),
            Keys::Jwks(jwks) => {
                let kid = header.kid.as_deref().ok_or(AuthFailure::UnknownKey)?;
                let found = jwks.key(kid).await?;
                let accepted =
                    algorithms_for(&found.key, found.algorithm, &self.settings.algorithms);
                (found.key, accepted)
            }
        };
        if !accepted.contains(&header.alg) {
            return Err(AuthFailure::AlgorithmNotAccepted(header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)?;
        self.principal(data.claims)
    }

    fn principal(&self, claims: Map<String, Value>) -> Result<Principal, AuthFailure> {
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(AuthFailure::BadClaim("sub".to_owned())),
        };
        let claim = &self.settings.permissions_claim;
        let texts: Vec<&str> = match claims.get(claim) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .ok_or_else(|| AuthFailure::BadClaim(claim.clone()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(AuthFailure::BadClaim(claim.clone())),
        };
        let (grants, unknown) = Grants::parse(texts);
        if let Some(first) = unknown.into_iter().next() {
            if self.settings.strict {
                return Err(AuthFailure::UnknownPermission(first));
            }
            tracing::warn!(subject, %first, "a token's unknown permission is ignored");
        }
        Ok(Principal {
            subject,
            method: AuthMethod::Jwt {
                issuer: self.settings.issuer.clone(),
            },
            grants,
            expires_at: claims.get("exp").and_then(Value::as_u64),
        })
    }
}

/// A key from a JWKS document, with the algorithm it is pinned to, if it names one.
#[derive(Debug, Clone)]
pub struct JwksKey {
    /// The key.
    pub key: Arc<DecodingKey>,
    /// The JWK's `alg`, if present: the key verifies only that algorithm.
    pub algorithm: Option<Algorithm>,
}

impl JwksKey {
    /// The key of a JWK, if it is a usable signature key (`use` absent or `sig`, asymmetric,
    /// well-formed).
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return None;
        }
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let algorithm = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
        };
        Some(Self {
            key: Arc::new(key),
            algorithm,
        })
    }
}

fn check_asymmetric(algorithms: &[Algorithm]) -> Result<(), JwtConfigError> {
    match algorithms
        .iter()
        .find(|alg| matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
    {
        Some(alg) => Err(JwtConfigError::SymmetricAlgorithm(*alg)),
        None => Ok(()),
    }
}

/// The configured algorithms this key can verify: same family, and the JWK's own `alg` if it
/// names one.
fn algorithms_for(
    key: &DecodingKey,
    pinned: Option<Algorithm>,
    configured: &[Algorithm],
) -> Vec<Algorithm> {
    configured
        .iter()
        .copied()
        .filter(|alg| alg.family() == key.family())
        .filter(|alg| pinned.is_none_or(|pinned| pinned == *alg))
        .collect()
}

fn family_names(key: &DecodingKey) -> (&'static str, &'static str) {
    use jsonwebtoken::AlgorithmFamily;
    match key.family() {
        AlgorithmFamily::Rsa => ("RSA", "RS256, RS384, RS512, PS256, PS384 or PS512"),
        AlgorithmFamily::Ec => ("EC", "ES256 or ES384"),
        AlgorithmFamily::Ed => ("Ed25519", "EdDSA"),
        AlgorithmFamily::Hmac => ("HMAC", "an asymmetric key"),
    }
}

fn names(algorithms: &[Algorithm]) -> String {
    algorithms
        .iter()
        .map(|alg| format!("{alg:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
