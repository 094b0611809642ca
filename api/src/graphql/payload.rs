//! Mutation answers a form can use: the changed object beside
//! `userErrors`, each naming the input field it is about. What the person
//! filling in the form can fix (a field rule, a slot just taken, a notice
//! that changed, a deadline passed, something not found) is a user error;
//! what they cannot (who they are, what they may do, how fast they may ask,
//! a failure of kluis) stays a top-level error with its `extensions.code`.

use async_graphql::{Enum, ErrorExtensionValues, SimpleObject, Value};

use super::errors::Code;

/// What went wrong with one part of a submitted form.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct UserError {
    /// The path to the input field at fault, from the mutation's argument
    /// (`["input", "guest", "email"]`); empty when the whole submit is at
    /// fault (the slot was just taken, a deadline passed).
    pub field: Vec<String>,
    pub code: UserErrorCode,
    /// A sentence for the person at the form, in English; front-ends
    /// translate by `code`.
    pub message: String,
}

/// Why a submit was not carried out. Stable: front-ends switch on it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserErrorCode {
    /// The value breaks a rule (format, length, range, a field the venue
    /// requires or does not collect).
    Invalid,
    /// What the input names does not exist, or is not the caller's to use.
    NotFound,
    /// The time asked for was taken meanwhile; the payload offers the
    /// nearest free ones where it can.
    SlotTaken,
    /// The privacy notice the form showed is no longer the current one; the
    /// payload carries the current one.
    NoticeChanged,
    /// The venue's deadline for this change has passed.
    DeadlinePassed,
    /// The request contradicts the state it meets (paid twice, closed
    /// already, the same idempotency key with a different request).
    Conflict,
}

impl UserError {
    pub fn new(field: &[&str], code: UserErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: field.iter().map(|part| (*part).to_owned()).collect(),
            code,
            message: message.into(),
        }
    }

    /// Reads a field name as the domain writes it (`guest.email`) into a
    /// path under the mutation's `input` argument.
    pub fn at_input(field: &str, code: UserErrorCode, message: impl Into<String>) -> Self {
        let mut path = vec!["input".to_owned()];
        path.extend(
            field
                .split('.')
                .filter(|part| !part.is_empty())
                .map(camel_case),
        );
        Self {
            field: path,
            code,
            message: message.into(),
        }
    }
}

/// `notice_version` → `noticeVersion`, as the schema spells fields.
fn camel_case(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut upper = false;
    for character in part.chars() {
        if character == '_' {
            upper = true;
        } else if upper {
            out.extend(character.to_uppercase());
            upper = false;
        } else {
            out.push(character);
        }
    }
    out
}

fn code_of(extensions: Option<&ErrorExtensionValues>) -> Option<String> {
    match extensions?.get("code")? {
        Value::String(code) => Some(code.clone()),
        _ => None,
    }
}

fn field_of(extensions: Option<&ErrorExtensionValues>) -> Option<String> {
    match extensions?.get("field")? {
        Value::String(field) => Some(field.clone()),
        _ => None,
    }
}

/// Sorts an error into what the form shows (`Ok`) and what stays a
/// top-level error (`Err`: authentication, authorization, rate limits,
/// internal failures).
pub fn classify(error: async_graphql::Error) -> async_graphql::Result<UserError> {
    let extensions = error.extensions.as_ref();
    let code = match code_of(extensions).as_deref() {
        Some(code) if code == Code::BadUserInput.as_str() => {
            match code_of_kind(extensions).as_deref() {
                Some("NOTICE_CHANGED") => UserErrorCode::NoticeChanged,
                Some("DEADLINE_PASSED") => UserErrorCode::DeadlinePassed,
                _ => UserErrorCode::Invalid,
            }
        }
        Some(code) if code == Code::NotFound.as_str() => UserErrorCode::NotFound,
        Some(code) if code == Code::SlotTaken.as_str() => UserErrorCode::SlotTaken,
        Some(code) if code == Code::Conflict.as_str() => {
            match code_of_kind(extensions).as_deref() {
                Some("DEADLINE_PASSED") => UserErrorCode::DeadlinePassed,
                _ => UserErrorCode::Conflict,
            }
        }
        _ => return Err(error),
    };
    let user_error = match field_of(extensions) {
        Some(field) => UserError::at_input(&field, code, error.message.clone()),
        None => UserError::new(&[], code, error.message.clone()),
    };
    Ok(user_error)
}

