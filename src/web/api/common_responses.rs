//! The answers every operation can give whatever its handler does, added
//! to each operation of the document so that a client generated from it
//! knows them: a path or query parameter or body that cannot be read
//! (`400`), a body too large (`413`) or not sent as JSON (`415`), too many
//! failed authentications from one address (`429`, `web::auth_limit`), the
//! database out of reach (`503`). Responses a handler documents stay as it
//! wrote them; one it left without a description gets its status's.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Type};

use crate::web::security::MAX_BODY_BYTES;

pub(super) struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                add_common(operation);
            }
        }
    }
}

fn add_common(operation: &mut Operation) {
    let reads_parameters = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query));
    let takes_body = operation.request_body.is_some();
    let responses = &mut operation.responses.responses;
    if reads_parameters || takes_body {
        responses.entry("400".into()).or_insert_with(|| error("400"));
    }
    if takes_body {
        responses.entry("413".into()).or_insert_with(|| error("413"));
        responses.entry("415".into()).or_insert_with(|| error("415"));
    }
    responses.entry("401".into()).or_insert_with(|| error("401"));
    responses.entry("429".into()).or_insert_with(too_many_failures);
    responses.entry("503".into()).or_insert_with(|| error("503"));
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = description(status);
        }
    }
}

/// An error answer: the documented JSON error body.
fn error(status: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description(status))
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn too_many_failures() -> RefOr<Response> {
    let RefOr::T(response) = error("429") else {
        unreachable!("error() builds the response inline")
    };
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
    let header = HeaderBuilder::new()
        .schema(seconds)
        .description(Some("Seconds until this address may try again"))
        .build();
    let mut response = response;
    response.headers.insert("Retry-After".into(), header);
    RefOr::T(response)
}

/// What a status means on this API, with the error's `code` where it is one.
fn description(status: &str) -> String {
    match status {
        "200" => "OK".into(),
        "201" => "Created".into(),
        "202" => "Accepted: queued as a job".into(),
        "204" => "Done; no content".into(),
        "400" => "A path or query parameter that cannot be read (`invalid_parameter`), or a body that is not \
                  JSON (`malformed_body`); the message names what was wrong"
            .into(),
        "401" => "No token, or one unknown, expired or revoked (`unauthenticated`)".into(),
        "403" => "The token's role may not do this (`forbidden`)".into(),
        "404" => "No such item (`not_found`)".into(),
        "409" => "It conflicts with what is stored (`conflict`)".into(),
        "413" => format!("The body is larger than the {MAX_BODY_BYTES} bytes the server takes (`body_too_large`)"),
        "415" => "The body was not sent with `Content-Type: application/json` (`malformed_body`)".into(),
        "422" => "A field breaks a rule (`invalid_field`); the message names the field by its path".into(),
        "429" => "Too many failed authentications from this address (`too_many_failed_authentications`); \
                  `Retry-After` says when to try again"
            .into(),
        "503" => "The database is out of reach (`database_unavailable`), or the server lacks a setting the \
                  operation needs (`not_configured`); try again later"
            .into(),
        other => format!("HTTP {other}"),
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::super::ApiDoc;
    use super::*;

    /// Read from the document as served, so a new operation is covered
    /// without being listed here.
    #[test]
    fn every_operation_lists_the_answers_it_can_give_whatever_its_handler() {
        let document = ApiDoc::openapi();
        let mut seen = 0;
        for (path, item) in &document.paths.paths {
            let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for operation in operations.into_iter().flatten() {
                seen += 1;
                let listed = &operation.responses.responses;
                let has = |status: &str| listed.contains_key(status);
                let name = operation.operation_id.as_deref().unwrap_or(path);
                for status in ["401", "429", "503"] {
                    assert!(has(status), "{name} does not list {status}");
                }
                let parameters = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query));
                if parameters || path.contains('{') {
                    assert!(has("400"), "{name} reads parameters and does not list 400");
                }
                if operation.request_body.is_some() {
                    for status in ["400", "413", "415"] {
                        assert!(has(status), "{name} takes a body and does not list {status}");
                    }
                }
                for (status, response) in listed {
                    let RefOr::T(response) = response else { continue };
                    assert!(!response.description.is_empty(), "{name}: {status} has no description");
                }
                let RefOr::T(limited) = &listed["429"] else {
                    panic!("{name}: 429 is inline")
                };
                assert!(
                    limited.headers.contains_key("Retry-After"),
                    "{name}: 429 without Retry-After"
                );
            }
        }
        assert!(seen > 40, "only {seen} operations found: is the document empty?");
    }

    #[test]
    fn a_status_a_handler_described_keeps_its_description() {
        let mut operation = Operation::new();
        operation
            .responses
            .responses
            .insert("404".into(), RefOr::T(Response::new("No such device")));
        operation
            .responses
            .responses
            .insert("200".into(), RefOr::T(Response::new("")));
        add_common(&mut operation);
        let description = |status: &str| match &operation.responses.responses[status] {
            RefOr::T(response) => response.description.clone(),
            RefOr::Ref(_) => panic!("inline"),
        };
        assert_eq!(description("404"), "No such device");
        assert_eq!(description("200"), "OK");
        // No parameters, no body: neither 400 nor 413/415.
        for status in ["400", "413", "415"] {
            assert!(!operation.responses.responses.contains_key(status), "{status} added");
        }
    }
}
