//! Counts what goes through a proxy in front of PostgreSQL, printing the counts every second:
//! `cargo run -p prefiq-roundtrips --example count -- postgres://postgres@127.0.0.1:5432/db`
//! prints the URL to point a service at.

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (proxy, through) = prefiq_roundtrips::Proxy::in_front_of(&url).expect("a proxy");
    println!("{through}");
    let mut last = proxy.counts();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let now = proxy.counts();
        if now != last {
            println!("{:?} (+{:?})", now, now - last);
            for warning in proxy.warnings() {
                println!("  {warning}");
            }
            last = now;
        }
    }
}
