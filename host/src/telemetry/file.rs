//! A trace file: each batch of spans as one line of OTLP JSON (an
//! `ExportTraceServiceRequest`, as an OTLP/HTTP JSON collector would receive it), for
//! people without a collector. The encoding is the OpenTelemetry protocol crate's.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::TelemetryError;

/// Appends spans to a file as OTLP JSON lines.
#[derive(Debug)]
pub(super) struct FileExporter {
    file: Mutex<File>,
    resource: ResourceAttributesWithSchema,
}

impl FileExporter {
    /// Appends to `path`, creating it if needed.
    pub fn create(path: &Path) -> Result<Self, TelemetryError> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| TelemetryError::File {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            file: Mutex::new(file),
            resource: ResourceAttributesWithSchema::default(),
        })
    }
}

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut line = serde_json::to_vec(&request)
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}
