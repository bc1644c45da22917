//! Domain records: plain data for everything the database stores, with typed ids, typed
//! states (from `tasker-state`) and UTC timestamps. `tasker-db` maps its rows onto these;
//! no SQL lives here.

mod audit;
mod edge;
mod named;
mod step;
mod task;
mod transition;

pub use audit::StepResultAudit;
pub use edge::{EDGE_NAME_PROVIDES, WorkflowStepEdge};
pub use named::{NamedStep, NamedTask, Namespace};
pub use step::WorkflowStep;
pub use task::Task;
pub use transition::{StepTransition, TaskTransition};

#[cfg(test)]
mod tests;
