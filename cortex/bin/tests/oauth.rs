//! The authorization server, on both databases: the token endpoint's grants and errors
//! (RFC 6749, RFC 9700), PKCE, refresh-token rotation with family revocation, revocation, a
//! browser app's sign-out, the sign-in throttle, and the tokens the APIs accept and refuse.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Cortex, browser, pkce, query_value, read};
use prefiq_testkit::Backend;
use serde_json::json;

async fn errors_follow_rfc_6749(cortex: &Cortex) {
    let refused = cortex
        .token_request(
            &[
                ("grant_type", "password"),
                ("username", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
            None,
        )
        .await
        .expect(400);
    assert_eq!(
        refused.body["error"], "unsupported_grant_type",
        "the BCP forbids the password grant"
    );
    assert_eq!(refused.headers["cache-control"], "no-store");
    assert_eq!(refused.headers["pragma"], "no-cache");
    let missing = cortex
        .token_request(&[("code", "x")], None)
        .await
        .expect(400);
    assert_eq!(missing.body["error"], "invalid_request");
    let json = read(
        reqwest::Client::new()
            .post(format!("{}/auth/token", cortex.base))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(400);
    assert_eq!(
        json.body["error"], "invalid_request",
        "the endpoint takes forms only"
    );
    let unknown = cortex
        .token_request(
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            None,
        )
        .await
        .expect(400);
    assert_eq!(unknown.body["error"], "unsupported_grant_type");
}

async fn client_credentials_act_with_the_client_roles(cortex: &Cortex) {
    let (id, secret) = cortex
        .client(
            "reporting",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["viewer"],
            &[],
            false,
        )
        .await;
    let secret = secret.unwrap();
    let wrong = cortex
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, "not the secret")),
        )
        .await
        .expect(401);
    assert_eq!(wrong.body["error"], "invalid_client");
    assert!(
        wrong.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let issued = cortex
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await
        .expect(200);
    assert_eq!(issued.headers["cache-control"], "no-store");
    assert_eq!(issued.body["token_type"], "Bearer");
    assert!(
        issued.body.get("refresh_token").is_none(),
        "no refresh token for a client"
    );
    let token = issued.body["access_token"].as_str().unwrap();
    // The header names the pinned algorithm and a key.
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], "test");
    cortex.get("/api/crm/companies", token).await.expect(200);
    cortex
        .post("/api/crm/companies", token, &json!({"name": "Viewer Co"}))
        .await
        .expect(403);
    // Secret in the body works too (client_secret_post).
    cortex
        .token_request(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            None,
        )
        .await
        .expect(200);
}

