//! The routes of an app's custom operations. Each operation's generated handler takes its
//! inputs as an [`Input`]; axum sees only the four functions here, one per kind of input, which
//! are not generic. Its routing machinery is compiled once, in the runtime, instead of once per
//! operation in every app's binary (which `prefiq dev` rebuilds on every save).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::Value;

use crate::http::{JsonBody, PathParams, QueryPairs, RequestContext};
use crate::problem::Problem;

/// What a request to a custom operation brings: its caller, and what it sent of the inputs the
/// operation declares (empty when it declares none of that kind).
#[derive(Debug)]
pub struct Input {
    /// Who calls, with the request's headers.
    pub ctx: RequestContext,
    /// The path parameters, by name, as sent.
    pub path: Vec<(String, String)>,
    /// The query string's pairs, as sent.
    pub query: Vec<(String, String)>,
    /// The JSON body; `null` for an operation without one.
    pub body: Value,
}

/// Which inputs an operation declares, and so which the route reads from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Neither parameters nor a body.
    Nothing,
    /// Path, query or header parameters.
    Params,
    /// A JSON body.
    Body,
    /// Parameters and a JSON body.
    ParamsAndBody,
}

/// A response on its way.
pub type Reply = Pin<Box<dyn Future<Output = Response> + Send>>;

/// An operation, ready to answer.
pub type Operation = Arc<dyn Fn(Input) -> Reply + Send + Sync>;

/// An operation's handler with the app's state: what [`route`] serves.
pub fn handle<St, F, Fut, T>(state: St, handler: F) -> Operation
where
    St: Clone + Send + Sync + 'static,
    F: Fn(St, Input) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Problem>> + Send + 'static,
    T: IntoResponse,
{
    Arc::new(move |input| {
        let answer = handler(state.clone(), input);
        Box::pin(async move { answer.await.into_response() })
    })
}

/// The route of one operation: `method`, reading the inputs it `takes`.
pub fn route<S: Clone + Send + Sync + 'static>(
    method: MethodFilter,
    takes: Takes,
    operation: Operation,
) -> MethodRouter<S> {
    let router = match takes {
        Takes::Nothing => on(method, nothing),
        Takes::Params => on(method, params),
        Takes::Body => on(method, body),
        Takes::ParamsAndBody => on(method, params_and_body),
    };
    router.with_state(operation)
}

async fn nothing(State(operation): State<Operation>, ctx: RequestContext) -> Response {
    operation(Input {
        ctx,
        path: Vec::new(),
        query: Vec::new(),
        body: Value::Null,
    })
    .await
}

async fn params(
    State(operation): State<Operation>,
    ctx: RequestContext,
    PathParams(path): PathParams,
    QueryPairs(query): QueryPairs,
) -> Response {
    operation(Input {
        ctx,
        path,
        query,
        body: Value::Null,
    })
    .await
}

async fn body(
    State(operation): State<Operation>,
    ctx: RequestContext,
    JsonBody(body): JsonBody,
) -> Response {
    operation(Input {
        ctx,
        path: Vec::new(),
        query: Vec::new(),
        body,
    })
    .await
}

async fn params_and_body(
    State(operation): State<Operation>,
    ctx: RequestContext,
    PathParams(path): PathParams,
    QueryPairs(query): QueryPairs,
    JsonBody(body): JsonBody,
) -> Response {
    operation(Input {
        ctx,
        path,
        query,
        body,
    })
    .await
}
