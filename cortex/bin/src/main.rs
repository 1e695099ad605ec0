//! `cargo run -p cortex`: serves every installed app with identity, RBAC, tenancy, an audit log
//! and the admin UI, on SQLite with no set-up. Subcommands manage administrators, tokens,
//! clients and keys.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cortex::config::Config;
use cortex::identity;

#[derive(Debug, Parser)]
#[command(
    name = "cortex",
    version,
    about = "Runs every installed Prefiq app together, with identity, RBAC, tenancy, an audit log and an admin UI"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Applies every pending migration (Cortex's and the apps') and exits: a deployment's
    /// migration job.
    Migrate,
    /// Runs the installed apps' jobs (and Cortex's own) without serving HTTP, to scale workers
    /// apart from servers; stops on SIGINT or SIGTERM after finishing or giving back its jobs.
    Worker,
    /// Asks the Cortex listening on --bind for `/healthz`; exits 0 if it answers 200 (the
    /// container healthcheck, with no shell or curl in the image).
    Probe {
        /// Ask the database instead (`SELECT 1` within two seconds): the probe of a `worker`,
        /// which serves no HTTP.
        #[arg(long)]
        database: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Creates a platform operator, an administrator of the default tenant (or makes an existing
    /// user one). The password is read from standard input with --password-stdin; otherwise one
    /// is made and printed once.
    Create {
        /// Their e-mail.
        #[arg(long)]
        email: String,
        /// Their name.
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Creates a personal access token for a user and prints it once.
    Create {
        /// Whose token (it carries their permissions).
        #[arg(long)]
        email: String,
        /// What it is for.
        #[arg(long)]
        name: String,
        /// How long it lives: `30d`, `12h`, `90m`. Default: it does not expire.
        #[arg(long, value_parser = parse_duration)]
        expires_in: Option<chrono::Duration>,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Registers an OAuth client and prints its id (and secret, once).
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// A browser app (authorization code with PKCE, no secret) rather than a service.
        #[arg(long)]
        public: bool,
        /// Where a browser app may be sent back to (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The tenant a service client acts in. Default: the default tenant.
        #[arg(long)]
        tenant: Option<prefiq_runtime::deps::uuid::Uuid>,
        /// The roles a service client has (comma-separated).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Prints a new signing key as KID:SEED, for PREFIQ_SIGNING_KEY.
    Generate,
}

fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}`: write a number and a unit, as in 30d, 12h or 90m"))?;
    if n <= 0 {
        return Err(format!("`{text}`: the duration must be positive"));
    }
    match unit {
        "d" => Ok(chrono::Duration::days(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        _ => Err(format!("`{text}`: the unit is d, h or m")),
    }
}

fn main() -> ExitCode {
    prefiq_runtime::serve::init_tracing();
    let mut cli = Cli::parse();
    if let Some(Command::Key(KeyCommand::Generate)) = &cli.command {
        let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d"));
        println!("{}", prefiq_runtime::auth::SigningKey::generate_text(&kid));
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Probe { database: false }) = &cli.command {
        return prefiq_runtime::serve::probe(cli.config.bind);
    }
    if let Err(error) = cli
        .config
        .read_secret_files()
        .and_then(|()| cli.config.metrics.apply())
    {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => cortex::server::run(&cli.config).await,
            Some(Command::Worker) => cortex::server::work(&cli.config).await,
            Some(Command::Admin(AdminCommand::Create {
                email,
                name,
                password_stdin,
            })) => admin_create(&cli.config, &email, &name, password_stdin).await,
            Some(Command::Token(TokenCommand::Create {
                email,
                name,
                expires_in,
            })) => token_create(&cli.config, &email, &name, expires_in).await,
            Some(Command::Client(ClientCommand::Create {
                name,
                public,
                redirect_uris,
                tenant,
                roles,
            })) => client_create(&cli.config, &name, public, &redirect_uris, tenant, &roles).await,
            Some(Command::Migrate) => {
                cortex::server::migrate(&cli.config).await?;
                println!("cortex: migrations applied");
                Ok(())
            }
            Some(Command::Probe { database: true }) => {
                cortex::server::probe_database(&cli.config).await
            }
            Some(Command::Key(_) | Command::Probe { .. }) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Connects and migrates, with the roles and default tenant in place.
async fn prepared(config: &Config) -> Result<prefiq_runtime::Db, String> {
    let (owner, db) = cortex::server::connect(config).await?;
    // The first start's bootstrap, without making an administrator here.
    let booted = cortex::server::bootstrap(&db, &owner, config, false).await;
    owner.close().await;
    booted?;
    Ok(db)
}

async fn admin_create(
    config: &Config,
    email: &str,
    name: &str,
    password_stdin: bool,
) -> Result<(), String> {
    let (password, shown) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (identity::new_secret()[..20].to_owned(), true)
    };
    identity::check_new_password(&password)?;
    let db = prepared(config).await?;
    let mut tx = db
        .begin(&identity::system())
        .await
        .map_err(|e| e.to_string())?;
    let user = match identity::user_by_email(&mut tx, email)
        .await
        .map_err(|e| e.to_string())?
    {
        Some((user, _)) => {
            let current = cortex::generated::user::find(&mut tx, &user.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the user vanished")?;
            let mut next = cortex_types::UserCreate::from(&current);
            if !next.roles.iter().any(|r| r == "admin") {
                next.roles.push("admin".into());
            }
            next.operator = true;
            cortex::generated::user::update(&mut tx, &current, &next)
                .await
                .map_err(|e| e.to_string())?;
            user.id
        }
        None => {
            let input = cortex_types::UserCreate::new(
                email.trim().to_lowercase(),
                name.to_owned(),
                prefiq_runtime::auth::DEFAULT_TENANT,
            )
            .with_roles(vec!["admin".into()])
            .with_operator(true);
            cortex::generated::user::insert(&mut tx, &input)
                .await
                .map_err(|e| {
                    e.into_problem(&cortex::generated::user::TABLE)
                        .detail
                        .unwrap_or_default()
                })?
                .id
        }
    };
    // Where Cortex has an SMTP server, a password it would print is e-mailed as an invitation
    // to choose one instead (sent by the server's workers).
    let invited = shown && config.notifier()?.mails();
    if invited {
        let invitation = cortex::notifications::SendPasswordLink {
            user_id: user,
            purpose: cortex::notifications::Purpose::Invitation,
            inviter: None,
        };
        prefiq_runtime::jobs::enqueue(&mut tx, "cortex", &invitation)
            .await
            .map_err(|e| e.to_string())?;
    } else {
        identity::set_password(&mut tx, user, &password).await?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    db.close().await;
    println!("{email} is an administrator of the default tenant and a platform operator.");
    if invited {
        println!("an invitation to choose a password is e-mailed to {email}");
    } else if shown {
        println!("password: {password}\n(shown once; sign in and change it)");
    }
    Ok(())
}

async fn token_create(
    config: &Config,
    email: &str,
    name: &str,
    expires_in: Option<chrono::Duration>,
) -> Result<(), String> {
    let db = prepared(config).await?;
    let mut tx = db
        .begin(&identity::system())
        .await
        .map_err(|e| e.to_string())?;
    let (user, _) = identity::user_by_email(&mut tx, email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user has the e-mail {email}"))?;
    if !user.active {
        return Err(format!("{email} is not active"));
    }
    let token = identity::create_personal_token(&mut tx, user.id, user.tenant, name, expires_in)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    db.close().await;
    // The token, alone on standard output, so that scripts can capture it.
    println!("{token}");
    eprintln!("(shown once: Cortex keeps only its hash)");
    Ok(())
}

async fn client_create(
    config: &Config,
    name: &str,
    public: bool,
    redirect_uris: &[String],
    tenant: Option<prefiq_runtime::deps::uuid::Uuid>,
    roles: &[String],
) -> Result<(), String> {
    if public && redirect_uris.is_empty() {
        return Err("a public client needs at least one --redirect-uri".into());
    }
    let db = prepared(config).await?;
    let mut tx = db
        .begin(&identity::system())
        .await
        .map_err(|e| e.to_string())?;
    let (id, secret) = cortex::oauth::create_client(
        &mut tx,
        name,
        tenant.unwrap_or(prefiq_runtime::auth::DEFAULT_TENANT),
        roles,
        redirect_uris,
        public,
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    db.close().await;
    println!("client_id: {id}");
    if let Some(secret) = secret {
        println!("client_secret: {secret}\n(shown once: Cortex keeps only its hash)");
    }
    Ok(())
}
