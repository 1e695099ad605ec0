//! Credentials that end when they should, and sign-in that cannot be turned against its users,
//! on SQLite and PostgreSQL.
//!
//! - Deactivating a tenant or a user ends every credential at once (sessions, personal tokens,
//!   codes, refresh tokens, and access tokens as Cortex checks them), and they stay ended when
//!   it is active again.
//! - Setting another user's password ends all of theirs; one's own keeps the session it was set
//!   in and the personal tokens.
//! - A change of roles reaches personal tokens at once and access tokens at their next issue.
//! - Throttling counts concurrent guesses, holds back the guessing address, never the account
//!   or the client for everyone, and lets an account under attack in from where it signed in
//!   before.
//! - `next` and redirect URIs are paths of this server; anything else is a 400.
//! - The authorization server's metadata comes from its configuration, never `Host`.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Cortex, browser, hidden, page, read};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_testkit::Backend;
use reqwest::Method;
use serde_json::json;

/// A browser whose requests come from `127.0.0.<last>` (any loopback address reaches the
/// server), keeping cookies and never following redirects.
fn browser_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

/// Whether the browser's session still opens the admin UI (else it is sent to sign in).
async fn signed_in(c: &Cortex, client: &reqwest::Client) -> bool {
    let reply = page(c, client, "/admin").await;
    match reply.status.as_u16() {
        200 => true,
        303 => {
            assert!(
                reply.headers["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/login")
            );
            false
        }
        other => panic!("/admin answered {other}"),
    }
}

/// Everything a user holds: two signed-in browsers, a personal token, an access and a
/// refresh token, and an unused code.
struct Held {
    browsers: [reqwest::Client; 2],
    personal: String,
    access: String,
    refresh: String,
    code: (String, String),
}

async fn hold(c: &Cortex, email: &str, personal: String) -> Held {
    let browsers = [browser(), browser()];
    for b in &browsers {
        c.sign_in(b, email, ADMIN_PASSWORD).await.expect(303);
    }
    let (access, refresh) = c.tokens(&browsers[0]).await;
    let code = c.code(&browsers[1], "ui-crm", "/apps/crm/").await;
    Held {
        browsers,
        personal,
        access,
        refresh,
        code,
    }
}

impl Held {
    /// Asserts that nothing it holds works any more.
    async fn assert_all_ended(&self, c: &Cortex, why: &str) {
        for b in &self.browsers {
            assert!(!signed_in(c, b).await, "{why}: the session ended");
        }
        let me = c.get("/api/cortex/me", &self.personal).await;
        assert_eq!(me.status, 401, "{why}: the personal token: {}", me.text);
        let me = c.get("/api/cortex/me", &self.access).await;
        assert_eq!(me.status, 401, "{why}: the access token: {}", me.text);
        assert_eq!(
            me.headers["www-authenticate"],
            "Bearer realm=\"prefiq\", error=\"invalid_token\""
        );
        c.get("/api/crm/companies", &self.access).await.expect(401);
        let refreshed = c.refresh(&self.refresh).await.expect(400);
        assert_eq!(
            refreshed.body["error"], "invalid_grant",
            "{why}: the refresh token"
        );
        let exchanged = c
            .exchange("ui-crm", "/apps/crm/", &self.code.0, &self.code.1)
            .await
            .expect(400);
        assert_eq!(exchanged.body["error"], "invalid_grant", "{why}: the code");
    }
}

async fn patch(c: &Cortex, path: &str, body: serde_json::Value) {
    c.call(Method::PATCH, path, &c.admin_token, Some(&body), None)
        .await
        .expect(200);
}

async fn deactivating_a_tenant_ends_every_credential(c: &Cortex) {
    let tenant = c.tenant("ending").await;
    let (_, personal) = c.user("ending@example.com", tenant, &["admin"]).await;
    let held = hold(c, "ending@example.com", personal).await;
    assert!(signed_in(c, &held.browsers[0]).await);
    c.get("/api/cortex/me", &held.access).await.expect(200);
    let path = format!("/api/cortex/tenants/{tenant}");
    patch(c, &path, json!({"active": false})).await;
    held.assert_all_ended(c, "tenant deactivated").await;
    c.sign_in(&browser(), "ending@example.com", ADMIN_PASSWORD)
        .await
        .expect(401);
    // Active again: what was ended stays ended; a new sign-in works.
    patch(c, &path, json!({"active": true})).await;
    held.assert_all_ended(c, "tenant active again").await;
    let again = browser();
    c.sign_in(&again, "ending@example.com", ADMIN_PASSWORD)
        .await
        .expect(303);
    let (access, _) = c.tokens(&again).await;
    c.get("/api/cortex/me", &access).await.expect(200);
}

