//! The OAuth 2.0 authorization server, after the Security BCP (RFC 9700): the token endpoint
//! (RFC 6749) with `authorization_code` + PKCE (S256 only), `client_credentials` and rotating
//! `refresh_token`; the authorization endpoint; revocation (RFC 7009); the key set and the
//! server's metadata (RFC 8414). The resource-owner `password` grant is refused.
//!
//! Access tokens are short-lived EdDSA JWTs (see `prefiq_runtime::auth`). Refresh tokens rotate
//! on every use; presenting one that was already used revokes its whole family, in the same
//! transaction that finds it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Duration;
use prefiq_runtime::auth::{Claims, KeySet, Principal, SigningKey};
use prefiq_runtime::db::ColumnKind;
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::{Db, Executor, SqlValue, Tx};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::identity::{self, digest, new_secret, same};

/// The audience of the tokens Cortex signs, and their issuer in development when no public URL
/// is configured (the apps' defaults).
pub const ISSUER: &str = "prefiq";

/// What the token endpoints share.
pub struct Tokens {
    /// The request pool.
    pub db: Db,
    /// The key new tokens are signed with.
    pub key: SigningKey,
    /// Every public key tokens may be verified with (the signing key first).
    pub keys: KeySet,
    /// Whether cookies are `Secure` and insecure settings refused.
    pub production: bool,
    /// Where Cortex is reached (`PREFIQ_PUBLIC_URL`), without a trailing `/`: the base of the
    /// endpoints its metadata names. Never taken from a request's `Host`.
    pub public_url: String,
    /// What tokens name as their issuer, and the metadata as `issuer`: the public URL when one
    /// is configured (always, in production, where it is `https`), else [`ISSUER`].
    pub issuer: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("kid", &self.key.kid())
            .finish_non_exhaustive()
    }
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize)]
pub struct Issued {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The refresh token, for user grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl Tokens {
    /// A signed access token for `principal`, valid `minutes`.
    pub fn access_token(&self, principal: &Principal, minutes: i64) -> (String, i64) {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let seconds = minutes.clamp(1, 60) * 60;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: ISSUER.into(),
            sub: principal.subject.clone(),
            exp: now + seconds as u64,
            nbf: now,
            iat: now,
            jti: Uuid::now_v7().to_string(),
            tid: principal.tenant,
            roles: principal.roles.clone(),
            perms: principal.permissions.clone(),
            teams: principal.teams.clone(),
            kind: if principal.user.is_some() {
                "user"
            } else {
                "client"
            }
            .into(),
            op: principal.operator,
        };
        (self.key.sign(&claims), seconds)
    }

    async fn minutes(&self, tenant: Uuid, key: &str) -> i64 {
        crate::settings::integer(&self.db, tenant, key).await
    }

