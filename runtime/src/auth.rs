//! Who is calling, and what they may do.
//!
//! Every generated handler takes a [`Caller`]: the request's [`Principal`], established by the
//! [`Authenticator`] the server installed (see [`crate::serve`]). A request without valid
//! credentials is a 401 problem; a caller without the operation's permission a 403.
//!
//! Access tokens are JWTs that Cortex signs with Ed25519 (`EdDSA`, the only algorithm accepted:
//! never `none`, never a symmetric algorithm a public key could be abused for). The `kid` of a
//! token must name a key of the configured key set, with no fallback; `exp`, `nbf`, `iss`, `aud`
//! and `sub` are checked with 30 seconds of leeway.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::Problem;

/// The tenant of a development principal, and of rows written before tenancy existed.
pub const DEFAULT_TENANT: Uuid = Uuid::nil();

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// A signed access token.
    AccessToken,
    /// A personal access token.
    PersonalToken,
    /// An admin UI session.
    Session,
    /// `PREFIQ_AUTH=off`: nobody, with every permission.
    Development,
    /// The server itself (migrations, bootstrap, maintenance).
    System,
}

/// Whose business an operation is.
///
/// A tenant's administrator holds every permission *of its tenant* (`*`), never the platform's:
/// creating tenants, registering apps, changing platform settings or another tenant's users
/// needs a platform operator, whatever a tenant's roles grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// A tenant's: callers act within their own tenant, as their roles allow.
    Tenant,
    /// The platform's: only platform operators.
    Platform,
}

/// Who is calling, in which tenant, with which permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject: a user id, or a service client's id.
    pub subject: String,
    /// The user, for people (not for service clients).
    pub user: Option<Uuid>,
    /// The tenant every row it reads or writes belongs to.
    pub tenant: Uuid,
    /// Its roles.
    pub roles: Vec<String>,
    /// The teams it belongs to.
    pub teams: Vec<Uuid>,
    /// What it may do: permissions as `app.entity.action` or `app.operationId`, where a segment
    /// may be `*` (`crm.*`, `*`).
    pub permissions: Vec<String>,
    /// How it proved who it is.
    pub credential: Credential,
    /// Whether it is a platform operator: it may do what [`Scope::Platform`] operations do, and
    /// holds every permission in the tenant it acts in.
    pub operator: bool,
}

/// Whether `pattern` (segments separated by `.`, `*` matching any rest) grants `permission`.
pub fn permission_matches(pattern: &str, permission: &str) -> bool {
    let mut wanted = permission.split('.');
    for segment in pattern.split('.') {
        if segment == "*" {
            return true;
        }
        if wanted.next() != Some(segment) {
            return false;
        }
    }
    wanted.next().is_none()
}

impl Principal {
    /// Whether it holds `permission` in its tenant: a platform operator holds every one.
    pub fn allows(&self, permission: &str) -> bool {
        self.operator
            || self
                .permissions
                .iter()
                .any(|pattern| permission_matches(pattern, permission))
    }

    /// Whether it may do an operation of `scope` that needs `permission`: a platform operation
    /// only as a platform operator, a tenant's as its roles allow.
    pub fn may(&self, scope: Scope, permission: &str) -> bool {
        match scope {
            Scope::Platform => self.operator,
            Scope::Tenant => self.allows(permission),
        }
    }

    /// The 403 unless it holds `permission`.
    pub fn require(&self, permission: &str) -> Result<(), Problem> {
        self.require_in(Scope::Tenant, permission)
    }

    /// The 403 unless it may do an operation of `scope` that needs `permission`.
    pub fn require_in(&self, scope: Scope, permission: &str) -> Result<(), Problem> {
        if self.may(scope, permission) {
            return Ok(());
        }
        Err(Problem::forbidden(match scope {
            Scope::Platform => format!(
                "only a platform operator may do this (`{permission}`): a tenant's roles never grant it"
            ),
            Scope::Tenant => {
                format!("this needs the permission `{permission}`, which your roles do not grant")
            }
        }))
    }

