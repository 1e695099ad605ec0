//! Access tokens, as an expert would check them by hand: EdDSA (Ed25519) JWTs verified with
//! jsonwebtoken against a JSON Web Key Set, issuer, audience, expiry and not-before checked,
//! and a verified token remembered until it expires, so that its signature is checked once.
//! Without keys (`JWT_KEYS` unset) every request is the default tenant's administrator.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

use crate::company::Problem;

/// Who is asking.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub tenant: Uuid,
    pub subject: String,
    /// As the audit log names it.
    pub credential: &'static str,
    perms: Vec<String>,
}

impl Caller {
    /// A 403 unless a permission of the caller's matches `needed` (`*`, `crm.*`, exact).
    pub(crate) fn require(&self, needed: &str) -> Result<(), Problem> {
        let granted = self.perms.iter().any(|p| {
            p == "*"
                || p == needed
                || p.strip_suffix(".*").is_some_and(|prefix| {
                    needed.starts_with(prefix) && needed[prefix.len()..].starts_with('.')
                })
        });
        if granted {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("this needs `{needed}`"),
            ))
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    tid: Uuid,
    #[serde(default)]
    perms: Vec<String>,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    x: String,
}

/// How callers are known.
pub(crate) enum Auth {
    /// Nobody checks: the default tenant, every permission.
    Off,
    On(Box<Verifier>),
}

pub(crate) struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    verified: RwLock<HashMap<Box<str>, Arc<Claims>>>,
}

const LEEWAY: u64 = 30;

impl Auth {
    /// From a JSON Web Key Set of Ed25519 keys, or off without one.
    pub(crate) fn new(keys: Option<&str>, issuer: &str, audience: &str) -> Result<Auth, String> {
        let Some(keys) = keys else {
            return Ok(Auth::Off);
        };
        let set: KeySet = serde_json::from_str(keys).map_err(|e| format!("JWT_KEYS: {e}"))?;
        let mut decoding = HashMap::new();
        for key in set.keys {
            let decoded = DecodingKey::from_ed_components(&key.x).map_err(|e| e.to_string())?;
            decoding.insert(key.kid, decoded);
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Auth::On(Box::new(Verifier {
            keys: decoding,
            validation,
            verified: RwLock::new(HashMap::new()),
        })))
    }

    /// The caller of a request, with `needed` checked.
    pub(crate) fn caller(&self, headers: &HeaderMap, needed: &str) -> Result<Caller, Problem> {
        let caller = match self {
            Auth::Off => Caller {
                tenant: Uuid::nil(),
                subject: "development".into(),
                credential: "development",
                perms: vec!["*".into()],
            },
            Auth::On(verifier) => {
                let token = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "send a bearer token"))?;
                let claims = verifier.verify(token)?;
                Caller {
                    tenant: claims.tid,
                    subject: claims.sub.clone(),
                    credential: "access_token",
                    perms: claims.perms.clone(),
                }
            }
        };
        caller.require(needed)?;
        Ok(caller)
    }
}

impl Verifier {
    fn verify(&self, token: &str) -> Result<Arc<Claims>, Problem> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Ok(verified) = self.verified.read()
            && let Some(claims) = verified.get(token)
            && claims.exp + LEEWAY > now
        {
            return Ok(claims.clone());
        }
        let refused = || Problem::new(StatusCode::UNAUTHORIZED, "the token is not valid");
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused())?;
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(refused)?;
        let claims = Arc::new(
            jsonwebtoken::decode::<Claims>(token, key, &self.validation)
                .map_err(|_| refused())?
                .claims,
        );
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= 10_000 {
                verified.clear();
            }
            verified.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }
}