    /// Access and refresh tokens for `user` acting in `tenant`, the refresh token of `family`,
    /// inside `tx`.
    async fn for_user(
        &self,
        tx: &mut Tx,
        user: &identity::User,
        tenant: Uuid,
        client: &str,
        family: Uuid,
    ) -> Result<Issued, OAuthError> {
        let principal = identity::principal(
            tx,
            user,
            tenant,
            prefiq_runtime::auth::Credential::AccessToken,
        )
        .await
        .map_err(OAuthError::server)?;
        let access_minutes = self.minutes(tenant, "tokens.access-minutes").await;
        let refresh_days = self.minutes(tenant, "tokens.refresh-days").await;
        let (access_token, expires_in) = self.access_token(&principal, access_minutes);
        let refresh = new_secret();
        let now = prefiq_runtime::db::now();
        let statement = tx.pick(
            "INSERT INTO cortex_refresh_tokens (token_hash, family, user_id, client_id, created_at, expires_at, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            "INSERT INTO cortex_refresh_tokens (token_hash, family, user_id, client_id, created_at, expires_at, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        );
        tx.execute(
            statement,
            vec![
                SqlValue::Text(digest(&refresh)),
                SqlValue::Uuid(family),
                SqlValue::Uuid(user.id),
                SqlValue::Text(client.to_owned()),
                SqlValue::DateTime(now),
                SqlValue::DateTime(now + Duration::days(refresh_days.max(1))),
                SqlValue::Uuid(tenant),
            ],
        )
        .await
        .map_err(OAuthError::server)?;
        Ok(Issued {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(refresh),
        })
    }
}

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    challenge: bool,
    retry_after: Option<i64>,
    /// Whether it answers what could be a guess (an unknown client, a wrong secret, a code or
    /// refresh token that does not exist): only those count against the caller's address. A
    /// token that exists but was used, revoked or expired is no guess, and a legitimate app
    /// presents one now and then.
    guess: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            challenge: false,
            retry_after: None,
            guess: false,
        }
    }

    /// The same error, counted as a guess.
    fn guessed(self) -> OAuthError {
        OAuthError {
            guess: true,
            ..self
        }
    }

    fn client(description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            challenge: true,
            ..OAuthError::new("invalid_client", description)
        }
    }

    fn server(error: impl std::fmt::Display) -> OAuthError {
        tracing::error!(%error, "token endpoint failed");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..OAuthError::new("server_error", "the server failed; try again")
        }
    }

    fn throttled(wait: Option<i64>) -> OAuthError {
        OAuthError {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(wait.unwrap_or(60)),
            ..OAuthError::new(
                "invalid_request",
                "too many failed attempts; try again later",
            )
        }
    }
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        no_store(&mut response);
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cortex\""),
            );
        }
        if let Some(wait) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// The parameters the token and revocation endpoints read.
const PARAMETERS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "client_id",
    "client_secret",
    "scope",
    "token",
    "token_type_hint",
];

/// The form parameters of a request that the endpoints read, refusing a repeat of any of them
/// (RFC 6749 §3.2) and ignoring the rest, as RFC 6749 §3.1 requires of unrecognized ones.
fn form(body: &Bytes) -> Result<std::collections::BTreeMap<String, String>, OAuthError> {
    let mut params = std::collections::BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if !PARAMETERS.contains(&name.as_ref()) {
            continue;
        }
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("`{name}` is sent twice"),
            ));
        }
    }
    Ok(params)
}

/// The client's credentials: HTTP Basic, or `client_id` (and `client_secret`) in the body.
fn client_credentials(
    headers: &HeaderMap,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<(String, Option<String>), OAuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| OAuthError::client("bad Authorization header"))?;
        let encoded = text
            .strip_prefix("Basic ")
            .ok_or_else(|| OAuthError::client("authenticate the client with HTTP Basic"))?;
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::client("bad Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::client("bad Basic credentials"))?;
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Ok((decode(id), Some(decode(secret))));
    }
    let id = params
        .get("client_id")
        .cloned()
        .ok_or_else(|| OAuthError::client("the client is not identified: send client_id"))?;
    Ok((id, params.get("client_secret").cloned()))
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The digest of its secret; none for a public client (a browser app using PKCE).
    pub secret_hash: Option<String>,
    /// Where it may be sent back to, exactly.
    pub redirect_uris: Vec<String>,
    /// The tenant it acts in (client credentials).
    pub tenant: Uuid,
    /// Its roles (client credentials).
    pub roles: Vec<String>,
}

/// The client `id`, unless revoked.
pub async fn client(
    db: &mut impl Executor,
    id: &str,
) -> Result<Option<Client>, prefiq_runtime::db::DbError> {
    let statement = db.pick(
        "SELECT client_id, name, secret_hash, redirect_uris, tenant_id, roles FROM cortex_clients WHERE client_id = $1 AND revoked_at IS NULL",
        "SELECT client_id, name, secret_hash, redirect_uris, tenant_id, roles FROM cortex_clients WHERE client_id = ?1 AND revoked_at IS NULL",
    );
    let row = db
        .fetch_optional(statement, vec![SqlValue::Text(id.to_owned())])
        .await?;
    row.map(|row| {
        Ok(Client {
            id: row.req(0)?,
            name: row.req(1)?,
            secret_hash: row.opt(2)?,
            redirect_uris: row.req_json(3)?,
            tenant: row.req(4)?,
            roles: row.req_json(5)?,
        })
    })
    .transpose()
}

