//! Serves the lms app alone: `cargo run -p app-lms`.

fn main() -> std::process::ExitCode {
    prefiq_runtime::serve::main(app_lms::generated::APP, |db| {
        let service = app_lms::services::Service::new(db.clone());
        Ok(app_lms::router(service, db)?)
    })
}
