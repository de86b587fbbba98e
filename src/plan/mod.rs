//! `opsguard plan`: judging a Terraform (or OpenTofu) plan before apply.
//!
//! The two incidents behind opsguard were both visible in `terraform plan`
//! to anyone who knew which credential the running services hold: in 2021 a
//! provisioner re-ran the user script and changed every password; in 2026 an
//! API key was replaced destroy-before-create. opsguard knows the consumers,
//! so it reads the plan, joins each resource change to the live credential
//! graph and lets rules (`each = "changes"`) judge it:
//!
//! ```text
//! plan JSON ─ parse ─┐
//!                    ├─ join (facts::change::ChangeFact) ─ rules ─ report
//! snapshot (or none, --offline) ─┘
//! ```
//!
//! * [`parse`] — the JSON plan format, with file:line:col for malformed input;
//! * [`join`] — resource changes × the credential graph (pure);
//! * [`redact`] — sensitive plan values never reach an output.

pub mod join;
pub mod parse;
pub mod redact;

use crate::facts::change::ChangeFact;
use crate::report::model::Change;
use crate::rules::{apply_waivers, Finding, RuleError, RuleSet};

pub use parse::{parse, Plan, PlanError};
pub use redact::Redactor;

/// The plan rules over the facts, waivers applied; blocking findings first.
pub fn evaluate(
    rules: &RuleSet,
    waivers: &[crate::config::Waiver],
    facts: &[ChangeFact],
) -> Result<Vec<Finding>, RuleError> {
    Ok(apply_waivers(rules.evaluate_changes(facts)?, waivers))
}

/// What the plan changes, in words, for the report's `changes` (no-op and
/// read changes left out). Never an attribute value.
pub fn changes(facts: &[ChangeFact]) -> Vec<Change> {
    facts
        .iter()
        .filter(|f| !matches!(f.action.as_str(), "no-op" | "read"))
        .map(|f| {
            let mut detail = f.action.clone();
            if !f.replace_order.is_empty() {
                detail.push_str(&format!(" ({})", f.replace_order));
            }
            if !f.matched_by.is_empty() && !f.offline {
                detail.push_str(&format!("; {}", f.matched_by));
                if !f.live_consumers.is_empty() {
                    detail.push_str(&format!(", live consumers {}", f.live_consumers.join(", ")));
                }
            }
            if f.desired_known && f.desired_before != f.desired_after {
                detail.push_str(&format!(
                    "; desired count {} → {}",
                    f.desired_before, f.desired_after
                ));
            }
            if !f.provisioners.is_empty() && f.creates {
                detail.push_str(&format!("; runs {}", f.provisioners.join(", ")));
            }
            Change {
                kind: "resource".into(),
                target: f.id.clone(),
                change: f.action.clone(),
                detail,
            }
        })
        .collect()
}
