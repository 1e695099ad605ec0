//! Hand-written business logic of the crm app. `prefiq codegen` created this file once and
//! never touches it again; the generated handlers call these hooks around every write.

use app_crm_types::{ActivityCreate, Deal, DealCreate, DealStage};
use prefiq_runtime::{Db, FieldError, Problem, RequestContext};

use crate::CrmService;

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

fn invalid(pointer: &str, detail: &str) -> Problem {
    Problem::unprocessable(vec![FieldError {
        pointer: pointer.to_owned(),
        detail: detail.to_owned(),
        keyword: None,
    }])
}

/// An activity is about a deal or a contact: exactly one of the two.
fn check_subject(input: &ActivityCreate) -> Result<(), Problem> {
    match (input.deal_id, input.contact_id) {
        (Some(_), Some(_)) => Err(invalid(
            "/contact_id",
            "an activity is about a deal or a contact, not both",
        )),
        (None, None) => Err(invalid(
            "/deal_id",
            "set `deal_id` or `contact_id`: an activity is about a deal or a contact",
        )),
        _ => Ok(()),
    }
}

/// Closing a deal stamps `closed_at`; reopening clears it. A lost deal needs a reason.
fn settle(previous: Option<&Deal>, next: &mut DealCreate) -> Result<(), Problem> {
    let closed = matches!(next.stage, DealStage::Won | DealStage::Lost);
    let was_closed = previous.is_some_and(|d| matches!(d.stage, DealStage::Won | DealStage::Lost));
    if closed && (!was_closed || previous.is_some_and(|d| d.stage != next.stage)) {
        next.closed_at = Some(prefiq_runtime::db::now());
    } else if !closed {
        next.closed_at = None;
    }
    if next.stage == DealStage::Lost && next.lost_reason.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("/lost_reason", "say why the deal was lost"));
    }
    if next.stage != DealStage::Lost {
        next.lost_reason = None;
    }
    Ok(())
}

impl CrmService for Service {
    async fn before_create_activity(
        &self,
        _ctx: &RequestContext,
        input: &mut ActivityCreate,
    ) -> Result<(), Problem> {
        check_subject(input)
    }

    async fn before_update_activity(
        &self,
        _ctx: &RequestContext,
        _current: &app_crm_types::Activity,
        next: &mut ActivityCreate,
    ) -> Result<(), Problem> {
        check_subject(next)
    }

    async fn before_create_deal(
        &self,
        _ctx: &RequestContext,
        input: &mut DealCreate,
    ) -> Result<(), Problem> {
        settle(None, input)
    }

    async fn before_update_deal(
        &self,
        _ctx: &RequestContext,
        current: &Deal,
        next: &mut DealCreate,
    ) -> Result<(), Problem> {
        settle(Some(current), next)
    }
}
