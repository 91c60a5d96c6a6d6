//! JSON: the whole outcome plus the gate decision, for tools that post-process a check.

use reports::Provenance;
use serde::Serialize;

use crate::outcome::{CheckOutcome, Gate};

#[derive(Serialize)]
struct GateDocument<'a> {
    gate: Gate,
    allow_unknown: bool,
    #[serde(flatten)]
    outcome: &'a CheckOutcome,
    #[serde(skip_serializing_if = "nothing_recorded")]
    provenance: &'a Provenance,
}

fn nothing_recorded(provenance: &&Provenance) -> bool {
    provenance.is_empty()
}

pub fn json(outcome: &CheckOutcome, allow_unknown: bool, provenance: &Provenance) -> String {
    let document = GateDocument {
        gate: outcome.gate(allow_unknown),
        allow_unknown,
        outcome,
        provenance,
    };
    // Only maps with non-string keys fail to serialize; there are none here.
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}
