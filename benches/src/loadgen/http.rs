//! The WHIP/WHEP HTTP exchange (RFC 9725 and the WHEP draft), reduced to what a load
//! generator needs: POST the offer, take the `201` answer and the `Location` of the
//! session, DELETE it at the end. Non-trickle: offers already carry our candidate.

use reqwest::{StatusCode, Url, header};

/// A WHIP or WHEP session the server created.
#[derive(Debug, Clone)]
pub struct Session {
    /// Absolute URL of the session resource (`Location`, resolved against the request).
    pub location: Option<Url>,
    /// The SDP answer.
    pub answer: String,
    /// The token used, sent again on DELETE.
    pub token: Option<String>,
}

/// An HTTP step failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL (after filling the template) is not a URL.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No connection, timeout, broken body.
    #[error("{method} {url}: {source}")]
    Transport {
        /// GET, POST, DELETE.
        method: &'static str,
        /// The URL.
        url: String,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        /// POST or DELETE.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// Start of the body.
        body: String,
    },
}

/// Fills `{stream}` (and `{room}`) in a URL template.
pub fn fill(template: &str, stream: &str, room: &str) -> String {
    template.replace("{stream}", stream).replace("{room}", room)
}

/// The HTTP client every peer shares (no proxies: the server is on loopback or in a
/// private namespace).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(15))
        .build()
}

/// POSTs `offer` to `url`; expects `201 Created` (any 2xx is taken) with an SDP answer.
pub async fn post_offer(
    http: &reqwest::Client,
    url: &str,
    token: Option<String>,
    offer: &str,
) -> Result<Session, HttpError> {
    let parsed = Url::parse(url).map_err(|e| HttpError::Url {
        url: url.into(),
        reason: e.to_string(),
    })?;
    let mut req = http
        .post(parsed.clone())
        .header(header::CONTENT_TYPE, "application/sdp")
        .body(offer.to_owned());
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    let transport = |source| HttpError::Transport {
        method: "POST",
        url: url.into(),
        source,
    };
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| parsed.join(l).ok());
    let body = resp.text().await.map_err(transport)?;
    if !status.is_success() || body.trim().is_empty() {
        return Err(HttpError::Status {
            method: "POST",
            url: url.into(),
            status,
            body: body.chars().take(300).collect(),
        });
    }
    Ok(Session {
        location,
        answer: body,
        token,
    })
}

/// DELETEs a session (nothing to do if the server gave no `Location`).
pub async fn delete(http: &reqwest::Client, s: &Session) -> Result<(), HttpError> {
    let Some(url) = &s.location else {
        return Ok(());
    };
    let mut req = http.delete(url.clone());
    if let Some(t) = &s.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|source| HttpError::Transport {
        method: "DELETE",
        url: url.to_string(),
        source,
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(HttpError::Status {
        method: "DELETE",
        url: url.to_string(),
        status,
        body: body.chars().take(300).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            fill("http://h/whep/v1?participant={stream}", "pub3", "r"),
            "http://h/whep/v1?participant=pub3"
        );
        assert_eq!(
            fill("http://h/whip/{room}/{stream}", "pub0", "bench"),
            "http://h/whip/bench/pub0"
        );
        assert_eq!(fill("http://h/whip/v1", "pub0", "r"), "http://h/whip/v1");
    }

    #[test]
    fn relative_locations_resolve_against_the_request() {
        let base = Url::parse("http://10.0.0.1:7880/whep/v1?participant=pub0").expect("url");
        assert_eq!(
            base.join("/whep/v1/abc").expect("join").as_str(),
            "http://10.0.0.1:7880/whep/v1/abc"
        );
    }
}
