//! Running an experiment end to end, as `shakedown chaos run` and `shakedown drill` do: check it
//! against its target before anything is sent ([`prepare`]), run it ([`execute`]), and — for a
//! drill — run it inside a load with the order accounting ([`run`]). Here rather than in the
//! binary so that the orchestration is a library call with typed errors and its own tests; the
//! binary only parses flags, starts the embedded stack and maps [`DrillError`] and
//! [`Conclusion`](crate::Conclusion) to exit codes.

mod error;
mod prepare;
mod run;

pub use error::DrillError;
pub use prepare::{Prepared, SourceOverrides, check_planned_stack, dry_run, execute, prepare};
pub use run::{Drill, DrillOutcome, accounting_line, run};
