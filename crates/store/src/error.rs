//! Store errors, and the password-free form of a database URL that they show.
//!
//! Every error that can reach an operator names the database it concerns, so a wrong
//! `database.url` is obvious from one log line; the password never appears in it.

use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres://` / `postgresql://`.
    #[error("unsupported database url {url}: expected sqlite://... or postgres://...")]
    UnsupportedUrl { url: String },
    /// The URL could not be parsed by the driver.
    #[error("invalid database url {url}: {source}")]
    InvalidUrl {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be opened or reached within the connect timeout.
    #[error("cannot open database {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    /// No connection could be made within the connect timeout.
    #[error("cannot open database {url}: no connection within {timeout:?}")]
    ConnectTimeout { url: String, timeout: Duration },
    /// The embedded schema migrations failed.
    #[error("database migration failed for {url}: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error on {url}: {source}")]
    Query {
        url: String,
        #[source]
        source: sqlx::Error,
    },
}

/// `url` with the password (userinfo or `password=` query parameter) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = auth_start..auth_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_passwords() {
        assert_eq!(
            redact_url("postgres://sw:s3cr@t@db.example:5432/sw"),
            "postgres://sw:***@db.example:5432/sw"
        );
        assert_eq!(redact_url("postgres://sw@db/sw"), "postgres://sw@db/sw");
        assert_eq!(
            redact_url("postgres://db/sw?user=a&password=b&sslmode=disable"),
            "postgres://db/sw?user=a&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("sqlite://./switchyard.db?mode=rwc"),
            "sqlite://./switchyard.db?mode=rwc"
        );
    }
}
