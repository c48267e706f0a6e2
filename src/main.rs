//! The `ohmnibus` binary: a thin command-line front over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ohmnibus::cli;

#[derive(Parser)]
#[command(
    name = "ohmnibus",
    version,
    about = "Metering head-end: polls meters, stores readings in PostgreSQL, serves dashboards and a REST API"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: apply pending migrations, poll every bus, serve HTTP on OHMNIBUS_BIND.
    Serve,
    /// Apply pending database migrations to DATABASE_URL and exit.
    Migrate,
    /// Run a demonstration: PostgreSQL database, a simulated fleet and the server.
    Demo(cli::demo::DemoArgs),
    /// Serve simulated devices over Modbus TCP, RTU over TCP, IEC 62056-21 or a pseudo-terminal.
    Simulate(ohmnibus::sim::cli::SimulateArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: cli::token::TokenCommand,
    },
    /// Print the OpenAPI document (as committed in openapi/openapi.json).
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let arguments = Arguments::parse();
    let result = match arguments.command {
        Command::Serve => cli::serve::run().await,
        Command::Migrate => cli::serve::migrate().await,
        Command::Demo(args) => cli::demo::run(args).await,
        Command::Simulate(args) => cli::simulate(args).await,
        Command::Token { command } => cli::token::run(command).await,
        Command::Openapi => {
            print!("{}", ohmnibus::web::api::openapi_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