    /// The principal of `PREFIQ_AUTH=off`: the default tenant, every permission.
    pub fn development() -> Principal {
        Principal {
            subject: "development".into(),
            user: None,
            tenant: DEFAULT_TENANT,
            roles: vec!["admin".into()],
            teams: Vec::new(),
            permissions: vec!["*".into()],
            credential: Credential::Development,
            operator: true,
        }
    }

    /// The server acting on its own, in `tenant`.
    pub fn system(tenant: Uuid) -> Principal {
        Principal {
            subject: "system".into(),
            user: None,
            tenant,
            roles: vec!["system".into()],
            teams: Vec::new(),
            permissions: vec!["*".into()],
            credential: Credential::System,
            operator: true,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer (the Cortex that signed it).
    pub iss: String,
    /// The audience (Prefiq services).
    pub aud: String,
    /// The user or client.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    pub nbf: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// A unique id.
    pub jti: String,
    /// The tenant.
    pub tid: Uuid,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permissions, resolved from the roles when the token was issued.
    #[serde(default)]
    pub perms: Vec<String>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<Uuid>,
    /// `user` or `client`.
    pub kind: String,
    /// A platform operator's token (absent: not one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub op: bool,
}

impl Claims {
    /// When the token was issued, to the millisecond: the time in its `jti` (a UUIDv7, as Cortex
    /// makes them), else its `iat` (whole seconds). Microseconds since the epoch.
    pub fn issued_at_micros(&self) -> i64 {
        let from_jti = Uuid::parse_str(&self.jti)
            .ok()
            .and_then(|id| id.get_timestamp())
            .map(|at| {
                let (seconds, nanos) = at.to_unix();
                seconds as i64 * 1_000_000 + i64::from(nanos / 1_000)
            });
        from_jti.unwrap_or(self.iat as i64 * 1_000_000)
    }

    /// The principal the claims describe.
    pub fn principal(&self) -> Principal {
        Principal {
            subject: self.sub.clone(),
            user: (self.kind == "user")
                .then(|| Uuid::parse_str(&self.sub).ok())
                .flatten(),
            tenant: self.tid,
            roles: self.roles.clone(),
            teams: self.teams.clone(),
            permissions: self.perms.clone(),
            credential: Credential::AccessToken,
            operator: self.op,
        }
    }
}

/// Why a request has no principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unauthenticated {
    /// No credentials were sent.
    Missing,
    /// The credentials were not valid; the reason is for logs and the problem's detail.
    Invalid(String),
}

impl Unauthenticated {
    /// The 401 problem, with the RFC 6750 challenge.
    pub fn problem(&self) -> Problem {
        match self {
            Unauthenticated::Missing => Problem::unauthorized(
                "send an access token: `Authorization: Bearer <token>`",
                "Bearer realm=\"prefiq\"",
            ),
            Unauthenticated::Invalid(why) => Problem::unauthorized(
                format!("the access token is not valid: {why}"),
                "Bearer realm=\"prefiq\", error=\"invalid_token\"",
            ),
        }
    }
}

/// What an authenticator returns.
pub type Authenticated<'a> =
    Pin<Box<dyn Future<Output = Result<Principal, Unauthenticated>> + Send + 'a>>;

/// Establishes the principal of a request.
pub trait Authenticator: Send + Sync + 'static {
    /// The principal of the request with these parts.
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> Authenticated<'a>;
}

/// The authenticator of a server, as a request extension.
#[derive(Clone)]
pub struct Auth(pub Arc<dyn Authenticator>);

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth")
    }
}

/// `PREFIQ_AUTH=off`: every request is the development principal.
#[derive(Debug, Clone, Copy)]
pub struct Open;

impl Authenticator for Open {
    fn authenticate<'a>(&'a self, _: &'a Parts) -> Authenticated<'a> {
        Box::pin(async { Ok(Principal::development()) })
    }
}

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Unauthenticated> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Unauthenticated::Invalid("the Authorization header is not text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(Unauthenticated::Invalid(
            "use the Bearer scheme: `Authorization: Bearer <token>`".into(),
        )),
    }
}

/// The public half of a signing key, as a JSON Web Key (RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The key id tokens name.
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
    /// `EdDSA`.
    #[serde(default)]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    /// The keys.
    pub keys: Vec<PublicKey>,
}

