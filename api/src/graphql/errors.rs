//! Errors as the client sees them: a human message and a stable
//! `extensions.code`. Internal failures are logged with their whole cause
//! chain and answered with an opaque reference, never SQL or data.

use async_graphql::{Error, ErrorExtensions};
use domain::DomainError;
use store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    SlotTaken,
    Conflict,
    RateLimited,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::SlotTaken => "SLOT_TAKEN",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }
}

pub fn api_error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, extensions| extensions.set("code", code.as_str()))
}

pub fn domain_error(error: &DomainError) -> Error {
    let code = match error {
        DomainError::InvalidInput { .. } => Code::BadUserInput,
        DomainError::NotFound { .. } => Code::NotFound,
        DomainError::SlotTaken => Code::SlotTaken,
        DomainError::Conflict(_) => Code::Conflict,
    };
    let error_out = api_error(code, error.to_string());
    match error {
        DomainError::InvalidInput { field, .. } => {
            let field = field.to_string();
            error_out.extend_with(move |_, extensions| extensions.set("field", field.as_str()))
        }
        _ => error_out,
    }
}

/// Logs an internal failure and returns what the client may see.
pub fn internal_error(error: &(dyn std::error::Error + 'static)) -> Error {
    let reference = uuid::Uuid::new_v4();
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(%reference, error = %chain, "request failed");
    api_error(
        Code::Internal,
        format!("internal error (reference {reference})"),
    )
}

/// Marks an integrity failure for the HTTP layer, which raises the alert
/// with the caller's identity and removes the mark before answering.
pub const INTEGRITY_MARK: &str = "kluisIntegrity";

pub fn store_error(error: StoreError) -> Error {
    match error {
        StoreError::Domain(domain) => domain_error(&domain),
        StoreError::Integrity(_) => {
            internal_error(&error).extend_with(|_, extensions| extensions.set(INTEGRITY_MARK, true))
        }
        other => internal_error(&other),
    }
}

/// What a use case's refusal or failure looks like to the client.
pub fn app_error(error: app::Error) -> Error {
    match error {
        app::Error::Domain(domain) => domain_error(&domain),
        app::Error::Store(store) => store_error(store),
        app::Error::Refused(message) => api_error(Code::BadUserInput, message),
        app::Error::DeadlinePassed(message) => api_error(Code::BadUserInput, message)
            .extend_with(|_, extensions| extensions.set("reason", "DEADLINE_PASSED")),
        app::Error::NoticeChanged(message) => {
            api_error(Code::BadUserInput, message).extend_with(|_, extensions| {
                extensions.set("reason", "NOTICE_CHANGED");
                extensions.set("field", "noticeVersion");
            })
        }
        app::Error::Unauthenticated(message) => api_error(Code::Unauthenticated, message),
        app::Error::Forbidden(message) => api_error(Code::Forbidden, message),
        app::Error::RateLimited(message) => api_error(Code::RateLimited, message),
        other => internal_error(&other),
    }
}

/// Removes the integrity marks from an answer; returns how many there were.
pub fn take_integrity_marks(response: &mut async_graphql::Response) -> i64 {
    let mut marked = 0;
    for error in &mut response.errors {
        if let Some(extensions) = error.extensions.as_mut()
            && extensions.get(INTEGRITY_MARK).is_some()
        {
            extensions.unset(INTEGRITY_MARK);
            marked += 1;
        }
    }
    marked
}

/// `?`-friendly conversion for results from the store.
pub trait OrGraphqlError<T> {
    fn or_gql(self) -> async_graphql::Result<T>;
}

impl<T> OrGraphqlError<T> for Result<T, StoreError> {
    fn or_gql(self) -> async_graphql::Result<T> {
        self.map_err(store_error)
    }
}

impl<T> OrGraphqlError<T> for Result<T, app::Error> {
    fn or_gql(self) -> async_graphql::Result<T> {
        self.map_err(app_error)
    }
}

impl<T> OrGraphqlError<T> for Result<T, DomainError> {
    fn or_gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| domain_error(&e))
    }
}

/// Gives every error that left the executor without a code one: those are
/// the executor's own parse, validation and limit errors, all caused by the
/// request.
pub fn ensure_codes(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", Code::BadUserInput.as_str());
        }
    }
}
