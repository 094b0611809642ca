//! Services: what a venue offers to book ("lunch", "dinner", "consult",
//! "treatment"), each with its own length, buffer, party sizes, the
//! resources that can deliver it and its own payment rule.
//!
//! A venue without services books as it always did: its own booking
//! duration, buffer and payment rule, any resource that seats the party. A
//! venue with services takes bookings for one of them only, so a booking
//! there names its service.

use std::fmt;

use crate::availability::Shape;
use crate::payments::PaymentRule;
use crate::{DomainError, Minutes, PartySize, ResourceId, Slug, VenueId};

crate::ids::random_id_pub!(ServiceId, "service");

/// One thing a venue offers to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: ServiceId,
    pub venue_id: VenueId,
    pub slug: Slug,
    pub name: String,
    /// How long a booking of it lasts.
    pub duration: Minutes,
    /// How long its resource stays blocked afterwards.
    pub buffer: Minutes,
    pub min_party: u32,
    pub max_party: u32,
    /// The resources that deliver it; empty: every resource of the venue.
    pub resources: Vec<ResourceId>,
    /// Its own payment rule; `None`: the venue's.
    pub payment: Option<PaymentRule>,
    /// Retired services keep their past bookings but take no new ones.
    pub active: bool,
}

/// How many services one venue may offer: a bound on one save or file.
pub const MAX_PER_VENUE: usize = 50;

impl Service {
    /// Its length and buffer, which replace the venue's for its bookings.
    pub fn shape(&self) -> Shape {
        Shape {
            duration: self.duration,
            buffer: self.buffer,
        }
    }

    /// Whether this resource delivers it.
    pub fn delivered_by(&self, resource: ResourceId) -> bool {
        self.resources.is_empty() || self.resources.contains(&resource)
    }

    /// Refuses a party outside its range.
    pub fn check_party(&self, party: PartySize) -> Result<(), DomainError> {
        if (self.min_party..=self.max_party).contains(&party.get()) {
            return Ok(());
        }
        Err(DomainError::invalid(
            "partySize",
            format!(
                "{} is booked for {} to {} people",
                self.name, self.min_party, self.max_party
            ),
        ))
    }

    /// The payment rule for its bookings.
    pub fn payment_rule(service: Option<&Self>, venue: &crate::Venue) -> PaymentRule {
        service
            .and_then(|s| s.payment)
            .unwrap_or(venue.payments.rule)
    }
}

impl crate::Venue {
    /// The payment rule of a booking of this service (or of none): the
    /// service's own, else the venue's. A service no longer listed is
    /// still known for the bookings made with it.
    pub fn payment_rule_for(&self, service: Option<ServiceId>) -> PaymentRule {
        Service::payment_rule(
            service.and_then(|id| self.services.iter().find(|s| s.id == id)),
            self,
        )
    }

    /// The service a booking or availability question names: one this
    /// venue offers now. A venue that offers services books nothing else;
    /// one without takes no service.
    pub fn service_for(&self, id: Option<ServiceId>) -> Result<Option<&Service>, DomainError> {
        let mut offered = self.services.iter().filter(|s| s.active);
        match id {
            // Another venue's service, a retired one or none at all: the
            // same answer, so ids of other venues cannot be probed.
            Some(id) => offered
                .find(|s| s.id == id)
                .map(Some)
                .ok_or(DomainError::not_found("service")),
            None if offered.next().is_some() => Err(DomainError::invalid(
                "serviceId",
                "this venue books by service: choose one of its services",
            )),
            None => Ok(None),
        }
    }
}

/// Checks a service's numbers against the venue: a duration of at least a
/// minute, the party range inside the venue's, and at least one of its
/// resources seating its smallest party (`capacities`: those of its
/// active resources, or of all the venue's when it names none). Answers the
/// name of the part at fault and why.
pub fn check(
    duration: u32,
    buffer: u32,
    min_party: u32,
    max_party: u32,
    venue_max_party: u32,
    capacities: &[u32],
) -> Result<(), (&'static str, String)> {
    let longest = crate::BookingRules::MAX_DURATION_MINUTES;
    if !(1..=longest).contains(&duration) {
        return Err((
            "duration",
            format!("a service lasts 1 to {longest} minutes"),
        ));
    }
    if buffer > longest {
        return Err(("buffer", format!("a buffer is at most {longest} minutes")));
    }
    if min_party < 1 || min_party > max_party {
        return Err((
            "min_party",
            "the smallest party is at least 1 and at most the largest".to_owned(),
        ));
    }
    if max_party > venue_max_party {
        return Err((
            "max_party",
            format!("the venue takes parties of at most {venue_max_party}"),
        ));
    }
    if !capacities.iter().any(|capacity| *capacity >= min_party) {
        return Err((
            "resources",
            format!("no resource of this service seats a party of {min_party}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Resource, ResourceKind};

    fn resource(capacity: u32) -> Resource {
        Resource {
            id: ResourceId::new_random(),
            venue_id: VenueId::new_random(),
            slug: Slug::parse("r").expect("valid slug"),
            name: "R".to_owned(),
            kind: ResourceKind::Practitioner,
            capacity,
            active: true,
            hours: None,
        }
    }

    #[test]
    fn a_service_needs_a_length_a_sane_range_and_someone_to_deliver_it() {
        let ok = [resource(1).capacity];
        assert_eq!(check(15, 0, 1, 1, 8, &ok), Ok(()));
        assert_eq!(check(0, 0, 1, 1, 8, &ok).map_err(|e| e.0), Err("duration"));
        assert_eq!(
            check(15, 0, 2, 1, 8, &ok).map_err(|e| e.0),
            Err("min_party")
        );
        assert_eq!(
            check(15, 0, 1, 9, 8, &ok).map_err(|e| e.0),
            Err("max_party")
        );
        assert_eq!(
            check(15, 0, 2, 2, 8, &ok).map_err(|e| e.0),
            Err("resources")
        );
        assert_eq!(
            check(15, 0, 1, 1, 8, &[]).map_err(|e| e.0),
            Err("resources")
        );
    }

    #[test]
    fn no_named_resources_means_every_resource() {
        let service = Service {
            id: ServiceId::new_random(),
            venue_id: VenueId::new_random(),
            slug: Slug::parse("lunch").expect("valid"),
            name: "Lunch".to_owned(),
            duration: Minutes::new_unchecked(90),
            buffer: Minutes::new_unchecked(0),
            min_party: 1,
            max_party: 6,
            resources: Vec::new(),
            payment: None,
            active: true,
        };
        assert!(service.delivered_by(ResourceId::new_random()));
        let one = ResourceId::new_random();
        let named = Service {
            resources: vec![one],
            ..service.clone()
        };
        assert!(named.delivered_by(one));
        assert!(!named.delivered_by(ResourceId::new_random()));
        assert!(
            service
                .check_party(PartySize::parse(7).expect("valid"))
                .is_err()
        );
    }
}
