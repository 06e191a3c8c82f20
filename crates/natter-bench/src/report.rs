//! Regenerates the generated section of docs/performance.md and its SVG plots.

use crate::cli::ReportArgs;
use crate::error::BenchError;

pub fn generate(_args: &ReportArgs) -> Result<(), BenchError> {
    Err(BenchError::Config("not yet".into()))
}
