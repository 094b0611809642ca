use std::borrow::Cow;

/// What a business rule can say no with. Every message is safe to show to the
/// caller: it names fields and rules, never personal values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidInput {
        field: Cow<'static, str>,
        reason: String,
    },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("the requested time is no longer available")]
    SlotTaken,
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(entity: &'static str) -> Self {
        Self::NotFound { entity }
    }
}
