//! Serves the showcase app alone: `cargo run -p app-showcase`.

fn main() -> std::process::ExitCode {
    prefiq_runtime::serve::main(app_showcase::generated::APP, |db| {
        let service = app_showcase::services::Service::new(db.clone());
        Ok(app_showcase::router(service, db)?)
    })
}