/// A finer reason a resolver may attach beside the code
/// (`extensions.reason`), for the user errors that have their own code.
fn code_of_kind(extensions: Option<&ErrorExtensionValues>) -> Option<String> {
    match extensions?.get("reason")? {
        Value::String(reason) => Some(reason.clone()),
        _ => None,
    }
}

/// Runs a mutation's work and sorts its failure: the value and no user
/// errors, or no value and the user errors; top-level errors pass through.
pub fn outcome<T>(
    result: async_graphql::Result<T>,
) -> async_graphql::Result<(Option<T>, Vec<UserError>)> {
    match result {
        Ok(value) => Ok((Some(value), Vec::new())),
        Err(error) => Ok((None, vec![classify(error)?])),
    }
}

/// Collects every field error of one submit, so that a form shows them all
/// at once instead of one per try.
#[derive(Default)]
pub struct Checks {
    errors: Vec<UserError>,
    /// The first error that is not the form's to fix.
    fatal: Option<async_graphql::Error>,
}

impl Checks {
    /// Keeps the value, or notes why it was refused.
    pub fn take<T>(&mut self, result: async_graphql::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                match classify(error) {
                    Ok(user_error) => self.errors.push(user_error),
                    Err(error) => {
                        self.fatal.get_or_insert(error);
                    }
                }
                None
            }
        }
    }

    /// Whether every check so far held.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.fatal.is_none()
    }

    pub fn push(&mut self, error: UserError) {
        self.errors.push(error);
    }

    /// The user errors collected (empty when every check held), or the
    /// first top-level error met.
    pub fn finish(self) -> async_graphql::Result<Vec<UserError>> {
        match self.fatal {
            Some(error) => Err(error),
            None => Ok(self.errors),
        }
    }
}

/// Declares a mutation's payload: the named objects (null when the
/// mutation did not go through) and `userErrors`.
#[macro_export]
macro_rules! payload {
    ($(#[$meta:meta])* $name:ident { $($(#[$field_meta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(async_graphql::SimpleObject, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: Option<$ty>,)*
            /// What to fix before submitting again; empty when it went
            /// through.
            pub user_errors: Vec<$crate::graphql::payload::UserError>,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::errors::{api_error, domain_error};
    use domain::DomainError;

    #[test]
    fn field_errors_point_into_the_input() {
        let error = domain_error(&DomainError::invalid("guest.email", "not an address"));
        let user_error = classify(error).expect("a user error");
        assert_eq!(user_error.field, ["input", "guest", "email"]);
        assert_eq!(user_error.code, UserErrorCode::Invalid);
    }

    #[test]
    fn snake_case_fields_read_as_the_schema_spells_them() {
        let error = domain_error(&DomainError::invalid("notice_version", "stale"));
        let user_error = classify(error).expect("a user error");
        assert_eq!(user_error.field, ["input", "noticeVersion"]);
    }

    #[test]
    fn who_and_how_fast_stay_top_level() {
        for code in [
            Code::Unauthenticated,
            Code::Forbidden,
            Code::RateLimited,
            Code::Internal,
        ] {
            assert!(classify(api_error(code, "no")).is_err(), "{code:?}");
        }
    }

    #[test]
    fn outcomes_keep_their_codes() {
        let taken = classify(domain_error(&DomainError::SlotTaken)).expect("user error");
        assert_eq!(taken.code, UserErrorCode::SlotTaken);
        assert!(taken.field.is_empty());
        let missing = classify(domain_error(&DomainError::not_found("reservation")));
        assert_eq!(missing.expect("user error").code, UserErrorCode::NotFound);
        let conflict = classify(domain_error(&DomainError::Conflict("paid".into())));
        assert_eq!(conflict.expect("user error").code, UserErrorCode::Conflict);
    }

    #[test]
    fn checks_collect_every_field_at_fault() {
        let mut checks = Checks::default();
        let name: Option<u8> = checks.take(Err(domain_error(&DomainError::invalid(
            "guest.name",
            "empty",
        ))));
        let phone: Option<u8> = checks.take(Err(domain_error(&DomainError::invalid(
            "guest.phone",
            "not a number",
        ))));
        assert!(name.is_none() && phone.is_none());
        let errors = checks.finish().expect("no top-level error");
        assert_eq!(errors.len(), 2);
        let mut checks = Checks::default();
        let _: Option<u8> = checks.take(Err(api_error(Code::Forbidden, "no")));
        assert!(checks.finish().is_err(), "authorization stays top-level");
    }
}
