//! Ferry's configuration: flags and environment variables, read once in `main`.

use clap::{Parser, Subcommand, ValueEnum};
use std::{fmt, net::SocketAddr, path::PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags win over environment variables, which win over defaults.
#[derive(Clone, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move user accounts from a legacy identity provider into a SCIM 2.0 identity provider."
)]
pub struct Config {
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
    /// Default: a SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Address and port to listen on.
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Folder for the SQLite database, the secret key and uploaded exports.
    #[arg(long, env = "FERRY_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// File holding the 32-byte secret key; created with mode 0600 on first start.
    /// Default: secret.key in the data folder.
    #[arg(long, env = "FERRY_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Log filter, as in RUST_LOG: `info`, `ferry=debug,sqlx=warn`, …
    #[arg(long, env = "FERRY_LOG", default_value = "info,sqlx=warn")]
    pub log: String,

    /// Log lines as text or JSON.
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// The URL people use to reach Ferry (for example behind a reverse proxy). Requests
    /// that change state must come from this origin. Default: http://LISTEN.
    #[arg(long, env = "FERRY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose
    /// `X-Forwarded-For` names the client. Only for these is the header believed: a
    /// client address decides sign-in throttling. Default: none.
    #[arg(long, env = "FERRY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The largest export Ferry accepts, in bytes (default 2 GiB).
    #[arg(long, env = "FERRY_MAX_UPLOAD_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Seconds a run worker's claim on records lasts without a heartbeat; after a
    /// crash, its records are taken up again once it expires.
    #[arg(long, env = "FERRY_RUN_LEASE_SECS", default_value_t = 60)]
    pub run_lease_secs: u64,

    /// This process's name among the instances sharing one PostgreSQL database, the
    /// same across its restarts (letters, digits, `.`, `_`, `-`). When it starts, the
    /// records a predecessor of the same name left claimed are taken up at once instead
    /// of after their lease. On SQLite (one instance) the name is implied.
    #[arg(long, env = "FERRY_INSTANCE", value_parser = parse_instance)]
    pub instance: Option<String>,

    /// Folder with the compiled site (wasm, JS, CSS), as built by cargo-leptos.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard and the API (the default).
    Serve,
}

impl Config {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ferry.db").display()))
    }

    pub fn secret_key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The origins a state-changing request from a browser may come from: the public
    /// URL and, when none is configured and Ferry listens on a loopback address, the
    /// same port on `localhost` and `127.0.0.1` (both reach it on this machine).
    pub fn allowed_origins(&self) -> Vec<String> {
        let mut origins = vec![self.public_url()];
        if self.public_url.is_none() && self.listen.ip().is_loopback() {
            let port = self.listen.port();
            for host in ["localhost", "127.0.0.1", "[::1]"] {
                let origin = format!("http://{host}:{port}");
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// Cookies get the `Secure` attribute when Ferry is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }
}

/// Hides the password of a database URL: `postgres://ferry:***@db/ferry`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url()))
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("secret_key_file", &self.secret_key_file())
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("public_url", &self.public_url())
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("instance", &self.instance)
            .field("site_root", &self.site_root)
            .field("command", &self.command)
            .finish()
    }
}

/// An instance name: short, and safe inside a lease owner (`name~start:worker`).
fn parse_instance(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(text.to_string())
    } else {
        Err("expected 1 to 64 letters, digits, '.', '_' or '-'".to_string())
    }
}

/// A trusted proxy: an address (`10.0.0.5`) or a range (`10.0.0.0/8`).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| "expected an IP address or a CIDR range such as 10.0.0.0/8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_database_password() {
        let config = Config::parse_from([
            "ferry",
            "--database-url",
            "postgres://ferry:hunter2-secret@db.internal:5432/ferry",
        ]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("postgres://ferry:***@db.internal:5432/ferry"));
    }

    #[test]
    fn defaults_use_the_data_folder() {
        let config = Config::parse_from(["ferry", "--data-dir", "/srv/ferry"]);
        assert_eq!(config.database_url(), "sqlite:///srv/ferry/ferry.db");
        assert_eq!(
            config.secret_key_file(),
            PathBuf::from("/srv/ferry/secret.key")
        );
        assert!(!config.secure_cookies());
    }
}
