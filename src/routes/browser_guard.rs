//! What a web page in someone's browser must not be able to do to this API:
//! write cross-site (CSRF), or reach a keyless service on loopback through a
//! DNS name that resolves to 127.0.0.1 (DNS rebinding). Applied to every
//! request that needs the API key, before the key is checked.

use actix_web::http::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};

use super::Problem;

const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Refuses a request a browser sent on behalf of another site, and a body that
/// is not JSON (a cross-site form or `text/plain` POST needs no CORS preflight).
pub fn check_same_site(headers: &HeaderMap) -> Result<(), Problem> {
    let fetch_site = headers.get(SEC_FETCH_SITE).map(|v| v.to_str().unwrap_or("cross-site"));
    if fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return Err(Problem::forbidden("cross-site requests may not write (Sec-Fetch-Site)"));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, rest)| rest);
        if origin_host.is_none() || origin_host != host {
            return Err(Problem::forbidden("cross-origin requests may not write (Origin differs from Host)"));
        }
    }
    if has_body(headers) && !is_json(headers) {
        return Err(Problem::unsupported_media_type("a request body must be sent as application/json"));
    }
    Ok(())
}

/// Without an API key only loopback names may write: a page on another name
/// that resolves here (DNS rebinding) sends that name as `Host`.
pub fn check_loopback_host(headers: &HeaderMap) -> Result<(), Problem> {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if is_loopback_name(host) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "without BLOG_API_KEY only requests to localhost, 127.0.0.1 or [::1] may write",
        ))
    }
}

fn is_loopback_name(host: &str) -> bool {
    // `[::1]:8080`, `[::1]`, `localhost:8080`, `127.0.0.1`.
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(TRANSFER_ENCODING)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(mime) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::headers;

    #[test]
    fn only_loopback_names_pass_without_a_key() {
        for ok in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.1.2.3", "LOCALHOST"] {
            assert!(check_loopback_host(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in ["evil.example:8080", "localhost.evil.example", "10.0.0.1:8080", "", "[::2]:80"] {
            assert_eq!(check_loopback_host(&headers(&[("host", bad)])).unwrap_err().status, 403, "{bad}");
        }
    }

    #[test]
    fn cross_site_browser_requests_are_refused() {
        assert!(check_same_site(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_same_site(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(check_same_site(&headers(&[("host", "localhost:8080"), ("origin", "http://evil.example")])).is_err());
        assert!(check_same_site(&headers(&[("host", "localhost:8080"), ("origin", "null")])).is_err());
        assert!(check_same_site(&headers(&[("host", "localhost:8080"), ("origin", "http://localhost:8080")])).is_ok());
        assert!(check_same_site(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(check_same_site(&headers(&[])).is_ok(), "curl and services send neither");
    }

    #[test]
    fn a_body_must_be_json() {
        let plain = headers(&[("content-type", "text/plain"), ("content-length", "2")]);
        assert_eq!(check_same_site(&plain).unwrap_err().status, 415);
        assert!(check_same_site(&headers(&[("content-type", "application/json; charset=utf-8"), ("content-length", "2")])).is_ok());
        assert!(check_same_site(&headers(&[("content-length", "0")])).is_ok(), "no body needs no type");
    }
}