/// Verifies access tokens against a fixed key set.
///
/// A token whose signature was checked is remembered until it expires, so that a client that
/// sends the same token with every request pays for the signature once, not every time. That
/// changes nothing a token means: what is remembered is what the token itself says, and it is
/// forgotten at the token's `exp`, when the verifier is replaced (a new key set drops every
/// token of a key taken out of it), and when the cache is full. Revocation before `exp` is
/// Cortex's own check, which runs after this one on every request.
pub struct TokenVerifier {
    keys: BTreeMap<String, DecodingKey>,
    validation: Validation,
    verified: std::sync::RwLock<std::collections::HashMap<Box<str>, Arc<Claims>>>,
}

/// How many verified tokens a verifier remembers.
const VERIFIED_TOKENS: usize = 10_000;

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: u64 = 30;

impl TokenVerifier {
    /// A verifier of tokens issued by `issuer` for `audience`, signed by a key of `keys`. Keys
    /// that are not Ed25519 are refused, not ignored.
    pub fn new(keys: &KeySet, issuer: &str, audience: &str) -> Result<TokenVerifier, String> {
        let mut decoding = BTreeMap::new();
        for key in &keys.keys {
            if key.kty != "OKP"
                || key.crv != "Ed25519"
                || key.alg.as_deref().is_some_and(|a| a != "EdDSA")
            {
                return Err(format!(
                    "key `{}` is not an Ed25519 key (kty OKP, crv Ed25519, alg EdDSA)",
                    key.kid
                ));
            }
            let decoded = DecodingKey::from_ed_components(&key.x)
                .map_err(|e| format!("key `{}`: {e}", key.kid))?;
            decoding.insert(key.kid.clone(), decoded);
        }
        if decoding.is_empty() {
            return Err("the key set has no keys".into());
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(TokenVerifier {
            keys: decoding,
            validation,
            verified: std::sync::RwLock::new(std::collections::HashMap::new()),
        })
    }

    /// The claims of a valid token: remembered ones while they are in their time, the others
    /// checked (and remembered when valid).
    pub fn verify(&self, token: &str) -> Result<Claims, Unauthenticated> {
        let now = jsonwebtoken::get_current_timestamp();
        // Within the same leeway the first check allowed.
        let in_time = |claims: &Claims| {
            claims.exp.saturating_add(LEEWAY) > now && claims.nbf <= now.saturating_add(LEEWAY)
        };
        if let Ok(verified) = self.verified.read()
            && let Some(claims) = verified.get(token)
            && in_time(claims)
        {
            return Ok(Claims::clone(claims));
        }
        let claims = self.check(token)?;
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.retain(|_, claims| in_time(claims));
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
            }
            verified.insert(token.into(), Arc::new(claims.clone()));
        }
        Ok(claims)
    }

    /// Checks a token's signature and claims.
    fn check(&self, token: &str) -> Result<Claims, Unauthenticated> {
        let invalid = |why: &str| Unauthenticated::Invalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("it is not a JWT"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("it is not signed with EdDSA"));
        }
        let kid = header.kid.ok_or_else(|| invalid("it names no key (kid)"))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| invalid("it names a key this server does not know"))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => "it has expired",
                    ErrorKind::ImmatureSignature => "it is not valid yet",
                    ErrorKind::InvalidIssuer => "another issuer signed it",
                    ErrorKind::InvalidAudience => "it is meant for another audience",
                    ErrorKind::InvalidSignature => "its signature does not match",
                    ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                    _ => "it cannot be read",
                })
            })
    }
}

impl Authenticator for TokenVerifier {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> Authenticated<'a> {
        Box::pin(async move {
            let token = bearer(&parts.headers)?.ok_or(Unauthenticated::Missing)?;
            Ok(self.verify(token)?.principal())
        })
    }
}

