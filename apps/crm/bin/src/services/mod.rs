//! Hand-written business logic of the crm app. `prefiq codegen` created this file once and
//! never touches it again; the generated handlers call these hooks around every write.
//!
//! Every hook and operation runs in the request's transaction (`tx`): whatever they write through
//! the generated repositories commits with the request, or not at all. Generated types are built
//! with `new` and `with_*`, so that a new optional member in a schema breaks nothing here.
//!
//! The repositories keep every read and write to the caller's tenant. Hand-written SQL must
//! filter by `tenant_id` itself (`ctx.principal.tenant`); on PostgreSQL, row-level security
//! hides other tenants' rows from a query that forgets.

use app_crm_types::{
    ActivityCreate, ActivityKind, ContactHit, ContactSearch, Deal, DealCreate, DealStage, DealWon,
    LoseDeal, LoseDealParams, PipelineReport, PipelineReportParams, SearchContactsParams,
    StageSummary, WinDeal, WinDealParams,
};
use prefiq_runtime::db::ToSql;
use prefiq_runtime::deps::rust_decimal::Decimal;
use prefiq_runtime::deps::serde::{Deserialize, Serialize};
use prefiq_runtime::deps::uuid::Uuid;
use prefiq_runtime::events;
use prefiq_runtime::http::IfMatch;
use prefiq_runtime::jobs::{self, Job, JobContext, Registry};
use prefiq_runtime::{Db, Executor, Problem, RequestContext, SqlValue, Tx};

use crate::CrmService;
use crate::generated::operations::{
    LoseDealResponse, PipelineReportResponse, SearchContactsResponse, WinDealResponse,
};
use crate::generated::{activity, deal};

/// The crm service.
#[derive(Debug, Clone)]
pub struct Service {
    #[allow(dead_code)]
    db: Db,
}

