//! The integration tests: one binary, one module per area. Each test
//! starts the real application on a fresh PostgreSQL database (see
//! [`support`]) and talks to it as a client, a meter or an operator would.
//! The Python driver of the `iec62056_python` tests is in `tests/python/`.

mod support;

mod api;
mod audit;
mod automatic_commands;
mod balance;
mod billing_meter;
mod billing_server;
mod bulk_commands;
mod calendar_page;
mod cli;
mod clock_drift;
mod command_pages;
mod command_verification;
mod commands;
mod concentrator;
mod countis;
mod data_quality;
mod database_away;
mod demo_plant;
mod derived_intervals;
mod device_faults;
mod device_page;
mod device_secrets;
mod error_shape;
mod events;
mod every_simulator;
mod failed_auth;
mod fairness;
mod field_programming;
mod iec62056;
mod iec62056_python;
mod iec_commands;
mod jobs;
mod link;
mod load_profile;
mod load_profile_corrections;
mod mbpoll;
mod meter_events;
mod poll;
mod profile_gaps;
mod read_now;
mod role_matrix;
mod scan;
mod secret_logs;
mod security_layers;
mod service;
mod sessions;
mod sim_iec62056;
mod sim_modbus;
mod sites;
mod statements;
mod tariff_calendars;
mod tokens;
mod tou_audit;
mod validation;
mod virtual_meters;
mod vocabulary;
mod worker_steps;
