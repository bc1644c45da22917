//! Task requests.

use tasker_models::ids::CorrelationId;
use tasker_models::request::TaskRequest;

use super::json::{json_from_proto, json_to_proto, object_from_proto, object_to_proto};
use super::scalar::{timestamp_from_proto, timestamp_to_proto, uuid_from_proto};
use super::{ConvertError, Problem};
use crate::v1;

/// The protobuf form of a task request.
pub fn task_request_to_proto(request: &TaskRequest) -> v1::TaskRequest {
    v1::TaskRequest {
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        version: request.version.clone(),
        context: Some(json_to_proto(&request.context)),
        initiator: Some(request.initiator.clone()),
        source_system: Some(request.source_system.clone()),
        reason: Some(request.reason.clone()),
        tags: request.tags.clone(),
        priority: request.priority,
        correlation_id: Some(request.correlation_id.as_uuid().to_string()),
        parent_correlation_id: request
            .parent_correlation_id
            .map(|id| id.as_uuid().to_string()),
        idempotency_key: request.idempotency_key.clone(),
        options: request.options.as_ref().map(object_to_proto),
        requested_at: Some(timestamp_to_proto(request.requested_at)),
    }
}

/// The task request of its protobuf form, under `field` (e.g. `request`).
///
/// The request's documented defaults apply to absent optional fields (`system`, `tasker`,
/// `task requested`, a new correlation id, the server's time). The context is required and must be an object; the request's own
/// validation (lengths, priority range, the template's input schema) runs later, as for every
/// request.
pub fn task_request_from_proto(
    proto: &v1::TaskRequest,
    field: &str,
) -> Result<TaskRequest, ConvertError> {
    let context_field = format!("{field}.context");
    let context = match &proto.context {
        None => return Err(ConvertError::new(context_field, Problem::Missing)),
        Some(context) => json_from_proto(context, &context_field)?,
    };
    if !context.is_object() {
        return Err(ConvertError::new(context_field, Problem::NotAnObject));
    }
    let mut request = TaskRequest::new(
        proto.namespace.clone(),
        proto.name.clone(),
        proto.version.clone(),
        context,
    );
    if let Some(initiator) = &proto.initiator {
        request.initiator.clone_from(initiator);
    }
    if let Some(source_system) = &proto.source_system {
        request.source_system.clone_from(source_system);
    }
    if let Some(reason) = &proto.reason {
        request.reason.clone_from(reason);
    }
    request.tags = proto.tags.clone();
    request.priority = proto.priority;
    if let Some(id) = &proto.correlation_id {
        request.correlation_id =
            CorrelationId::from_uuid(uuid_from_proto(id, &format!("{field}.correlation_id"))?);
    }
    request.parent_correlation_id = proto
        .parent_correlation_id
        .as_deref()
        .map(|id| uuid_from_proto(id, &format!("{field}.parent_correlation_id")))
        .transpose()?
        .map(CorrelationId::from_uuid);
    request.idempotency_key = proto.idempotency_key.clone();
    request.options = proto
        .options
        .as_ref()
        .map(|options| object_from_proto(options, &format!("{field}.options")))
        .transpose()?;
    if let Some(at) = &proto.requested_at {
        request.requested_at = timestamp_from_proto(at, &format!("{field}.requested_at"))?;
    }
    Ok(request)
}