/// A key set fetched from a Cortex's `/.well-known/jwks.json`: at start-up (which fails when it
/// cannot be read), every ten minutes after, and when a token names a key it does not know (at
/// most twice a minute), so that rotated keys are picked up.
pub struct RemoteKeys {
    url: String,
    issuer: String,
    audience: String,
    current: std::sync::RwLock<Arc<TokenVerifier>>,
    last_fetch: std::sync::Mutex<std::time::Instant>,
    client: reqwest::Client,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// Fetches the key set at `url` and keeps it fresh.
    pub async fn start(
        url: String,
        issuer: String,
        audience: String,
    ) -> Result<Arc<RemoteKeys>, String> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("PREFIQ_JWKS_URL: {e}"))?;
        let verifier = Self::fetch(&client, &url, &issuer, &audience).await?;
        let keys = Arc::new(RemoteKeys {
            url,
            issuer,
            audience,
            current: std::sync::RwLock::new(Arc::new(verifier)),
            last_fetch: std::sync::Mutex::new(std::time::Instant::now()),
            client,
        });
        let weak = Arc::downgrade(&keys);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                let Some(keys) = weak.upgrade() else { return };
                keys.refresh().await;
            }
        });
        Ok(keys)
    }

    async fn fetch(
        client: &reqwest::Client,
        url: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<TokenVerifier, String> {
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("PREFIQ_JWKS_URL: cannot fetch {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "PREFIQ_JWKS_URL: {url} answered {}",
                response.status()
            ));
        }
        let set: KeySet = response
            .json()
            .await
            .map_err(|e| format!("PREFIQ_JWKS_URL: {url} is not a JSON Web Key Set: {e}"))?;
        TokenVerifier::new(&set, issuer, audience).map_err(|e| format!("PREFIQ_JWKS_URL: {e}"))
    }

    async fn refresh(&self) {
        match Self::fetch(&self.client, &self.url, &self.issuer, &self.audience).await {
            Ok(verifier) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(verifier);
                }
            }
            Err(error) => tracing::warn!(%error, "keeping the previous key set"),
        }
    }

    fn verifier(&self) -> Arc<TokenVerifier> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Authenticator for Arc<RemoteKeys> {
    fn authenticate<'a>(&'a self, parts: &'a Parts) -> Authenticated<'a> {
        Box::pin(async move {
            let token = bearer(&parts.headers)?.ok_or(Unauthenticated::Missing)?;
            let verifier = self.verifier();
            match verifier.verify(token) {
                Err(Unauthenticated::Invalid(why)) if why.contains("does not know") => {
                    let due = self
                        .last_fetch
                        .lock()
                        .map(|mut last| {
                            let due = last.elapsed() > std::time::Duration::from_secs(30);
                            if due {
                                *last = std::time::Instant::now();
                            }
                            due
                        })
                        .unwrap_or(false);
                    if due {
                        self.refresh().await;
                    }
                    Ok(self.verifier().verify(token)?.principal())
                }
                other => Ok(other?.principal()),
            }
        })
    }
}

/// An Ed25519 key that signs access tokens.
pub struct SigningKey {
    kid: String,
    encoding: jsonwebtoken::EncodingKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key whose private half is the 32-byte `seed`.
    pub fn from_seed(kid: &str, seed: &[u8; 32]) -> SigningKey {
        use base64::Engine as _;
        // PKCS #8 v1 of an Ed25519 private key: a fixed prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(seed);
        let verifying = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
        SigningKey {
            kid: kid.to_owned(),
            encoding: jsonwebtoken::EncodingKey::from_ed_der(&der),
            public: PublicKey {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                kid: kid.to_owned(),
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(verifying.as_bytes()),
                alg: Some("EdDSA".into()),
                usage: Some("sig".into()),
            },
        }
    }

    /// A new random key.
    pub fn generate(kid: &str) -> SigningKey {
        SigningKey::from_seed(kid, &random_bytes())
    }

