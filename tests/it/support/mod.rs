//! Test harness: a fresh PostgreSQL database per test, the real application
//! on port 0, simulated meters to read, and typed helpers over the REST API.

mod api;
mod app;
mod counting_meter;
mod db;
mod device_config;
mod pg_proxy;
mod sim;
mod wait;

pub(crate) use api::{
    add_bus, add_device, add_unpolled_device, add_unpolled_th40c, count_readings, fetch_load_profile,
    insert_energy_reads, read_now, serve_one_iec_tcp_device, serve_one_modbus_tcp_device,
};
pub(crate) use app::{
    ANSWER_TIMEOUT, SILENT_METER_TIMEOUT, TEST_SECRET_KEY, TestApp, spawn_app, spawn_app_behind_proxy,
    spawn_app_deriving_on_demand, spawn_app_with, spawn_app_with_clock, spawn_app_with_deadline,
    spawn_app_with_profiles, spawn_app_with_timeout, spill_dir,
};
pub(crate) use counting_meter::{HELD, STORED, U12_ADDRESS, U12_OBIS, counting_meter, polls_in};
pub(crate) use db::{TestDb, insert_countis, insert_countis_expecting, server_url};
pub(crate) use device_config::device_config;
pub(crate) use pg_proxy::{Link, PgProxy};
pub(crate) use sim::{iec_meter, quick_iec_line, serve_iec_tcp};
pub(crate) use wait::{WAIT, eventually, eventually_some};
