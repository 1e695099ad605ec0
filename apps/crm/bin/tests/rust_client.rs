//! The contract test: a Rust client generated independently by progenitor (from the OpenAPI
//! 3.0 rendition) drives the server on both databases. If the server and the document
//! disagree, requests fail to build or responses fail to parse.

use app_crm_client::{Client, types};
use prefiq_testkit::{Backend, Server};

async fn start(backend: Backend) -> Server {
    Server::start(backend, "crm", app_crm::generated::MIGRATIONS, |db| {
        app_crm::router(app_crm::services::Service::new(db.clone()), db)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progenitor_client_agrees_with_the_server_on_sqlite() {
    let server = start(Backend::Sqlite).await;
    round_trip(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progenitor_client_agrees_with_the_server_on_postgres() {
    let server = start(Backend::Postgres).await;
    round_trip(&server).await;
    server.stop().await;
}

// README:begin
async fn example(
    base_url: &str,
    access_token: &str,
) -> Result<(), app_crm_client::Error<types::Problem>> {
    // Every call carries an access token from Cortex (`POST /auth/token`) or a personal one.
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {access_token}");
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let client = Client::new_with_client(base_url, http);
    let company = client
        .create_company()
        .body_map(|b| b.name("Initrode".parse::<types::CompanyCreateName>().unwrap()))
        .send()
        .await?
        .into_inner();
    let page = client
        .list_companies()
        .sort("-created_at")
        .limit(20)
        .send()
        .await?
        .into_inner();
    assert!(page.items.iter().any(|c| c.id == company.id));
    let deal = client
        .create_deal()
        .body_map(|b| {
            b.name("Big one".parse::<types::DealCreateName>().unwrap())
                .company_id(company.id)
                .amount("9000.00".parse::<types::DealCreateAmount>().unwrap())
        })
        .send()
        .await?
        .into_inner();
    let won = client
        .win_deal()
        .id(deal.id)
        .body_map(|b| b)
        .send()
        .await?
        .into_inner();
    assert_eq!(won.stage, types::DealStage::Won);
    Ok(())
}
// README:end

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    let server = start(Backend::Sqlite).await;
    example(&server.base, &server.token)
        .await
        .expect("the README example");
    server.stop().await;
}

/// A client that sends `token` with every request.
fn client(base: &str, token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    Client::new_with_client(
        base,
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
    )
}

async fn round_trip(server: &Server) {
    let anonymous = Client::new(&server.base);
    let refused = anonymous
        .list_companies()
        .send()
        .await
        .expect_err("no token, no answer");
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(401));
    let client = client(&server.base, &server.token);

    // create
    let created = client
        .create_company()
        .body_map(|b| {
            b.name(
                "Progenitor Inc"
                    .parse::<types::CompanyCreateName>()
                    .unwrap(),
            )
            .industry(types::CompanyIndustry::Software)
            .employee_count(Some(12))
        })
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let company = created.into_inner();
    assert_eq!(company.industry, types::CompanyIndustry::Software);
    assert_eq!(company.version, 1);

    // list with a filter and a sort
    let page = client
        .list_companies()
        .industry("eq.software")
        .sort("-created_at")
        .count(types::ListCompaniesCount::Exact)
        .send()
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.total, Some(1));
    assert_eq!(page.items[0].id, company.id);

    // get
    let read = client
        .get_company()
        .id(company.id)
        .send()
        .await
        .expect("get")
        .into_inner();
    assert_eq!(read.name, company.name);

    // patch, with If-Match; then a stale one is a typed 412
    let patched = client
        .update_company()
        .id(company.id)
        .if_match("\"1\"")
        .body_map(|b| b.employee_count(Some(40)))
        .send()
        .await
        .expect("patch")
        .into_inner();
    assert_eq!(patched.employee_count, Some(40));
    assert_eq!(patched.version, 2);
    let stale = client
        .update_company()
        .id(company.id)
        .if_match("\"1\"")
        .body_map(|b| b.employee_count(Some(41)))
        .send()
        .await;
    match stale {
        Err(progenitor_error) => {
            assert_eq!(progenitor_error.status().map(|s| s.as_u16()), Some(412));
            if let app_crm_client::Error::ErrorResponse(problem) = progenitor_error {
                assert_eq!(problem.into_inner().status, 412);
            } else {
                panic!("a 412 is a documented error response");
            }
        }
        Ok(response) => panic!("a stale ETag was accepted: {:?}", response.status()),
    }

    // a custom operation
    let deal = client
        .create_deal()
        .body_map(|b| {
            b.name("Contract deal".parse::<types::DealCreateName>().unwrap())
                .company_id(company.id)
                .amount("250.00".parse::<types::DealCreateAmount>().unwrap())
        })
        .send()
        .await
        .expect("create deal")
        .into_inner();
    let won = client
        .win_deal()
        .id(deal.id)
        .body_map(|b| b.note(Some("signed".parse::<types::WinDealNote>().unwrap())))
        .send()
        .await
        .expect("win")
        .into_inner();
    assert_eq!(won.stage, types::DealStage::Won);
    let report = client
        .pipeline_report()
        .currency("EUR")
        .send()
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.stages.len(), 6);

    // delete, and the 404 after it
    let deleted = client
        .delete_company()
        .id(company.id)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = client.get_company().id(company.id).send().await;
    assert_eq!(
        gone.err().and_then(|e| e.status()).map(|s| s.as_u16()),
        Some(404)
    );
}