    /// A key written as `KID:SEED`, the seed 32 bytes in base64url (what `PREFIQ_SIGNING_KEY`
    /// holds).
    pub fn parse(text: &str) -> Result<SigningKey, String> {
        use base64::Engine as _;
        let (kid, seed) = text
            .trim()
            .split_once(':')
            .ok_or("write the signing key as KID:SEED, the seed 32 bytes in base64url")?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(seed.trim_end_matches('='))
            .map_err(|_| "the seed is not base64url")?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| "the seed must be 32 bytes")?;
        if kid.is_empty() {
            return Err("the key id is empty".into());
        }
        Ok(SigningKey::from_seed(kid, &seed))
    }

    /// A new key written as [`SigningKey::parse`] reads it.
    pub fn generate_text(kid: &str) -> String {
        use base64::Engine as _;
        format!(
            "{kid}:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes())
        )
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, to publish.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A signed access token carrying `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        // Signing with a well-formed Ed25519 key cannot fail.
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // Without an entropy source there is nothing secure to do: stop.
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes
}

/// The caller of a request. Handlers take it to learn who calls; it fails with 401 when the
/// request has no valid credentials.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A principal established earlier in the request (a layer, an internal call) stands.
        if let Some(principal) = parts.extensions.get::<Arc<Principal>>() {
            return Ok(Caller(principal.clone()));
        }
        let Some(Auth(authenticator)) = parts.extensions.get::<Auth>().cloned() else {
            // No authenticator installed: nothing is open by default.
            return Err(Unauthenticated::Missing.problem());
        };
        match authenticator.authenticate(parts).await {
            Ok(principal) => {
                let principal = Arc::new(principal);
                parts.extensions.insert(principal.clone());
                Ok(Caller(principal))
            }
            Err(error) => {
                if let Unauthenticated::Invalid(why) = &error {
                    tracing::info!(reason = %why, "refused credentials");
                }
                Err(error.problem())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_match_by_segment_with_a_trailing_wildcard() {
        assert!(permission_matches("*", "crm.deal.read"));
        assert!(permission_matches("crm.*", "crm.deal.read"));
        assert!(permission_matches("crm.deal.*", "crm.deal.read"));
        assert!(permission_matches("crm.deal.read", "crm.deal.read"));
        assert!(!permission_matches("crm.deal.read", "crm.deal.update"));
        assert!(!permission_matches("crm.deal", "crm.deal.read"));
        assert!(!permission_matches("crm.deal.read.x", "crm.deal.read"));
        assert!(!permission_matches("lms.*", "crm.deal.read"));
        assert!(!permission_matches("crm.dea*", "crm.deal.read"));
    }

    #[test]
    fn bearer_tokens_need_the_bearer_scheme() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), Ok(None));
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Ok(Some("abc")));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert!(bearer(&headers).is_err());
    }

    fn claims(exp: u64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            iss: "prefiq".into(),
            aud: "prefiq".into(),
            sub: "user".into(),
            exp,
            nbf: now - 5,
            iat: now - 5,
            jti: "t".into(),
            tid: DEFAULT_TENANT,
            roles: Vec::new(),
            perms: vec!["*".into()],
            teams: Vec::new(),
            kind: "user".into(),
            op: false,
        }
    }

    #[test]
    fn verified_tokens_are_remembered_only_while_they_are_in_time() {
        let key = SigningKey::generate("k");
        let keys = KeySet {
            keys: vec![key.public().clone()],
        };
        let verifier = TokenVerifier::new(&keys, "prefiq", "prefiq").unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let token = key.sign(&claims(now + 600));
        assert_eq!(verifier.verify(&token).unwrap().sub, "user");
        assert!(
            verifier
                .verified
                .read()
                .unwrap()
                .contains_key(token.as_str())
        );
        assert_eq!(verifier.verify(&token).unwrap().sub, "user", "from memory");
        // A remembered token past its time is checked again, and refused.
        verifier.verified.write().unwrap().insert(
            "remembered.but.expired".into(),
            Arc::new(claims(now - LEEWAY - 1)),
        );
        assert!(verifier.verify("remembered.but.expired").is_err());
        // Tokens that fail are not remembered.
        let expired = key.sign(&claims(now - LEEWAY - 60));
        assert!(verifier.verify(&expired).is_err());
        assert!(
            !verifier
                .verified
                .read()
                .unwrap()
                .contains_key(expired.as_str())
        );
        // Another key set remembers nothing of this one.
        let other = TokenVerifier::new(
            &KeySet {
                keys: vec![SigningKey::generate("k").public().clone()],
            },
            "prefiq",
            "prefiq",
        )
        .unwrap();
        assert!(other.verify(&token).is_err(), "a key taken out of the set");
    }
}