async fn deactivating_a_user_ends_every_credential(c: &Cortex) {
    let tenant = c.tenant("leaving").await;
    let (user, personal) = c.user("leaving@example.com", tenant, &["member"]).await;
    let held = hold(c, "leaving@example.com", personal).await;
    let path = format!("/api/cortex/users/{user}");
    patch(c, &path, json!({"active": false})).await;
    held.assert_all_ended(c, "user deactivated").await;
    patch(c, &path, json!({"active": true})).await;
    held.assert_all_ended(c, "user active again").await;
}

/// The admin form sets a password; the browser must be signed in as someone who may.
async fn set_password(c: &Cortex, by: &reqwest::Client, user: Uuid, password: &str) {
    let csrf = hidden(&page(c, by, "/admin/tokens").await.text, "csrf").unwrap();
    read(
        by.post(format!("{}/admin/cortex/users/{user}/password", c.base))
            .form(&[("csrf", csrf.as_str()), ("password", password)])
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(303);
}

async fn a_password_set_ends_what_came_before(c: &Cortex) {
    let tenant = c.tenant("resetting").await;
    let (_, admin_token) = c.user("reset-admin@example.com", tenant, &["admin"]).await;
    let (user, personal) = c.user("reset-me@example.com", tenant, &["member"]).await;
    let held = hold(c, "reset-me@example.com", personal).await;
    let admin = browser();
    c.sign_in(&admin, "reset-admin@example.com", ADMIN_PASSWORD)
        .await
        .expect(303);
    set_password(c, &admin, user, "the new password of theirs").await;
    held.assert_all_ended(c, "password reset by an administrator")
        .await;
    c.sign_in(&browser(), "reset-me@example.com", ADMIN_PASSWORD)
        .await
        .expect(401);
    c.sign_in(
        &browser(),
        "reset-me@example.com",
        "the new password of theirs",
    )
    .await
    .expect(303);
    // One's own: the session it was set in and one's personal tokens stay, the rest ends.
    let (admin_user, _) = {
        let mut tx = cortex::identity::read(&c.db).await.unwrap();
        let found = cortex::identity::user_by_email(&mut tx, "reset-admin@example.com")
            .await
            .unwrap()
            .unwrap();
        tx.end_read();
        (found.0.id, ())
    };
    let other = browser();
    c.sign_in(&other, "reset-admin@example.com", ADMIN_PASSWORD)
        .await
        .expect(303);
    let (_, refresh) = c.tokens(&other).await;
    set_password(c, &admin, admin_user, "my own new password").await;
    assert!(
        signed_in(c, &admin).await,
        "the session it was set in stays"
    );
    assert!(!signed_in(c, &other).await, "another session ends");
    c.refresh(&refresh).await.expect(400);
    c.get("/api/cortex/me", &admin_token).await.expect(200);
}

async fn a_change_of_roles_reaches_tokens(c: &Cortex) {
    let tenant = c.tenant("roles-change").await;
    let (user, personal) = c.user("roles@example.com", tenant, &["member"]).await;
    let signed = browser();
    c.sign_in(&signed, "roles@example.com", ADMIN_PASSWORD)
        .await
        .expect(303);
    let (access, refresh) = c.tokens(&signed).await;
    let company = |n: u32| json!({"name": format!("Roles Ltd {n}")});
    c.post("/api/crm/companies", &personal, &company(1))
        .await
        .expect(201);
    patch(
        c,
        &format!("/api/cortex/users/{user}"),
        json!({"roles": ["viewer"]}),
    )
    .await;
    // A personal token (and a session) at once.
    c.post("/api/crm/companies", &personal, &company(2))
        .await
        .expect(403);
    // An access token carries what it was issued with until it expires (minutes); the next
    // one carries the change.
    c.post("/api/crm/companies", &access, &company(3))
        .await
        .expect(201);
    let next = c.refresh(&refresh).await.expect(200);
    let access = next.body["access_token"].as_str().unwrap();
    c.post("/api/crm/companies", access, &company(4))
        .await
        .expect(403);
}

/// A sign-in form's fields, fetched by `client` (the anti-forgery cookie comes with it).
async fn login_form(c: &Cortex, client: &reqwest::Client) -> String {
    hidden(&page(c, client, "/login").await.text, "csrf").unwrap()
}

async fn sign_in_with(
    c: &Cortex,
    client: &reqwest::Client,
    csrf: &str,
    email: &str,
    password: &str,
) -> u16 {
    read(
        client
            .post(format!("{}/login", c.base))
            .form(&[
                ("csrf", csrf),
                ("email", email),
                ("password", password),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
    .status
    .as_u16()
}

async fn guessing_throttles_the_guesser_not_the_user(c: &Cortex) {
    let tenant = c.tenant("guessed").await;
    c.user("guessed@example.com", tenant, &["member"]).await;
    let max = cortex::identity::MAX_PAIR_FAILURES as usize;
    // A concurrent burst from one address: every guess counts, so no more than the limit are
    // even checked.
    let mut forms = Vec::new();
    for _ in 0..3 * max {
        let client = browser_from(11);
        let csrf = login_form(c, &client).await;
        forms.push((client, csrf));
    }
    let mut burst = tokio::task::JoinSet::new();
    for (client, csrf) in forms {
        let login = format!("{}/login", c.base);
        burst.spawn(async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("email", "guessed@example.com"),
                ("password", "a wrong password"),
                ("next", "/admin"),
            ];
            let sent = client.post(login).form(&form).send().await.unwrap();
            sent.status().as_u16()
        });
    }
    let statuses: Vec<u16> = burst.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + throttled, statuses.len(), "{statuses:?}");
    assert!(
        checked <= max,
        "at most {max} of {} concurrent guesses are checked: {checked}",
        statuses.len()
    );
    // The guesser's address waits, even with the right password...
    let guesser = browser_from(11);
    let csrf = login_form(c, &guesser).await;
    assert_eq!(
        sign_in_with(c, &guesser, &csrf, "guessed@example.com", ADMIN_PASSWORD).await,
        429
    );
    // ...the user, elsewhere, does not.
    let user = browser_from(12);
    let csrf = login_form(c, &user).await;
    assert_eq!(
        sign_in_with(c, &user, &csrf, "guessed@example.com", ADMIN_PASSWORD).await,
        303
    );
    // Nor does anyone else from the guesser's address (below its own limit).
    let neighbour = browser_from(11);
    let csrf = login_form(c, &neighbour).await;
    assert_eq!(
        sign_in_with(c, &neighbour, &csrf, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        303
    );
}

async fn an_address_guessing_many_accounts_waits(c: &Cortex) {
    let guesser = browser_from(21);
    for i in 0..cortex::identity::MAX_ADDRESS_FAILURES {
        let csrf = login_form(c, &guesser).await;
        let status = sign_in_with(c, &guesser, &csrf, &format!("nobody{i}@example.com"), "x").await;
        assert_eq!(status, 401);
    }
    let csrf = login_form(c, &guesser).await;
    assert_eq!(
        sign_in_with(c, &guesser, &csrf, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        429,
        "the address waits, whatever account it tries"
    );
    let elsewhere = browser_from(22);
    let csrf = login_form(c, &elsewhere).await;
    assert_eq!(
        sign_in_with(c, &elsewhere, &csrf, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        303
    );
}

async fn an_account_under_attack_still_admits_its_known_addresses(c: &Cortex) {
    let tenant = c.tenant("attacked").await;
    c.user("attacked@example.com", tenant, &["member"]).await;
    // The owner signed in from .31 before.
    let owner = browser_from(31);
    let csrf = login_form(c, &owner).await;
    assert_eq!(
        sign_in_with(c, &owner, &csrf, "attacked@example.com", ADMIN_PASSWORD).await,
        303
    );
    // Attackers from many addresses, each below its own limit.
    let per_address = cortex::identity::MAX_PAIR_FAILURES;
    let addresses = cortex::identity::ACCOUNT_UNDER_ATTACK / per_address + 1;
    let mut refused = 0;
    for address in 0..addresses {
        let attacker = browser_from(100 + address as u8);
        for _ in 0..per_address {
            let csrf = login_form(c, &attacker).await;
            match sign_in_with(c, &attacker, &csrf, "attacked@example.com", "guess").await {
                401 => {}
                429 => refused += 1,
                other => panic!("a guess got {other}"),
            }
        }
    }
    assert!(
        refused > 0,
        "past the account's limit, new addresses wait too"
    );
    // A new address waits, even with the password; the owner's known one gets in.
    let stranger = browser_from(32);
    let csrf = login_form(c, &stranger).await;
    assert_eq!(
        sign_in_with(c, &stranger, &csrf, "attacked@example.com", ADMIN_PASSWORD).await,
        429
    );
    let owner = browser_from(31);
    let csrf = login_form(c, &owner).await;
    assert_eq!(
        sign_in_with(c, &owner, &csrf, "attacked@example.com", ADMIN_PASSWORD).await,
        303
    );
}

/// An anonymous burst of bad code exchanges on a public client throttles its address, never
/// the client: a real user's exchange still succeeds.
async fn bad_code_exchanges_do_not_lock_a_public_client(c: &Cortex) {
    let attacker = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 41)))
        .build()
        .unwrap();
    let (_, verifier) = common::pkce();
    let mut statuses = Vec::new();
    for _ in 0..cortex::identity::MAX_ADDRESS_FAILURES + 5 {
        let reply = read(
            attacker
                .post(format!("{}/auth/token", c.base))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &cortex::identity::new_secret()),
                    ("redirect_uri", "/apps/crm/"),
                    ("code_verifier", &verifier),
                    ("client_id", "ui-crm"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        statuses.push(reply.status.as_u16());
    }
    assert!(
        statuses.contains(&400) && statuses.last() == Some(&429),
        "{statuses:?}"
    );
    let user = browser();
    c.sign_in(&user, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect(303);
    let (access, _) = c.tokens(&user).await;
    c.get("/api/cortex/me", &access).await.expect(200);
}

/// Only paths of this server are places to go after signing in or with a code: anything else
/// is a 400 (never a 500, never a redirect).
async fn only_local_paths_are_redirect_targets(c: &Cortex) {
    let bad = [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/admin\r\nSet-Cookie: x=1",
        "/%0d%0aSet-Cookie:%20x=1",
        "javascript:alert(1)",
        "admin",
    ];
    for next in bad {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        let shown = page(c, &browser(), &format!("/login?{query}")).await;
        assert_eq!(shown.status, 400, "GET /login?next={next:?}");
        let client = browser();
        let csrf = login_form(c, &client).await;
        let posted = read(
            client
                .post(format!("{}/login", c.base))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(posted.status, 400, "POST next={next:?}");
        assert!(posted.headers.get("location").is_none());
        // A redirect URI that is not the exact registered path is never redirected to.
        let (_, challenge) = common::pkce();
        let redirect: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let authorize = page(
            c,
            &client,
            &format!("/auth/authorize?response_type=code&client_id=ui-crm&redirect_uri={redirect}&code_challenge={challenge}&code_challenge_method=S256"),
        )
        .await;
        assert_eq!(authorize.status, 400, "redirect_uri={next:?}");
    }
    // A good one goes where it says.
    let client = browser();
    let csrf = login_form(c, &client).await;
    let posted = read(
        client
            .post(format!("{}/login", c.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/admin/audit?app=crm"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(303);
    assert_eq!(posted.headers["location"], "/admin/audit?app=crm");
}

/// The metadata names the configured public URL (here the development default), whatever
/// `Host` a client sends, and the issuer its tokens carry.
async fn the_metadata_does_not_trust_host(c: &Cortex) {
    let client = reqwest::Client::new();
    let metadata: serde_json::Value = client
        .get(format!("{}/.well-known/oauth-authorization-server", c.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = metadata.to_string();
    assert!(!text.contains("evil.example"), "{text}");
    assert!(
        metadata["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{text}"
    );
    let signed = browser();
    c.sign_in(&signed, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect(303);
    let (access, _) = c.tokens(&signed).await;
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], metadata["issuer"]);
}

async fn all(backend: Backend) {
    let c = Cortex::start(backend).await;
    deactivating_a_tenant_ends_every_credential(&c).await;
    deactivating_a_user_ends_every_credential(&c).await;
    a_password_set_ends_what_came_before(&c).await;
    a_change_of_roles_reaches_tokens(&c).await;
    guessing_throttles_the_guesser_not_the_user(&c).await;
    an_address_guessing_many_accounts_waits(&c).await;
    an_account_under_attack_still_admits_its_known_addresses(&c).await;
    bad_code_exchanges_do_not_lock_a_public_client(&c).await;
    only_local_paths_are_redirect_targets(&c).await;
    the_metadata_does_not_trust_host(&c).await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_sign_in_on_sqlite() {
    all(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_sign_in_on_postgres() {
    all(Backend::Postgres).await;
}