impl Service {
    /// A service over the app's database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// After a deal is won, someone thanks the customer: a job adds that task to the deal, so the
/// request that won it neither waits for it nor fails with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "prefiq_runtime::deps::serde")]
pub struct ThankCustomer {
    /// The deal won.
    pub deal_id: Uuid,
}

impl Job for ThankCustomer {
    const KIND: &'static str = "thank_customer";
}

/// The subject of the task [`ThankCustomer`] adds.
pub fn thank_you_subject(deal: &Deal) -> String {
    format!("Thank the customer for {}", deal.name)
}

/// The handlers of the crm app's jobs.
pub fn jobs() -> Registry {
    Registry::new().on(thank_customer)
}

/// Adds the thank-you task to the deal, once: a job may run more than once, and a second run
/// finds the task there. A deal deleted or reopened since needs none.
async fn thank_customer(ctx: JobContext, job: ThankCustomer) -> Result<(), jobs::Failure> {
    let mut tx = ctx.db.begin(&ctx.principal).await?;
    let Some(won) = deal::find_for_update(&mut tx, &job.deal_id).await? else {
        return Ok(());
    };
    if won.stage != DealStage::Won {
        return Ok(());
    }
    let subject = thank_you_subject(&won);
    let existing = tx
        .fetch_all(
            tx.pick(
                "SELECT 1 FROM activities WHERE deal_id = $1 AND subject = $2 AND tenant_id = $3",
                "SELECT 1 FROM activities WHERE deal_id = ?1 AND subject = ?2 AND tenant_id = ?3",
            ),
            vec![
                won.id.to_sql(),
                SqlValue::Text(subject.clone()),
                ctx.tenant.to_sql(),
            ],
        )
        .await?;
    if existing.is_empty() {
        let task = ActivityCreate::new(ActivityKind::Task, subject).with_deal_id(won.id);
        activity::insert(&mut tx, &task).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Closing a deal stamps `closed_at`; reopening clears it, and only a lost deal keeps a reason.
/// (That a lost deal has a reason is the rule `deal-lost-reason` of core/validation/deal.yaml,
/// which the server checks before this hook and again on the row written.)
fn settle(previous: Option<&Deal>, next: &mut DealCreate) -> Result<(), Problem> {
    let closed = matches!(next.stage, DealStage::Won | DealStage::Lost);
    let was_closed = previous.is_some_and(|d| matches!(d.stage, DealStage::Won | DealStage::Lost));
    if closed && (!was_closed || previous.is_some_and(|d| d.stage != next.stage)) {
        next.closed_at = Some(prefiq_runtime::db::now());
    } else if !closed {
        next.closed_at = None;
    }
    if next.stage != DealStage::Lost {
        next.lost_reason = None;
    }
    Ok(())
}

/// How closing a deal ended.
enum Closing {
    Closed(Deal),
    NotFound(Problem),
    Conflict(Problem),
    Stale(Problem),
}

/// Moves an open deal to `stage`, honouring `If-Match`; `change` edits the rest. The deal stays
/// locked until `tx` ends.
async fn close(
    tx: &mut Tx,
    id: &Uuid,
    if_match: Option<&str>,
    stage: DealStage,
    change: impl FnOnce(&mut DealCreate),
) -> Result<Closing, Problem> {
    let problem = |e: prefiq_runtime::db::DbError| e.into_problem(&deal::TABLE);
    let Some(current) = deal::find_for_update(tx, id).await.map_err(problem)? else {
        return Ok(Closing::NotFound(Problem::not_found(format!(
            "no Deal has the id `{id}`"
        ))));
    };
    if let Err(stale) = IfMatch::parse(if_match).check(current.version) {
        return Ok(Closing::Stale(stale));
    }
    if matches!(current.stage, DealStage::Won | DealStage::Lost) {
        return Ok(Closing::Conflict(Problem::conflict(format!(
            "the deal is already {}; reopen it (PATCH its stage) before closing it again",
            current.stage
        ))));
    }
    let mut next = DealCreate::from(&current);
    next.stage = stage;
    next.closed_at = Some(prefiq_runtime::db::now());
    change(&mut next);
    match deal::update(tx, &current, &next).await.map_err(problem)? {
        Some(closed) => Ok(Closing::Closed(closed)),
        None => Ok(Closing::Stale(Problem::precondition_failed(
            current.version + 1,
        ))),
    }
}

/// `%text%` for LIKE on PostgreSQL (whose `lower` folds every script), with the wildcards of the
/// text itself escaped.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A case-insensitive, Unicode-aware regular expression that finds `text` anywhere, for SQLite
/// (whose `lower` and `LIKE` fold ASCII only).
fn contains_regex(text: &str) -> String {
    let mut pattern = String::from("(?i)");
    for ch in text.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern
}

/// The deals a pipeline report counts; they are summed in exact decimal arithmetic here, so both
/// databases give the same cents.
const PIPELINE: [&str; 2] = [
    "SELECT stage, amount, probability FROM deals \
     WHERE ($1::date IS NULL OR expected_close_date >= $1) AND ($2::date IS NULL OR expected_close_date <= $2) \
     AND ($3::text IS NULL OR currency = $3) AND tenant_id = $4",
    "SELECT stage, amount, probability FROM deals \
     WHERE (?1 IS NULL OR expected_close_date >= ?1) AND (?2 IS NULL OR expected_close_date <= ?2) \
     AND (?3 IS NULL OR currency = ?3) AND tenant_id = ?4",
];

const SEARCH: [&str; 2] = [
    "SELECT c.id, c.first_name, c.last_name, c.email, c.company_id, co.name FROM contacts c \
     JOIN companies co ON co.id = c.company_id AND co.tenant_id = c.tenant_id \
     WHERE c.tenant_id = $3 AND (lower(c.first_name) LIKE $1 ESCAPE '\\' OR lower(c.last_name) LIKE $1 ESCAPE '\\' \
     OR lower(c.email) LIKE $1 ESCAPE '\\' OR lower(co.name) LIKE $1 ESCAPE '\\') \
     ORDER BY c.last_name, c.first_name, c.id LIMIT $2",
    "SELECT c.id, c.first_name, c.last_name, c.email, c.company_id, co.name FROM contacts c \
     JOIN companies co ON co.id = c.company_id AND co.tenant_id = c.tenant_id \
     WHERE c.tenant_id = ?3 AND (c.first_name REGEXP ?1 OR c.last_name REGEXP ?1 \
     OR c.email REGEXP ?1 OR co.name REGEXP ?1) \
     ORDER BY c.last_name, c.first_name, c.id LIMIT ?2",
];

impl CrmService for Service {
    fn jobs() -> Registry {
        jobs()
    }

    async fn win_deal(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        params: WinDealParams,
        body: WinDeal,
    ) -> Result<WinDealResponse, Problem> {
        let closing = close(
            tx,
            &params.id,
            params.if_match.as_deref(),
            DealStage::Won,
            |next| {
                if let Some(amount) = body.amount {
                    next.amount = amount;
                }
                next.lost_reason = None;
            },
        )
        .await?;
        let won = match closing {
            Closing::Closed(won) => won,
            Closing::NotFound(p) => return Ok(WinDealResponse::NotFound(p)),
            Closing::Conflict(p) => return Ok(WinDealResponse::Conflict(p)),
            Closing::Stale(p) => return Ok(WinDealResponse::PreconditionFailed(p)),
        };
        if let Some(note) = body.note.filter(|n| !n.trim().is_empty()) {
            let activity = ActivityCreate::new(ActivityKind::Note, format!("Won: {}", won.name))
                .with_notes(note)
                .with_completed(true)
                .with_deal_id(won.id);
            activity::insert(tx, &activity)
                .await
                .map_err(|e| e.into_problem(&activity::TABLE))?;
        }
        // Enqueued and published with the win: a win rolled back leaves no job and no event.
        jobs::enqueue(
            tx,
            crate::generated::APP.name,
            &ThankCustomer { deal_id: won.id },
        )
        .await
        .map_err(|e| e.into_problem(&deal::TABLE))?;
        let mut event = DealWon::new(
            won.id,
            won.name.clone(),
            won.company_id,
            won.amount,
            won.currency.clone(),
        );
        if let Some(contact) = won.contact_id {
            event = event.with_contact_id(contact);
        }
        events::publish(tx, crate::generated::APP.name, &event)
            .await
            .map_err(|e| e.into_problem(&deal::TABLE))?;
        Ok(WinDealResponse::Ok(won))
    }

    async fn lose_deal(
        &self,
        _ctx: &RequestContext,
        tx: &mut Tx,
        params: LoseDealParams,
        body: LoseDeal,
    ) -> Result<LoseDealResponse, Problem> {
        let reason = match &body.competitor {
            Some(competitor) if !competitor.is_empty() => {
                format!("{} (lost to {competitor})", body.reason)
            }
            _ => body.reason.clone(),
        };
        let closing = close(
            tx,
            &params.id,
            params.if_match.as_deref(),
            DealStage::Lost,
            |next| {
                next.lost_reason = Some(reason);
            },
        )
        .await?;
        Ok(match closing {
            Closing::Closed(lost) => LoseDealResponse::Ok(lost),
            Closing::NotFound(p) => LoseDealResponse::NotFound(p),
            Closing::Conflict(p) => LoseDealResponse::Conflict(p),
            Closing::Stale(p) => LoseDealResponse::PreconditionFailed(p),
        })
    }

    async fn pipeline_report(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: PipelineReportParams,
    ) -> Result<PipelineReportResponse, Problem> {
        let problem = |e: prefiq_runtime::db::DbError| e.into_problem(&deal::TABLE);
        let sql = tx.pick(PIPELINE[0], PIPELINE[1]);
        let rows = tx
            .fetch_all(
                sql,
                vec![
                    params.from.to_sql(),
                    params.to.to_sql(),
                    SqlValue::text(params.currency.as_deref()),
                    SqlValue::Uuid(ctx.principal.tenant),
                ],
            )
            .await
            .map_err(problem)?;
        let mut stages: Vec<StageSummary> = DealStage::ALL
            .iter()
            .map(|stage| StageSummary::new(*stage, 0, Decimal::ZERO, Decimal::ZERO))
            .collect();
        // Exact sums; the weighted amount of a stage is rounded once, to the cent.
        let mut weighted: Vec<Decimal> = vec![Decimal::ZERO; stages.len()];
        for row in &rows {
            let stage: DealStage = row.req_enum(0).map_err(problem)?;
            let amount: Decimal = row.req(1).map_err(problem)?;
            let probability: i32 = row.req(2).map_err(problem)?;
            if let Some(i) = stages.iter().position(|s| s.stage == stage) {
                stages[i].deals += 1;
                stages[i].amount += amount;
                weighted[i] += amount * Decimal::from(probability) / Decimal::ONE_HUNDRED;
            }
        }
        for (summary, weighted) in stages.iter_mut().zip(weighted) {
            summary.amount = summary.amount.round_dp(2);
            summary.amount.rescale(2);
            summary.weighted_amount = weighted.round_dp_with_strategy(
                2,
                prefiq_runtime::deps::rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            );
            summary.weighted_amount.rescale(2);
        }
        let open: Vec<&StageSummary> = stages
            .iter()
            .filter(|s| !matches!(s.stage, DealStage::Won | DealStage::Lost))
            .collect();
        let mut report = PipelineReport::new(
            open.iter().map(|s| s.deals).sum(),
            open.iter().map(|s| s.amount).sum(),
            stages,
        );
        report.currency = params.currency.clone();
        report.from = params.from;
        report.to = params.to;
        Ok(PipelineReportResponse::Ok(report))
    }

    async fn search_contacts(
        &self,
        ctx: &RequestContext,
        tx: &mut Tx,
        params: SearchContactsParams,
    ) -> Result<SearchContactsResponse, Problem> {
        let problem = |e: prefiq_runtime::db::DbError| e.into_problem(&deal::TABLE);
        let sql = tx.pick(SEARCH[0], SEARCH[1]);
        let rows = tx
            .fetch_all(
                sql,
                vec![
                    SqlValue::Text(match tx.dialect() {
                        prefiq_runtime::Dialect::Postgres => contains_pattern(&params.q),
                        prefiq_runtime::Dialect::Sqlite => contains_regex(&params.q),
                    }),
                    SqlValue::Int(i64::from(params.limit)),
                    SqlValue::Uuid(ctx.principal.tenant),
                ],
            )
            .await
            .map_err(problem)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let first: String = row.req(1).map_err(problem)?;
            let last: String = row.req(2).map_err(problem)?;
            items.push(ContactHit::new(
                row.req(0).map_err(problem)?,
                format!("{first} {last}"),
                row.req(3).map_err(problem)?,
                row.req(4).map_err(problem)?,
                row.req(5).map_err(problem)?,
            ));
        }
        Ok(SearchContactsResponse::Ok(ContactSearch::new(items)))
    }

    async fn before_create_deal(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        input: &mut DealCreate,
    ) -> Result<(), Problem> {
        settle(None, input)
    }

    async fn before_update_deal(
        &self,
        _ctx: &RequestContext,
        _tx: &mut Tx,
        current: &Deal,
        next: &mut DealCreate,
    ) -> Result<(), Problem> {
        settle(Some(current), next)
    }
}