async fn tampered_and_unsigned_tokens_are_refused(cortex: &Cortex) {
    let (id, secret) = cortex
        .client(
            "svc",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["member"],
            &[],
            false,
        )
        .await;
    let issued = cortex
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret.unwrap())),
        )
        .await
        .expect(200);
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["perms"] = json!(["*"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let reply = cortex.get("/api/crm/companies", &forged).await.expect(401);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let unsigned = format!(
        "{none_header}.{}.",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    cortex
        .get("/api/crm/companies", &unsigned)
        .await
        .expect(401);
    cortex
        .get("/api/crm/companies", "pfq_not-a-real-token")
        .await
        .expect(401);
    cortex.get("/api/crm/companies", "").await.expect(401);
}

async fn authorization_code_with_pkce_and_rotating_refresh_tokens(cortex: &Cortex) {
    let redirect = "/apps/crm/callback";
    let (client_id, _) = cortex
        .client(
            "crm web",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &[],
            &[redirect],
            true,
        )
        .await;
    let browser = browser();
    let (verifier, challenge) = pkce();
    let authorize = |challenge: &str, method: &str, redirect: &str| {
        format!(
            "{}/auth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={challenge}&code_challenge_method={method}&state=xyz",
            cortex.base,
            form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    // Not signed in: to the sign-in page, which comes back here.
    let first = read(
        browser
            .get(authorize(&challenge, "S256", redirect))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(first.status.is_redirection());
    assert!(
        first.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
    // A redirect URI the client did not register is never redirected to.
    let evil = read(
        browser
            .get(authorize(&challenge, "S256", "https://evil.example/cb"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(evil.status, 400);
    cortex.sign_in(&browser, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // plain PKCE is refused.
    let plain = read(
        browser
            .get(authorize(&challenge, "plain", redirect))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let location = plain.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("invalid_request")
    );
    let granted = read(
        browser
            .get(authorize(&challenge, "S256", redirect))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let location = granted.headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(redirect), "{location}");
    assert_eq!(query_value(&location, "state").as_deref(), Some("xyz"));
    let code = query_value(&location, "code").expect("a code");
    // The wrong verifier fails; the right one succeeds once.
    let (other, _) = pkce();
    cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", &other),
            ],
            None,
        )
        .await
        .expect(400);
    let issued = cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await
        .expect(200);
    let access = issued.body["access_token"].as_str().unwrap().to_owned();
    let first_refresh = issued.body["refresh_token"].as_str().unwrap().to_owned();
    let me = cortex.get("/api/cortex/me", &access).await.expect(200);
    assert_eq!(me.body["permissions"], json!(["*"]));
    // Rotation: the refresh token works once and gives a new one.
    let rotated = cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first_refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await
        .expect(200);
    let second_refresh = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    // Reusing the first revokes the family: the second stops working too.
    let reuse = cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first_refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await
        .expect(400);
    assert_eq!(reuse.body["error"], "invalid_grant");
    cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &second_refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await
        .expect(400);
    // A replayed code is refused.
    cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await
        .expect(400);
    // A fresh sign-in's refresh token, revoked (RFC 7009), stops working.
    let (verifier, challenge) = pkce();
    let granted = read(
        browser
            .get(authorize(&challenge, "S256", redirect))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let code = query_value(granted.headers["location"].to_str().unwrap(), "code").unwrap();
    let issued = cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await
        .expect(200);
    let refresh = issued.body["refresh_token"].as_str().unwrap().to_owned();
    read(
        reqwest::Client::new()
            .post(format!("{}/auth/revoke", cortex.base))
            .form(&[("token", refresh.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200);
    cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await
        .expect(400);
}

async fn a_guessed_account_waits_at_the_guessing_address(cortex: &Cortex) {
    let (_, _) = cortex
        .user(
            "victim@example.com",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["member"],
        )
        .await;
    let browser = browser();
    for _ in 0..cortex::identity::MAX_PAIR_FAILURES {
        let reply = cortex
            .sign_in(&browser, "victim@example.com", "wrong password!")
            .await;
        assert_eq!(reply.status, 401);
        assert!(reply.text.contains("The e-mail or the password is wrong."));
    }
    // Now even the right password waits, and says why.
    let reply = cortex
        .sign_in(&browser, "victim@example.com", ADMIN_PASSWORD)
        .await;
    assert_eq!(reply.status, 429);
    assert!(reply.headers.contains_key("retry-after"));
    // Another account is not locked by it.
    let other = cortex
        .sign_in(&common::browser(), ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(other.status, 303);
}

/// An app alone verifies Cortex's tokens through its key set URL (`PREFIQ_JWKS_URL`).
async fn an_app_alone_trusts_the_tokens_of_a_cortex(cortex: &Cortex) {
    use clap::Parser as _;
    let config = prefiq_runtime::serve::Config::try_parse_from([
        "app-crm",
        "--jwks-url",
        &format!("{}/.well-known/jwks.json", cortex.base),
    ])
    .unwrap();
    let auth = prefiq_runtime::serve::authenticator(&config)
        .await
        .expect("the key set is fetched");
    let crm = cortex::server::installed()
        .iter()
        .find(|a| a.catalog.name == "crm")
        .unwrap();
    let router = prefiq_runtime::serve::with_middleware(
        (crm.router)(cortex.db.clone()).unwrap(),
        cortex.db.clone(),
        65536,
        auth,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let alone = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let (id, secret) = cortex
        .client(
            "alone",
            prefiq_runtime::auth::DEFAULT_TENANT,
            &["member"],
            &[],
            false,
        )
        .await;
    let issued = cortex
        .token_request(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret.unwrap())),
        )
        .await
        .expect(200);
    let token = issued.body["access_token"].as_str().unwrap();
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{alone}/api/crm/companies"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the app accepts the Cortex's token");
    let foreign = prefiq_runtime::auth::SigningKey::generate("test");
    let forged = prefiq_testkit::sign(&foreign, &prefiq_testkit::Identity::admin());
    let refused = client
        .get(format!("{alone}/api/crm/companies"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "a token of another key, even with a known kid, is refused"
    );
    server.abort();
}

/// A browser app's sign-out (`POST /auth/logout`): it needs the refresh token as proof, revokes
/// its family and ends the browser's sign-in, so the next authorization asks for a password.
async fn logout_revokes_and_ends_the_sign_in(cortex: &Cortex) {
    let client_id = cortex::server::frontend_client("crm");
    let redirect = "/apps/crm/";
    let browser = browser();
    cortex.sign_in(&browser, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let authorize = |challenge: &str| {
        format!(
            "{}/auth/authorize?response_type=code&client_id={client_id}&redirect_uri=%2Fapps%2Fcrm%2F&code_challenge={challenge}&code_challenge_method=S256&state=s",
            cortex.base
        )
    };
    let (verifier, challenge) = pkce();
    let granted = read(browser.get(authorize(&challenge)).send().await.unwrap()).await;
    let location = granted.headers["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/apps/crm/?"),
        "back to the frontend's own path: {location}"
    );
    let code = query_value(&location, "code").expect("a code");
    let issued = cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", &client_id),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await
        .expect(200);
    let refresh = issued.body["refresh_token"].as_str().unwrap().to_owned();
    let logout = |token: Option<&str>| {
        let mut form = vec![("client_id", client_id.clone())];
        if let Some(token) = token {
            form.push(("token", token.to_owned()));
        }
        browser
            .post(format!("{}/auth/logout", cortex.base))
            .form(&form)
            .send()
    };
    // Without the refresh token, or with one Cortex never issued, nothing ends.
    let missing = read(logout(None).await.unwrap()).await.expect(400);
    assert_eq!(missing.body["error"], "invalid_request");
    let unknown = read(logout(Some("not-a-token")).await.unwrap())
        .await
        .expect(400);
    assert_eq!(unknown.body["error"], "invalid_grant");
    let (_, challenge) = pkce();
    let still = read(browser.get(authorize(&challenge)).send().await.unwrap()).await;
    assert!(
        still.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/apps/crm/?"),
        "the sign-in still stands"
    );
    // With it: the cookie is cleared, the sign-in is over and the token is dead.
    let done = read(logout(Some(&refresh)).await.unwrap())
        .await
        .expect(200);
    assert!(
        done.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "{:?}",
        done.headers
    );
    let (_, challenge) = pkce();
    let again = read(browser.get(authorize(&challenge)).send().await.unwrap()).await;
    assert!(
        again.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next="),
        "the next sign-in asks for the password"
    );
    cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
            None,
        )
        .await
        .expect(400);
}

/// Tokens Cortex must refuse, each with the RFC's error code: RFC 6750 `invalid_token` for an
/// access token, RFC 6749 `invalid_grant` or `invalid_request` at the token and authorization
/// endpoints.
async fn every_bad_token_gets_its_rfc_error(cortex: &Cortex) {
    use prefiq_runtime::auth::{Claims, SigningKey};
    let key = SigningKey::parse(&cortex.signing_key).unwrap();
    let mut tx = cortex::identity::read(&cortex.db).await.unwrap();
    let root = cortex::identity::user_by_email(&mut tx, ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap()
        .0;
    tx.end_read();
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = Claims {
        iss: "prefiq".into(),
        aud: "prefiq".into(),
        sub: root.id.to_string(),
        exp: now + 600,
        nbf: now,
        iat: now,
        jti: prefiq_runtime::deps::uuid::Uuid::now_v7().to_string(),
        tid: prefiq_runtime::auth::DEFAULT_TENANT,
        roles: vec!["admin".into()],
        perms: vec!["*".into()],
        teams: vec![],
        kind: "user".into(),
        op: true,
    };
    cortex
        .get("/api/cortex/me", &key.sign(&claims))
        .await
        .expect(200);
    let invalid = |token: String, why: &'static str| async move {
        let reply = cortex.get("/api/cortex/me", &token).await;
        assert_eq!(reply.status, 401, "{why}: {}", reply.text);
        assert_eq!(
            reply.headers["www-authenticate"], "Bearer realm=\"prefiq\", error=\"invalid_token\"",
            "{why}"
        );
    };
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut changed = claims.clone();
        change(&mut changed);
        key.sign(&changed)
    };
    invalid(with(&|c| c.exp = now - 120), "expired").await;
    invalid(with(&|c| c.nbf = now + 600), "not yet valid").await;
    invalid(
        with(&|c| c.iss = "https://elsewhere.example".into()),
        "another issuer",
    )
    .await;
    invalid(
        with(&|c| c.aud = "another-service".into()),
        "another audience",
    )
    .await;
    let stranger = SigningKey::parse(&SigningKey::generate_text("stranger")).unwrap();
    invalid(stranger.sign(&claims), "a key Cortex does not know").await;
    let signed = key.sign(&claims);
    let parts: Vec<&str> = signed.split('.').collect();
    let no_kid = URL_SAFE_NO_PAD.encode(json!({"alg": "EdDSA", "typ": "JWT"}).to_string());
    invalid(format!("{no_kid}.{}.{}", parts[1], parts[2]), "no kid").await;
    // Algorithm confusion: HS256 keyed with the public key everyone can fetch.
    let public = URL_SAFE_NO_PAD.decode(&key.public().x).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.public().kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    invalid(confused, "HS256 with the public key").await;

    // Codes and refresh tokens are their client's and their redirect URI's.
    let signed_in = browser();
    cortex
        .sign_in(&signed_in, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect(303);
    let (code, verifier) = cortex.code(&signed_in, "ui-crm", "/apps/crm/").await;
    for (client, redirect, why) in [
        ("ui-lms", "/apps/crm/", "another client"),
        ("ui-crm", "/apps/lms/", "another redirect URI"),
    ] {
        let refused = cortex
            .exchange(client, redirect, &code, &verifier)
            .await
            .expect(400);
        assert_eq!(refused.body["error"], "invalid_grant", "{why}");
    }
    let (other_verifier, _) = pkce();
    let refused = cortex
        .exchange("ui-crm", "/apps/crm/", &code, &other_verifier)
        .await
        .expect(400);
    assert_eq!(refused.body["error"], "invalid_grant", "another verifier");
    let (_, refresh) = cortex.tokens(&signed_in).await;
    let refused = cortex
        .token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", "ui-lms"),
            ],
            None,
        )
        .await
        .expect(400);
    assert_eq!(
        refused.body["error"], "invalid_grant",
        "a refresh by another client"
    );
    let missing = cortex
        .token_request(
            &[
                ("grant_type", "authorization_code"),
                ("redirect_uri", "/apps/crm/"),
                ("code_verifier", &verifier),
                ("client_id", "ui-crm"),
            ],
            None,
        )
        .await
        .expect(400);
    assert_eq!(missing.body["error"], "invalid_request", "no code");
    // No code_challenge: the client is told, at its own redirect URI.
    let reply = read(
        signed_in
            .get(format!(
                "{}/auth/authorize?response_type=code&client_id=ui-crm&redirect_uri=%2Fapps%2Fcrm%2F&state=s",
                cortex.base
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let location = reply.headers["location"].to_str().unwrap();
    assert!(location.starts_with("/apps/crm/?"), "{location}");
    assert_eq!(
        query_value(location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_value(location, "state").as_deref(), Some("s"));
}

async fn all(backend: Backend) {
    let cortex = Cortex::start(backend).await;
    errors_follow_rfc_6749(&cortex).await;
    client_credentials_act_with_the_client_roles(&cortex).await;
    tampered_and_unsigned_tokens_are_refused(&cortex).await;
    every_bad_token_gets_its_rfc_error(&cortex).await;
    authorization_code_with_pkce_and_rotating_refresh_tokens(&cortex).await;
    logout_revokes_and_ends_the_sign_in(&cortex).await;
    a_guessed_account_waits_at_the_guessing_address(&cortex).await;
    an_app_alone_trusts_the_tokens_of_a_cortex(&cortex).await;
    // The key set and the metadata.
    let keys = cortex.get("/.well-known/jwks.json", "").await.expect(200);
    assert_eq!(keys.body["keys"][0]["alg"], "EdDSA");
    assert!(
        keys.body["keys"][0].get("d").is_none(),
        "never the private half"
    );
    let metadata = cortex
        .get("/.well-known/oauth-authorization-server", "")
        .await
        .expect(200);
    assert_eq!(
        metadata.body["code_challenge_methods_supported"],
        json!(["S256"])
    );
    cortex.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_server_on_sqlite() {
    all(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_server_on_postgres() {
    all(Backend::Postgres).await;
}
