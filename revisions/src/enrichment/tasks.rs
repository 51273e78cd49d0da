//! The enrichment revision's tasks ([`EnrichmentTask`]), shared by the
//! planner (`plan.rs`) and the executor (`mod.rs`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnrichmentTask {
    /// The aspects table and the pipeline's own enrichment tables.
    Prepare,
    /// The reviews of one id range.
    Enrich(ReviewRange),
    /// Prunes what belongs to deleted reviews and judges the failed share.
    Finish,
    Downgrade,
}

/// A half-open range of review ids, `[from, to)`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}