/// Why a client cannot be registered.
#[derive(Debug)]
pub enum ClientError {
    /// A redirect URI is not a path of this server.
    RedirectUri(String, &'static str),
    /// The database refused.
    Database(prefiq_runtime::db::DbError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::RedirectUri(uri, why) => write!(
                f,
                "the redirect URI `{}` is refused: {why}; a redirect URI is a path of this server, as in /apps/crm/",
                uri.escape_debug()
            ),
            ClientError::Database(e) => write!(f, "{e}"),
        }
    }
}

/// Registers a client; its secret (for a confidential one), shown once. Its redirect URIs must
/// be paths of this server ([`crate::web::local_path`]): a code is never sent to another origin.
pub async fn create_client(
    db: &mut impl Executor,
    name: &str,
    tenant: Uuid,
    roles: &[String],
    redirect_uris: &[String],
    public: bool,
) -> Result<(String, Option<String>), ClientError> {
    for uri in redirect_uris {
        crate::web::local_path(uri).map_err(|why| ClientError::RedirectUri(uri.clone(), why))?;
        if uri.contains('#') {
            return Err(ClientError::RedirectUri(
                uri.clone(),
                "it has a fragment (RFC 6749 §3.1.2)",
            ));
        }
    }
    let id = format!("client_{}", &new_secret()[..16]);
    let secret = (!public).then(new_secret);
    let statement = db.pick(
        "INSERT INTO cortex_clients (client_id, name, secret_hash, redirect_uris, tenant_id, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        "INSERT INTO cortex_clients (client_id, name, secret_hash, redirect_uris, tenant_id, roles, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    );
    db.execute(
        statement,
        vec![
            SqlValue::Text(id.clone()),
            SqlValue::Text(name.to_owned()),
            secret
                .as_deref()
                .map(|s| SqlValue::Text(digest(s)))
                .unwrap_or(SqlValue::Null(ColumnKind::Text)),
            SqlValue::Json(json!(redirect_uris)),
            SqlValue::Uuid(tenant),
            SqlValue::Json(json!(roles)),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await
    .map_err(ClientError::Database)?;
    Ok((id, secret))
}

/// A registered client, as the platform's pages list it (never its secret).
#[derive(Debug, Clone)]
pub struct ClientListing {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is public (no secret; PKCE).
    pub public: bool,
    /// Where it may be sent back to.
    pub redirect_uris: Vec<String>,
    /// The tenant it acts in (client credentials).
    pub tenant: Uuid,
    /// Its roles (client credentials).
    pub roles: Vec<String>,
    /// When it was registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every registered client, newest first.
pub async fn clients(
    db: &mut impl Executor,
) -> Result<Vec<ClientListing>, prefiq_runtime::db::DbError> {
    let statement = db.pick(
        "SELECT client_id, name, secret_hash IS NULL, redirect_uris, tenant_id, roles, created_at, revoked_at FROM cortex_clients ORDER BY created_at DESC, client_id",
        "SELECT client_id, name, secret_hash IS NULL, redirect_uris, tenant_id, roles, created_at, revoked_at FROM cortex_clients ORDER BY created_at DESC, client_id",
    );
    let rows = db.fetch_all(statement, Vec::new()).await?;
    rows.iter()
        .map(|row| {
            Ok(ClientListing {
                id: row.req(0)?,
                name: row.req(1)?,
                public: row.req(2)?,
                redirect_uris: row.req_json(3)?,
                tenant: row.req(4)?,
                roles: row.req_json(5)?,
                created_at: row.req(6)?,
                revoked_at: row.opt(7)?,
            })
        })
        .collect()
}

/// Revokes client `id` and every refresh token issued to it; whether there was one to revoke.
pub async fn revoke_client(
    db: &mut impl Executor,
    id: &str,
) -> Result<bool, prefiq_runtime::db::DbError> {
    let now = SqlValue::DateTime(prefiq_runtime::db::now());
    let statement = db.pick(
        "UPDATE cortex_clients SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        "UPDATE cortex_clients SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
    );
    let revoked = db
        .execute(statement, vec![SqlValue::Text(id.to_owned()), now.clone()])
        .await?;
    let statement = db.pick(
        "UPDATE cortex_refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        "UPDATE cortex_refresh_tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
    );
    db.execute(statement, vec![SqlValue::Text(id.to_owned()), now])
        .await?;
    Ok(revoked == 1)
}

type Shared = Arc<Tokens>;

/// The routes of the authorization server.
pub fn routes(tokens: Shared) -> Router {
    Router::new()
        .route("/auth/token", post(token))
        .route("/auth/authorize", get(authorize))
        .route("/auth/revoke", post(revoke))
        .route("/auth/logout", post(logout))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .with_state(tokens)
}

async fn jwks(State(tokens): State<Shared>) -> Response {
    let mut response = axum::Json(&tokens.keys).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// RFC 8414 metadata, from the configured public URL (never the request's `Host`, which a
/// client chooses).
async fn metadata(State(tokens): State<Shared>) -> axum::Json<serde_json::Value> {
    let base = &tokens.public_url;
    axum::Json(json!({
        "issuer": tokens.issuer,
        "authorization_endpoint": format!("{base}/auth/authorize"),
        "token_endpoint": format!("{base}/auth/token"),
        "revocation_endpoint": format!("{base}/auth/revoke"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
    }))
}

/// `POST /auth/token`.
async fn token(
    State(tokens): State<Shared>,
    // The connection's peer: behind a proxy every request shares one, which throttles harder,
    // never softer.
    crate::web::Peer(address): crate::web::Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = grant(&tokens, &headers, &address, &body).await;
    match result {
        Ok(issued) => {
            let mut response = axum::Json(issued).into_response();
            no_store(&mut response);
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn grant(
    tokens: &Tokens,
    headers: &HeaderMap,
    address: &str,
    body: &Bytes,
) -> Result<Issued, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::new(
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    let params = form(body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is missing"))?;
    let kind = match grant_type.as_str() {
        "authorization_code" => Grant::Code,
        "refresh_token" => Grant::Refresh,
        "client_credentials" => Grant::Client,
        "password" => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "the resource-owner password grant must not be used (RFC 9700 §2.4); use authorization_code with PKCE",
            ));
        }
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("`{other}` is not a grant this server offers"),
            ));
        }
    };
    // Every exchange is recorded before it is judged, so concurrent guesses count; what an
    // attacker's failures hold back is their own address (on this client, or at all), never the
    // client or another caller.
    let (client_id, secret) = client_credentials(headers, &params)?;
    let attempt = identity::attempt(
        &tokens.db,
        &format!("client:{client_id}"),
        address,
        identity::Limits {
            pair: identity::MAX_PAIR_FAILURES,
            address: identity::MAX_ADDRESS_FAILURES,
            account: None,
        },
    )
    .await
    .map_err(|t| match t {
        identity::Throttled::Wait(seconds) => OAuthError::throttled(Some(seconds)),
        identity::Throttled::Unavailable => OAuthError::throttled(None),
    })?;
    let issued = async {
        let client = authenticate_client(tokens, &client_id, secret, kind == Grant::Client).await?;
        match kind {
            Grant::Code => authorization_code(tokens, &client, &params).await,
            Grant::Refresh => refresh(tokens, &client, &params).await,
            Grant::Client => client_grant(tokens, &client).await,
        }
    }
    .await;
    // A success, or a failure that is no guess, counts for nothing against the address (and
    // is not worth failing the grant for).
    if issued.as_ref().is_ok() || issued.as_ref().is_err_and(|e| !e.guess) {
        let _ = identity::succeeded(&tokens.db, attempt).await;
    }
    issued
}

/// The grants the token endpoint offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Code,
    Refresh,
    Client,
}

/// Authenticates a client: confidential ones by secret, public ones by id alone.
async fn authenticate_client(
    tokens: &Tokens,
    id: &str,
    secret: Option<String>,
    confidential_only: bool,
) -> Result<Client, OAuthError> {
    let found = identity::as_server(&tokens.db, async |tx| client(tx, id).await)
        .await
        .map_err(OAuthError::server)?;
    let Some(found) = found else {
        return Err(OAuthError::client("unknown client").guessed());
    };
    match (&found.secret_hash, secret) {
        (Some(hash), Some(secret)) if same(hash, &digest(&secret)) => Ok(found),
        (Some(_), _) => Err(OAuthError::client("wrong client secret").guessed()),
        (None, _) if confidential_only => Err(OAuthError::new(
            "unauthorized_client",
            "a public client cannot use this grant",
        )),
        (None, Some(_)) => Err(OAuthError::client("a public client has no secret")),
        (None, None) => Ok(found),
    }
}

fn required<'a>(
    params: &'a std::collections::BTreeMap<String, String>,
    name: &str,
) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("`{name}` is missing")))
}

