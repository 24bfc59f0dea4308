//! The API key that writes and admin calls need. Taken as an extractor, so a
//! handler cannot forget it: put `_: RequireApiKey` first in its arguments and
//! the key (and the browser guard) is checked before the body is even read.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpRequest};
use secrecy::{ExposeSecret, SecretString};

use super::browser_guard::{check_loopback_host, check_same_site};
use super::{AppState, Problem};

const X_API_KEY: &str = "x-api-key";

/// Proof that the request carried the configured API key (or that none is configured).
#[derive(Debug, Clone, Copy)]
pub struct RequireApiKey;

impl FromRequest for RequireApiKey {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => guard_writer(state.api_key.as_ref(), req.headers()).map(|()| RequireApiKey),
            // Without the state we cannot know the key: fail closed.
            None => Err(Problem::internal(&MissingState)),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("AppState is not registered as app data; cannot check the API key")]
struct MissingState;

/// The browser guard, then the key; without a configured key, only loopback `Host` names.
fn guard_writer(expected: Option<&SecretString>, headers: &HeaderMap) -> Result<(), Problem> {
    check_same_site(headers)?;
    if expected.is_none() {
        check_loopback_host(headers)?;
    }
    authorize(expected, headers)
}

/// Whether the request carries the configured key (always true when none is configured).
/// For answers that show more to the key's holder, such as `/actors`' last errors.
pub fn is_authorized(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|state| authorize(state.api_key.as_ref(), req.headers()).is_ok())
}

/// Passes when no key is configured, or when `Authorization: Bearer <key>` or
/// `X-API-Key: <key>` carries it. An empty or blank header is no key at all.
pub fn authorize(expected: Option<&SecretString>, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = expected else { return Ok(()) };
    let expected = expected.expose_secret().as_bytes();
    let bearer = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let header_key = headers.get(X_API_KEY).and_then(|v| v.to_str().ok()).map(str::trim);
    let presented: Vec<&str> = bearer.into_iter().chain(header_key).filter(|key| !key.is_empty()).collect();
    if presented.is_empty() {
        return Err(Problem::unauthorized("an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"));
    }
    // Every candidate is compared, so timing does not reveal which header matched.
    let ok = presented.iter().fold(false, |ok, key| ok | constant_time_eq(key.as_bytes(), expected));
    if ok {
        Ok(())
    } else {
        Err(Problem::unauthorized("the API key is not valid"))
    }
}

/// Compares without stopping at the first difference, so response time does
/// not reveal how much of a guess was right. The length is not secret enough to hide.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::testing::headers;

    #[test]
    fn no_configured_key_lets_everyone_in() {
        assert!(authorize(None, &headers(&[])).is_ok());
    }

    #[test]
    fn either_header_carries_the_key() {
        let key = SecretString::from("s3cret");
        assert!(authorize(Some(&key), &headers(&[("authorization", "Bearer s3cret")])).is_ok());
        assert!(authorize(Some(&key), &headers(&[("authorization", "bearer  s3cret ")])).is_ok());
        assert!(authorize(Some(&key), &headers(&[("x-api-key", "s3cret")])).is_ok());
    }

    #[test]
    fn an_empty_header_never_authenticates() {
        let key = SecretString::from("s3cret");
        for h in [vec![("x-api-key", "")], vec![("x-api-key", "  ")], vec![("authorization", "Bearer ")]] {
            assert_eq!(authorize(Some(&key), &headers(&h)).unwrap_err().status, 401, "{h:?}");
        }
    }

    #[test]
    fn keyless_writes_need_a_loopback_host() {
        assert!(guard_writer(None, &headers(&[("host", "127.0.0.1:8080")])).is_ok());
        assert_eq!(guard_writer(None, &headers(&[("host", "rebind.evil.example:8080")])).unwrap_err().status, 403);
        let key = SecretString::from("s3cret");
        let keyed = headers(&[("host", "blog.example"), ("x-api-key", "s3cret")]);
        assert!(guard_writer(Some(&key), &keyed).is_ok(), "with a key any name may be served");
    }

    #[test]
    fn a_missing_or_wrong_key_is_401() {
        let key = SecretString::from("s3cret");
        for h in [vec![], vec![("authorization", "Bearer s3cre")], vec![("x-api-key", "s3cretx")], vec![("authorization", "Basic s3cret")]] {
            let err = authorize(Some(&key), &headers(&h)).unwrap_err();
            assert_eq!(err.status, 401, "{h:?}");
        }
    }
}
