//! JSON API under `/api/v1`, described by utoipa.

pub(crate) mod audit;
pub(crate) mod balance;
pub(crate) mod billing;
pub(crate) mod buses;
pub(crate) mod command_bulk;
pub(crate) mod commands;
mod common_responses;
pub(crate) mod data_quality;
pub(crate) mod device_secrets;
pub(crate) mod device_settings;
pub(crate) mod devices;
pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod load_profile;
pub(crate) mod load_profile_corrections;
pub(crate) mod load_profile_versions;
pub(crate) mod meter_identity;
pub(crate) mod readings;
pub(crate) mod reads;
pub(crate) mod scans;
pub(crate) mod sites;
pub(crate) mod statement_body;
pub(crate) mod statements;
pub(crate) mod tariff_calendars;
pub(crate) mod tokens;
pub(crate) mod virtual_meters;

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use self::common_responses::CommonResponses;
use super::error::{ErrorBody, ErrorDetail};
use super::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ohmnibus API",
        description = "Metering head-end: buses, devices and the readings polled from them. \
                       Every request needs `Authorization: Bearer <token>` (create one with \
                       `ohmnibus token create --role ROLE --name NAME`). Roles follow IEC 62351-8: \
                       viewer reads, operator also acknowledges and reads on demand, engineer also \
                       configures buses and devices and sends commands to devices, secadm manages tokens \
                       (`/api/v1/tokens`), secaud reads the audit log. An address that sends 10 unknown, expired or \
                       revoked tokens within a minute gets 429 `too_many_failed_authentications`, with \
                       `Retry-After`, for any token until the minute is over. Errors are `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        buses::create_bus,
        buses::list_buses,
        buses::get_bus,
        scans::create_scan,
        scans::get_scan,
        devices::create_device,
        devices::list_devices,
        devices::get_device,
        device_settings::update_device,
        device_secrets::set_device_secret,
        device_secrets::delete_device_secret,
        device_secrets::list_device_secrets,
        meter_identity::get_device_identity,
        meter_identity::confirm_meter_replacement,
        readings::get_registers,
        readings::get_readings,
        load_profile::get_load_profile,
        load_profile::get_load_profile_csv,
        statements::get_statement,
        statements::get_statement_csv,
        data_quality::get_data_quality,
        load_profile_corrections::create_corrections,
        load_profile_versions::get_interval_versions,
        reads::create_read,
        reads::get_read,
        commands::create_command,
        commands::get_command,
        commands::cancel_command,
        command_bulk::create_bulk_command,
        command_bulk::get_bulk_command,
        jobs::list_jobs,
        audit::list_audit,
        jobs::get_job,
        jobs::cancel_job,
        events::list_events,
        events::ack_event,
        billing::list_billing_periods,
        sites::list_sites,
        sites::create_site,
        sites::get_site,
        sites::update_site,
        balance::get_site_balance,
        virtual_meters::create_virtual_meter,
        virtual_meters::list_virtual_meters,
        virtual_meters::get_virtual_meter,
        tariff_calendars::create_calendar,
        tariff_calendars::list_calendars,
        tariff_calendars::get_calendar,
        tariff_calendars::create_version,
        tariff_calendars::classify,
        tokens::list_tokens,
        tokens::create_token,
        tokens::revoke_token,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &FlattenedParameters, &CommonResponses),
    security(("bearer" = [])),
    tags(
        (name = "buses", description = "Communication lines: Modbus TCP, RTU over TCP gateways, serial RS485, IEC 62056-21 lines, optical probes"),
        (name = "devices", description = "Meters on the buses, their schedules and status"),
        (name = "readings", description = "Values read from devices, named by OBIS code"),
        (name = "commands", description = "Writes to devices (set tariff, clock, address; reset counters), ahead of every read on their bus"),
        (name = "audit", description = "The audit log of every change: who, what, when; readable by the security auditor only"),
        (name = "jobs", description = "Every job (on-demand reads, scans, commands): queued in the database until the worker of its bus takes it"),
        (name = "billing", description = "Billing periods: the registers as they stood at each billing reset"),
        (name = "statements", description = "Billing statements: a device's energy and maximum demand per tariff band over a period, computed from its stored intervals"),
        (name = "sites", description = "Sites: their time zone, the billing schedule the server closes periods on, their tree of meters, virtual meters and energy balance"),
        (name = "tariffs", description = "Tariff calendars: bands, day and week profiles, seasons and special days in a time zone, with dated versions (docs/TARIFFS.md)"),
        (name = "events", description = "The event log: meter conditions and head-end events, with their acknowledgement"),
        (name = "tokens", description = "API tokens: issued, listed and revoked by the security administrator (secadm); a token's text is shown once"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A command's parameters are flattened into the command requests beside
/// `kind` (`NewCommand`, `NewBulkCommand`): there a key they do not name is
/// left to the request, not refused. Their schema says
/// `additionalProperties: false` (they deny unknown fields when read alone,
/// as the command form is), which under `allOf` with `kind` would admit no
/// body at all; the document leaves it out.
struct FlattenedParameters;

impl Modify for FlattenedParameters {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schema = openapi
            .components
            .as_mut()
            .and_then(|components| components.schemas.get_mut("CommandParameters"));
        if let Some(RefOr::T(Schema::Object(parameters))) = schema {
            parameters.additional_properties = None;
        }
    }
}

/// The OpenAPI document as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

async fn get_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(get_openapi))
        .route("/buses", get(buses::list_buses).post(buses::create_bus))
        .route("/buses/{id}", get(buses::get_bus))
        .route("/buses/{id}/scan", axum::routing::post(scans::create_scan))
        .route("/scans/{id}", get(scans::get_scan))
        .route("/devices", get(devices::list_devices).post(devices::create_device))
        .route(
            "/devices/{id}",
            get(devices::get_device).patch(device_settings::update_device),
        )
        .route("/devices/{id}/secrets", get(device_secrets::list_device_secrets))
        .route(
            "/devices/{id}/secrets/{name}",
            axum::routing::put(device_secrets::set_device_secret).delete(device_secrets::delete_device_secret),
        )
        .route("/devices/{id}/identity", get(meter_identity::get_device_identity))
        .route(
            "/devices/{id}/identity/confirm",
            axum::routing::post(meter_identity::confirm_meter_replacement),
        )
        .route("/devices/{id}/registers", get(readings::get_registers))
        .route("/devices/{id}/readings", get(readings::get_readings))
        .route("/devices/{id}/load-profile", get(load_profile::get_load_profile))
        .route(
            "/devices/{id}/load-profile.csv",
            get(load_profile::get_load_profile_csv),
        )
        .route("/devices/{id}/data-quality", get(data_quality::get_data_quality))
        .route("/devices/{id}/statement", get(statements::get_statement))
        .route("/devices/{id}/statement.csv", get(statements::get_statement_csv))
        .route(
            "/devices/{id}/load-profile/corrections",
            axum::routing::post(load_profile_corrections::create_corrections),
        )
        .route(
            "/devices/{id}/load-profile/versions",
            get(load_profile_versions::get_interval_versions),
        )
        .route("/devices/{id}/read", axum::routing::post(reads::create_read))
        .route("/reads/{id}", get(reads::get_read))
        .route("/devices/{id}/commands", axum::routing::post(commands::create_command))
        .route("/commands/bulk", axum::routing::post(command_bulk::create_bulk_command))
        .route("/commands/bulk/{id}", get(command_bulk::get_bulk_command))
        .route("/commands/{id}", get(commands::get_command))
        .route("/commands/{id}/cancel", axum::routing::post(commands::cancel_command))
        .route("/jobs", get(jobs::list_jobs))
        .route("/audit", get(audit::list_audit))
        .route("/jobs/{id}", get(jobs::get_job))
        .route("/jobs/{id}/cancel", axum::routing::post(jobs::cancel_job))
        .route("/devices/{id}/billing-periods", get(billing::list_billing_periods))
        .route("/events", get(events::list_events))
        .route("/sites", get(sites::list_sites).post(sites::create_site))
        .route("/sites/{id}", get(sites::get_site).patch(sites::update_site))
        .route("/sites/{id}/balance", get(balance::get_site_balance))
        .route(
            "/virtual-meters",
            get(virtual_meters::list_virtual_meters).post(virtual_meters::create_virtual_meter),
        )
        .route("/virtual-meters/{id}", get(virtual_meters::get_virtual_meter))
        .route("/events/{id}/ack", axum::routing::post(events::ack_event))
        .route(
            "/tariff-calendars",
            get(tariff_calendars::list_calendars).post(tariff_calendars::create_calendar),
        )
        .route("/tariff-calendars/{id}", get(tariff_calendars::get_calendar))
        .route(
            "/tariff-calendars/{id}/versions",
            axum::routing::post(tariff_calendars::create_version),
        )
        .route("/tariff-calendars/{id}/classify", get(tariff_calendars::classify))
        .route("/tokens", get(tokens::list_tokens).post(tokens::create_token))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke_token))
        .fallback(|| async { super::error::ApiError::not_found("no such API path") })
}
