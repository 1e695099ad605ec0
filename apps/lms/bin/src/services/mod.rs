//! Hand-written business logic of the lms app. `prefiq codegen` created this file once
//! and never touches it again.
//!
//! Every method of [`LmsService`] has a default; override the hooks you need.
//!
//! The LMS reacts to the CRM through its events, never its tables: when a deal is won
//! (`crm.deal_won`, typed by the CRM's types crate), an onboarding course is prepared for the
//! customer, in the tenant the deal was won in.

use app_crm_types::DealWon;
use app_lms_types::CourseCreate;
use prefiq_runtime::db::ToSql;
use prefiq_runtime::events::Delivered;
use prefiq_runtime::jobs::{Failure, JobContext, Registry};
use prefiq_runtime::{Db, Executor, SqlValue};

use crate::LmsService;
use crate::generated::course;

/// The lms service.
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

impl LmsService for Service {
    fn jobs() -> Registry {
        jobs()
    }
}

/// The lms app's jobs and subscribers.
pub fn jobs() -> Registry {
    Registry::new().on_event("offer_onboarding", offer_onboarding)
}

/// The code of the onboarding course of the deal `deal`: one per deal, whatever the deal's
/// name, within the pattern of course codes (`ONB1A2B3C4D-001`).
pub fn onboarding_code(deal: &prefiq_runtime::deps::uuid::Uuid) -> String {
    let hex = deal.simple().to_string().to_uppercase();
    format!("ONB{}-001", &hex[..8])
}

/// Prepares (unpublished) the onboarding course of a won deal, once: a delivery may come more
/// than once, and a second finds the course there.
async fn offer_onboarding(ctx: JobContext, won: Delivered<DealWon>) -> Result<(), Failure> {
    let code = onboarding_code(&won.data.deal_id);
    let mut tx = ctx.db.begin(&ctx.principal).await?;
    let existing = tx
        .fetch_all(
            tx.pick(
                "SELECT 1 FROM courses WHERE code = $1 AND tenant_id = $2",
                "SELECT 1 FROM courses WHERE code = ?1 AND tenant_id = ?2",
            ),
            vec![SqlValue::Text(code.clone()), ctx.tenant.to_sql()],
        )
        .await?;
    if existing.is_empty() {
        let title: String = format!("Onboarding: {}", won.data.name)
            .chars()
            .take(200)
            .collect();
        let summary = format!(
            "For the customer who signed {} ({} {}).",
            won.data.name, won.data.amount, won.data.currency
        );
        let course = CourseCreate::new(code, title)
            .with_summary(summary.chars().take(2000).collect())
            .with_tags(vec!["onboarding".into()]);
        course::insert(&mut tx, &course).await?;
    }
    tx.commit().await?;
    Ok(())
}
