//! `colony:agent/report`: the guest's explicit report to its parent.

use super::{HostState, too_large};
use crate::bindings::ReportStatus as WitStatus;
use crate::bindings::colony::agent::report;
use crate::worker::{ExplicitReport, ReportStatus};

impl report::Host for HostState {
    fn report_to_parent(
        &mut self,
        status: WitStatus,
        summary: String,
        data: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.charge_event()?;
        let limits = self.worker.limits();
        if summary.len() > limits.max_report_summary_bytes {
            return Ok(Err(too_large(
                "report summary",
                summary.len(),
                limits.max_report_summary_bytes,
            )));
        }
        if data.len() > limits.max_report_data_bytes {
            return Ok(Err(too_large(
                "report data",
                data.len(),
                limits.max_report_data_bytes,
            )));
        }
        let data = match self.parse_guest_json("report data", &data) {
            Ok(value) => crate::worker::into_object(value),
            Err(e) => return Ok(Err(e)),
        };
        let status = match status {
            WitStatus::Success => ReportStatus::Success,
            WitStatus::Partial => ReportStatus::Partial,
            WitStatus::Failed => ReportStatus::Failed,
        };
        *self.worker.report.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(ExplicitReport::new(status, summary, data));
        Ok(Ok(()))
    }
}