/// Revokes every refresh token of `family`.
async fn revoke_family(tx: &mut Tx, family: Uuid) -> Result<(), OAuthError> {
    let statement = tx.pick(
        "UPDATE cortex_refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
        "UPDATE cortex_refresh_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::Uuid(family),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await
    .map_err(OAuthError::server)?;
    Ok(())
}

/// The user of a code or refresh token, if they may still act in `tenant`: an active user of an
/// active tenant they may enter.
async fn still_allowed(
    tx: &mut Tx,
    user: Uuid,
    tenant: Uuid,
) -> Result<Option<identity::User>, OAuthError> {
    let Some(found) = identity::user_by_id(tx, user)
        .await
        .map_err(OAuthError::server)?
    else {
        return Ok(None);
    };
    let tenant_active = identity::tenant_active(tx, tenant)
        .await
        .map_err(OAuthError::server)?;
    Ok((found.active && tenant_active && found.may_enter(tenant)).then_some(found))
}

async fn authorization_code(
    tokens: &Tokens,
    client: &Client,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Issued, OAuthError> {
    let code = required(params, "code")?;
    let redirect_uri = required(params, "redirect_uri")?;
    let verifier = required(params, "code_verifier")?;
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid_verifier {
        return Err(OAuthError::new(
            "invalid_request",
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    let mut tx = tokens
        .db
        .begin(&identity::system())
        .await
        .map_err(OAuthError::server)?;
    let statement = tx.pick(
        "SELECT c.client_id, c.user_id, c.redirect_uri, c.code_challenge, c.family, c.expires_at, c.used_at, COALESCE(c.tenant_id, u.tenant_id) FROM cortex_auth_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = $1 FOR UPDATE OF c",
        "SELECT c.client_id, c.user_id, c.redirect_uri, c.code_challenge, c.family, c.expires_at, c.used_at, COALESCE(c.tenant_id, u.tenant_id) FROM cortex_auth_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = ?1",
    );
    let row = tx
        .fetch_optional(statement, vec![SqlValue::Text(digest(code))])
        .await
        .map_err(OAuthError::server)?;
    let invalid = || OAuthError::new("invalid_grant", "the code is not valid");
    let Some(row) = row else {
        return Err(invalid().guessed());
    };
    let read = |e| OAuthError::server(e);
    let code_client: String = row.req(0).map_err(read)?;
    let user_id: Uuid = row.req(1).map_err(read)?;
    let code_redirect: String = row.req(2).map_err(read)?;
    let challenge: String = row.req(3).map_err(read)?;
    let family: Uuid = row.req(4).map_err(read)?;
    let expires_at: chrono::DateTime<chrono::Utc> = row.req(5).map_err(read)?;
    let used_at: Option<chrono::DateTime<chrono::Utc>> = row.opt(6).map_err(read)?;
    let tenant: Uuid = row.req(7).map_err(read)?;
    if used_at.is_some() {
        // A replayed code: whatever it was exchanged for is revoked too.
        revoke_family(&mut tx, family).await?;
        tx.commit().await.map_err(OAuthError::server)?;
        return Err(invalid());
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if code_client != client.id
        || code_redirect != redirect_uri
        || expires_at < prefiq_runtime::db::now()
        || !same(&computed, &challenge)
    {
        return Err(invalid());
    }
    let statement = tx.pick(
        "UPDATE cortex_auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
        "UPDATE cortex_auth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
    );
    let marked = tx
        .execute(
            statement,
            vec![
                SqlValue::Text(digest(code)),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await
        .map_err(OAuthError::server)?;
    if marked != 1 {
        return Err(invalid());
    }
    let user = still_allowed(&mut tx, user_id, tenant)
        .await?
        .ok_or_else(invalid)?;
    let issued = tokens
        .for_user(&mut tx, &user, tenant, &client.id, family)
        .await?;
    tx.commit().await.map_err(OAuthError::server)?;
    Ok(issued)
}

async fn refresh(
    tokens: &Tokens,
    client: &Client,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<Issued, OAuthError> {
    let presented = required(params, "refresh_token")?;
    let mut tx = tokens
        .db
        .begin(&identity::system())
        .await
        .map_err(OAuthError::server)?;
    let statement = tx.pick(
        "SELECT r.family, r.user_id, r.client_id, r.expires_at, r.used_at, r.revoked_at, COALESCE(r.tenant_id, u.tenant_id) FROM cortex_refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = $1 FOR UPDATE OF r",
        "SELECT r.family, r.user_id, r.client_id, r.expires_at, r.used_at, r.revoked_at, COALESCE(r.tenant_id, u.tenant_id) FROM cortex_refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?1",
    );
    let row = tx
        .fetch_optional(statement, vec![SqlValue::Text(digest(presented))])
        .await
        .map_err(OAuthError::server)?;
    let invalid = |why: &str| OAuthError::new("invalid_grant", why.to_owned());
    let Some(row) = row else {
        return Err(invalid("the refresh token is not valid").guessed());
    };
    let read = |e| OAuthError::server(e);
    let family: Uuid = row.req(0).map_err(read)?;
    let user_id: Uuid = row.req(1).map_err(read)?;
    let owner: String = row.req(2).map_err(read)?;
    let expires_at: chrono::DateTime<chrono::Utc> = row.req(3).map_err(read)?;
    let used: Option<chrono::DateTime<chrono::Utc>> = row.opt(4).map_err(read)?;
    let revoked: Option<chrono::DateTime<chrono::Utc>> = row.opt(5).map_err(read)?;
    let tenant: Uuid = row.req(6).map_err(read)?;
    if used.is_some() || revoked.is_some() {
        // Reuse means the token leaked: end the whole family, in this transaction.
        revoke_family(&mut tx, family).await?;
        tx.commit().await.map_err(OAuthError::server)?;
        return Err(invalid(
            "the refresh token was already used or revoked; every token of its sign-in is revoked now",
        ));
    }
    if owner != client.id || expires_at < prefiq_runtime::db::now() {
        return Err(invalid("the refresh token is not valid"));
    }
    let statement = tx.pick(
        "UPDATE cortex_refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
        "UPDATE cortex_refresh_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL",
    );
    tx.execute(
        statement,
        vec![
            SqlValue::Text(digest(presented)),
            SqlValue::DateTime(prefiq_runtime::db::now()),
        ],
    )
    .await
    .map_err(OAuthError::server)?;
    let Some(user) = still_allowed(&mut tx, user_id, tenant).await? else {
        revoke_family(&mut tx, family).await?;
        tx.commit().await.map_err(OAuthError::server)?;
        return Err(invalid("the user can no longer sign in"));
    };
    let issued = tokens
        .for_user(&mut tx, &user, tenant, &client.id, family)
        .await?;
    tx.commit().await.map_err(OAuthError::server)?;
    Ok(issued)
}

async fn client_grant(tokens: &Tokens, client: &Client) -> Result<Issued, OAuthError> {
    let mut tx = identity::read(&tokens.db)
        .await
        .map_err(OAuthError::server)?;
    let active = identity::tenant_active(&mut tx, client.tenant)
        .await
        .map_err(OAuthError::server)?;
    if !active {
        return Err(OAuthError::new(
            "invalid_grant",
            "the client's tenant is deactivated",
        ));
    }
    let permissions = identity::permissions(&mut tx, client.tenant, &client.roles)
        .await
        .map_err(OAuthError::server)?;
    tx.end_read();
    let principal = Principal {
        subject: client.id.clone(),
        user: None,
        tenant: client.tenant,
        roles: client.roles.clone(),
        teams: Vec::new(),
        permissions,
        credential: prefiq_runtime::auth::Credential::AccessToken,
        operator: false,
    };
    let minutes = tokens.minutes(client.tenant, "tokens.access-minutes").await;
    let (access_token, expires_in) = tokens.access_token(&principal, minutes);
    Ok(Issued {
        access_token,
        token_type: "Bearer",
        expires_in,
        refresh_token: None,
    })
}

/// `POST /auth/revoke` (RFC 7009): a refresh token (with its family) or a personal token.
/// Always 200, so that it tells nothing about the token.
async fn revoke(State(tokens): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(params) = form(&body) else {
        return OAuthError::new("invalid_request", "bad form").into_response();
    };
    let Some(token) = params.get("token") else {
        return OAuthError::new("invalid_request", "`token` is missing").into_response();
    };
    let _ = headers;
    let Ok(mut tx) = tokens.db.begin(&identity::system()).await else {
        return OAuthError::server("cannot begin").into_response();
    };
    let statement = tx.pick(
        "SELECT family FROM cortex_refresh_tokens WHERE token_hash = $1",
        "SELECT family FROM cortex_refresh_tokens WHERE token_hash = ?1",
    );
    if let Ok(Some(row)) = tx
        .fetch_optional(statement, vec![SqlValue::Text(digest(token))])
        .await
    {
        if let Ok(family) = row.req::<Uuid>(0) {
            let _ = revoke_family(&mut tx, family).await;
        }
    }
    let statement = tx.pick(
        "UPDATE cortex_personal_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
        "UPDATE cortex_personal_tokens SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
    );
    let _ = tx
        .execute(
            statement,
            vec![
                SqlValue::Text(digest(token)),
                SqlValue::DateTime(prefiq_runtime::db::now()),
            ],
        )
        .await;
    if tx.commit().await.is_err() {
        return OAuthError::server("cannot commit").into_response();
    }
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    response
}

/// `POST /auth/logout` (form: `token`, a refresh token): a browser app's sign-out. Revokes the
/// token's family and ends this browser's Cortex sign-in if it is the token's user's, so that the
/// next sign-in asks for a password again. The refresh token proves the request is the app's: a
/// page elsewhere cannot sign anyone out.
async fn logout(State(tokens): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(params) = form(&body) else {
        return OAuthError::new("invalid_request", "bad form").into_response();
    };
    let Some(token) = params.get("token") else {
        return OAuthError::new("invalid_request", "`token` is missing").into_response();
    };
    let Ok(mut tx) = tokens.db.begin(&identity::system()).await else {
        return OAuthError::server("cannot begin").into_response();
    };
    let statement = tx.pick(
        "SELECT family, user_id FROM cortex_refresh_tokens WHERE token_hash = $1",
        "SELECT family, user_id FROM cortex_refresh_tokens WHERE token_hash = ?1",
    );
    let found = match tx
        .fetch_optional(statement, vec![SqlValue::Text(digest(token))])
        .await
    {
        Ok(Some(row)) => match (row.req::<Uuid>(0), row.req::<Uuid>(1)) {
            (Ok(family), Ok(user)) => Some((family, user)),
            _ => None,
        },
        Ok(None) => None,
        Err(error) => return OAuthError::server(error).into_response(),
    };
    let Some((family, user)) = found else {
        return OAuthError::new("invalid_grant", "the refresh token is unknown").into_response();
    };
    if let Err(error) = revoke_family(&mut tx, family).await {
        return error.into_response();
    }
    let mut ended = false;
    if let Some(secret) = crate::web::cookie(&headers, crate::web::SESSION_COOKIE) {
        if let Ok(Some(session)) = identity::session(&mut tx, &secret).await {
            if session.user.id == user {
                if let Err(error) = identity::end_session(&mut tx, &secret).await {
                    return OAuthError::server(error).into_response();
                }
                ended = true;
            }
        }
    }
    if tx.commit().await.is_err() {
        return OAuthError::server("cannot commit").into_response();
    }
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    if ended {
        response.headers_mut().insert(
            header::SET_COOKIE,
            crate::web::set_cookie(crate::web::SESSION_COOKIE, "", 0, tokens.production),
        );
    }
    response
}

/// The query of `GET /auth/authorize`.
#[derive(Debug, serde::Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
}

/// `GET /auth/authorize`: with a signed-in session, sends the browser back to the client with a
/// one-time code; without, to the sign-in page first. A bad client or redirect URI is shown
/// here and never redirected to (so it cannot become an open redirector).
async fn authorize(
    State(tokens): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let page = |status: StatusCode, message: &str| {
        (status, crate::web::message_page("Cannot sign in", message)).into_response()
    };
    let Some(client_id) = query.client_id.as_deref() else {
        return page(
            StatusCode::BAD_REQUEST,
            "The request names no client (client_id).",
        );
    };
    let Ok(Some(client)) =
        identity::as_server(&tokens.db, async |tx| client(tx, client_id).await).await
    else {
        return page(StatusCode::BAD_REQUEST, "The client is not registered.");
    };
    // Only a path of this server that the client registered, exactly: a code never leaves
    // the origin that issued it.
    let Some(redirect) = query
        .redirect_uri
        .as_deref()
        .filter(|r| crate::web::local_path(r).is_ok())
        .filter(|r| client.redirect_uris.iter().any(|u| u == r))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "The redirect URI is not one the client registered.",
        );
    };
    let back = |params: Vec<(&str, String)>| {
        let mut target = url_with(redirect, &params);
        if let Some(state) = &query.state {
            target = url_with(&target, &[("state", state.clone())]);
        }
        Redirect::to(&target).into_response()
    };
    if query.response_type.as_deref() != Some("code") {
        return back(vec![("error", "unsupported_response_type".into())]);
    }
    let Some(challenge) = query.code_challenge.clone().filter(|c| c.len() == 43) else {
        return back(vec![
            ("error", "invalid_request".into()),
            (
                "error_description",
                "PKCE is required: send a code_challenge (S256)".into(),
            ),
        ]);
    };
    if query.code_challenge_method.as_deref() != Some("S256") {
        return back(vec![
            ("error", "invalid_request".into()),
            (
                "error_description",
                "only code_challenge_method=S256 is accepted".into(),
            ),
        ]);
    }
    let session = match crate::web::cookie(&headers, crate::web::SESSION_COOKIE) {
        Some(secret) => match identity::read(&tokens.db).await {
            Ok(mut tx) => identity::session(&mut tx, &secret).await.ok().flatten(),
            Err(_) => None,
        },
        None => None,
    };
    let Some(session) = session else {
        let next = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/auth/authorize".into());
        return Redirect::to(&url_with("/login", &[("next", next)])).into_response();
    };
    let code = new_secret();
    let statement_result = async {
        let mut tx = tokens.db.begin(&identity::system()).await?;
        let statement = tx.pick(
            "INSERT INTO cortex_auth_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, family, expires_at, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            "INSERT INTO cortex_auth_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, family, expires_at, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        );
        tx.execute(
            statement,
            vec![
                SqlValue::Text(digest(&code)),
                SqlValue::Text(client.id.clone()),
                SqlValue::Uuid(session.user.id),
                SqlValue::Text(redirect.to_owned()),
                SqlValue::Text(challenge),
                SqlValue::Uuid(Uuid::now_v7()),
                SqlValue::DateTime(prefiq_runtime::db::now() + Duration::seconds(60)),
                SqlValue::Uuid(session.tenant),
            ],
        )
        .await?;
        tx.commit().await
    }
    .await;
    if statement_result.is_err() {
        return back(vec![("error", "server_error".into())]);
    }
    back(vec![("code", code)])
}

/// `base` with `params` appended to its query.
pub fn url_with(base: &str, params: &[(&str, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    if query.is_empty() {
        return base.to_owned();
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}
