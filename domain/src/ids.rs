//! Identifiers are random (UUID v4), never sequential, so that knowing one
//! reservation tells nothing about the others and ids cannot be enumerated.

use std::fmt;

use crate::DomainError;

macro_rules! random_id {
    ($name:ident, $entity:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// Accepts only the canonical hyphenated form, so that one id has one
            /// spelling in URLs, logs and the database.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                if raw.len() != 36 {
                    return Err(DomainError::not_found($entity));
                }
                uuid::Uuid::try_parse(raw)
                    .map(|id| Self(id))
                    .map_err(|_| DomainError::not_found($entity))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

random_id!(VenueId, "venue");
random_id!(ResourceId, "resource");
random_id!(ReservationId, "reservation");
random_id!(GuestId, "guest");
random_id!(StaffId, "staff account");

pub(crate) use random_id as random_id_pub;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_id_round_trips_through_its_text_form() {
        let id = ReservationId::new_random();
        assert_eq!(ReservationId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn two_generated_ids_differ() {
        assert_ne!(VenueId::new_random(), VenueId::new_random());
    }

    #[test]
    fn a_malformed_id_reads_as_not_found_so_ids_cannot_be_probed() {
        for raw in ["", "1", "not-a-uuid", "00000000000000000000000000000000"] {
            assert_eq!(
                ReservationId::parse(raw),
                Err(DomainError::not_found("reservation"))
            );
        }
    }
}
