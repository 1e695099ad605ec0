//! Serves the crm app alone: `cargo run -p app-crm`.

fn main() -> std::process::ExitCode {
    prefiq_runtime::serve::main(app_crm::generated::APP, |db| {
        let service = app_crm::services::Service::new(db.clone());
        Ok(app_crm::router(service, db)?)
    })
}
