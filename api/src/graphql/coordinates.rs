//! Every permission coordinate the GraphQL layer checks: the objects of
//! `policies/policy.csv` (`Type.field`). Guards take a [`Coordinate`], so a
//! misspelt one does not compile, and [`ALL`] lists them for the tests that
//! hold them against the schema and `policies/README.md`.

/// A schema coordinate (`Type.field`) the access policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Coordinate(&'static str);

impl Coordinate {
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The field's name, after the type's.
    pub fn field(self) -> &'static str {
        self.0.rsplit('.').next().unwrap_or(self.0)
    }
}

impl std::fmt::Display for Coordinate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub const CLOSURE_REASON: Coordinate = Coordinate("Closure.reason");
pub const MUTATION_ACKNOWLEDGE_ALERT: Coordinate = Coordinate("Mutation.acknowledgeAlert");
pub const MUTATION_ASSIGN_ROLE: Coordinate = Coordinate("Mutation.assignRole");
pub const MUTATION_CANCEL_RESERVATION: Coordinate = Coordinate("Mutation.cancelReservation");
pub const MUTATION_CHARGE_NO_SHOW_FEE: Coordinate = Coordinate("Mutation.chargeNoShowFee");
pub const MUTATION_CLOSE_ONSITE_PAYMENT: Coordinate = Coordinate("Mutation.closeOnsitePayment");
pub const MUTATION_COMPLETE_PAYMENT: Coordinate = Coordinate("Mutation.completePayment");
pub const MUTATION_CORRECT_GUEST_DATA: Coordinate = Coordinate("Mutation.correctGuestData");
pub const MUTATION_CORRECT_MY_DATA: Coordinate = Coordinate("Mutation.correctMyData");
pub const MUTATION_CREATE_API_KEY: Coordinate = Coordinate("Mutation.createApiKey");
pub const MUTATION_CREATE_RESERVATION: Coordinate = Coordinate("Mutation.createReservation");
pub const MUTATION_CREATE_STAFF: Coordinate = Coordinate("Mutation.createStaff");
pub const MUTATION_ERASE_GUEST_DATA: Coordinate = Coordinate("Mutation.eraseGuestData");
pub const MUTATION_ERASE_MY_DATA: Coordinate = Coordinate("Mutation.eraseMyData");
pub const MUTATION_EXPORT_GUEST_DATA: Coordinate = Coordinate("Mutation.exportGuestData");
pub const MUTATION_EXPORT_MY_DATA: Coordinate = Coordinate("Mutation.exportMyData");
pub const MUTATION_GIVE_CONSENT: Coordinate = Coordinate("Mutation.giveConsent");
pub const MUTATION_LIFT_HOLD: Coordinate = Coordinate("Mutation.liftHold");
pub const MUTATION_LOGIN: Coordinate = Coordinate("Mutation.login");
pub const MUTATION_LOGOUT: Coordinate = Coordinate("Mutation.logout");
pub const MUTATION_MODIFY_RESERVATION: Coordinate = Coordinate("Mutation.modifyReservation");
pub const MUTATION_NOTIFY_BREACH: Coordinate = Coordinate("Mutation.notifyBreach");
pub const MUTATION_PUBLISH_PRIVACY_NOTICE: Coordinate = Coordinate("Mutation.publishPrivacyNotice");
pub const MUTATION_RECORD_BREACH: Coordinate = Coordinate("Mutation.recordBreach");
pub const MUTATION_RECORD_WALK_IN: Coordinate = Coordinate("Mutation.recordWalkIn");
pub const MUTATION_REDEEM_ACCESS_CODE: Coordinate = Coordinate("Mutation.redeemAccessCode");
pub const MUTATION_REFUND_PAYMENT: Coordinate = Coordinate("Mutation.refundPayment");
pub const MUTATION_REISSUE_MANAGE_TOKEN: Coordinate = Coordinate("Mutation.reissueManageToken");
pub const MUTATION_REMOVE_ROLE: Coordinate = Coordinate("Mutation.removeRole");
pub const MUTATION_REMOVE_VENUE_WEBHOOK: Coordinate = Coordinate("Mutation.removeVenueWebhook");
pub const MUTATION_REPORT_BREACH_TO_AUTHORITY: Coordinate =
    Coordinate("Mutation.reportBreachToAuthority");
pub const MUTATION_REQUEST_ACCESS_CODE: Coordinate = Coordinate("Mutation.requestAccessCode");
pub const MUTATION_REVOKE_API_KEY: Coordinate = Coordinate("Mutation.revokeApiKey");
pub const MUTATION_SAVE_VENUE: Coordinate = Coordinate("Mutation.saveVenue");
pub const MUTATION_SET_RESERVATION_STATUS: Coordinate = Coordinate("Mutation.setReservationStatus");
pub const MUTATION_SET_STAFF_ACTIVE: Coordinate = Coordinate("Mutation.setStaffActive");
pub const MUTATION_SET_VENUE_WEBHOOK: Coordinate = Coordinate("Mutation.setVenueWebhook");
pub const MUTATION_START_PAYMENT: Coordinate = Coordinate("Mutation.startPayment");
pub const MUTATION_UNLOCK_LOGIN: Coordinate = Coordinate("Mutation.unlockLogin");
pub const MUTATION_WITHDRAW_CONSENT: Coordinate = Coordinate("Mutation.withdrawConsent");
pub const PAYMENT_CARD_BRAND: Coordinate = Coordinate("Payment.cardBrand");
pub const PAYMENT_CARD_LAST4: Coordinate = Coordinate("Payment.cardLast4");
pub const QUERY_ALERTS: Coordinate = Coordinate("Query.alerts");
pub const QUERY_API_KEYS: Coordinate = Coordinate("Query.apiKeys");
pub const QUERY_AUDIT_LOG: Coordinate = Coordinate("Query.auditLog");
pub const QUERY_BREACHES: Coordinate = Coordinate("Query.breaches");
pub const QUERY_GUEST_RESERVATIONS: Coordinate = Coordinate("Query.guestReservations");
pub const QUERY_ME: Coordinate = Coordinate("Query.me");
pub const QUERY_POLICY_STATUS: Coordinate = Coordinate("Query.policyStatus");
pub const QUERY_RESERVATION: Coordinate = Coordinate("Query.reservation");
pub const QUERY_RESERVATIONS: Coordinate = Coordinate("Query.reservations");
pub const QUERY_STAFF_ACCOUNTS: Coordinate = Coordinate("Query.staffAccounts");
pub const QUERY_VENUE_WEBHOOK: Coordinate = Coordinate("Query.venueWebhook");
pub const MUTATION_CLAIM_WAITLIST_OFFER: Coordinate = Coordinate("Mutation.claimWaitlistOffer");
pub const MUTATION_JOIN_WAITLIST: Coordinate = Coordinate("Mutation.joinWaitlist");
pub const MUTATION_LEAVE_WAITLIST: Coordinate = Coordinate("Mutation.leaveWaitlist");
pub const QUERY_WAITLIST: Coordinate = Coordinate("Query.waitlist");
pub const WAITLIST_ENTRY_GUEST_NAME: Coordinate = Coordinate("WaitlistEntry.guestName");
pub const WAITLIST_ENTRY_GUEST_EMAIL: Coordinate = Coordinate("WaitlistEntry.guestEmail");
pub const WAITLIST_ENTRY_GUEST_PHONE: Coordinate = Coordinate("WaitlistEntry.guestPhone");
pub const RESERVATION_CONSENTS: Coordinate = Coordinate("Reservation.consents");
pub const RESERVATION_CONSENT_STATE: Coordinate = Coordinate("Reservation.consentState");
pub const RESERVATION_GUEST_EMAIL: Coordinate = Coordinate("Reservation.guestEmail");
pub const RESERVATION_GUEST_NAME: Coordinate = Coordinate("Reservation.guestName");
pub const RESERVATION_GUEST_PHONE: Coordinate = Coordinate("Reservation.guestPhone");
pub const RESERVATION_NOTES: Coordinate = Coordinate("Reservation.notes");
pub const RESERVATION_PAYMENTS: Coordinate = Coordinate("Reservation.payments");

/// Every coordinate above, once.
pub const ALL: &[Coordinate] = &[
    CLOSURE_REASON,
    MUTATION_ACKNOWLEDGE_ALERT,
    MUTATION_ASSIGN_ROLE,
    MUTATION_CANCEL_RESERVATION,
    MUTATION_CHARGE_NO_SHOW_FEE,
    MUTATION_CLOSE_ONSITE_PAYMENT,
    MUTATION_COMPLETE_PAYMENT,
    MUTATION_CORRECT_GUEST_DATA,
    MUTATION_CORRECT_MY_DATA,
    MUTATION_CREATE_API_KEY,
    MUTATION_CREATE_RESERVATION,
    MUTATION_CREATE_STAFF,
    MUTATION_ERASE_GUEST_DATA,
    MUTATION_ERASE_MY_DATA,
    MUTATION_EXPORT_GUEST_DATA,
    MUTATION_EXPORT_MY_DATA,
    MUTATION_GIVE_CONSENT,
    MUTATION_LIFT_HOLD,
    MUTATION_LOGIN,
    MUTATION_LOGOUT,
    MUTATION_MODIFY_RESERVATION,
    MUTATION_NOTIFY_BREACH,
    MUTATION_PUBLISH_PRIVACY_NOTICE,
    MUTATION_RECORD_BREACH,
    MUTATION_RECORD_WALK_IN,
    MUTATION_REDEEM_ACCESS_CODE,
    MUTATION_REFUND_PAYMENT,
    MUTATION_REISSUE_MANAGE_TOKEN,
    MUTATION_REMOVE_ROLE,
    MUTATION_REMOVE_VENUE_WEBHOOK,
    MUTATION_REPORT_BREACH_TO_AUTHORITY,
    MUTATION_REQUEST_ACCESS_CODE,
    MUTATION_REVOKE_API_KEY,
    MUTATION_SAVE_VENUE,
    MUTATION_SET_RESERVATION_STATUS,
    MUTATION_SET_STAFF_ACTIVE,
    MUTATION_SET_VENUE_WEBHOOK,
    MUTATION_START_PAYMENT,
    MUTATION_UNLOCK_LOGIN,
    MUTATION_WITHDRAW_CONSENT,
    PAYMENT_CARD_BRAND,
    PAYMENT_CARD_LAST4,
    QUERY_ALERTS,
    QUERY_API_KEYS,
    QUERY_AUDIT_LOG,
    QUERY_BREACHES,
    QUERY_GUEST_RESERVATIONS,
    QUERY_ME,
    QUERY_POLICY_STATUS,
    QUERY_RESERVATION,
    QUERY_RESERVATIONS,
    QUERY_STAFF_ACCOUNTS,
    QUERY_VENUE_WEBHOOK,
    RESERVATION_CONSENTS,
    RESERVATION_CONSENT_STATE,
    RESERVATION_GUEST_EMAIL,
    RESERVATION_GUEST_NAME,
    RESERVATION_GUEST_PHONE,
    RESERVATION_NOTES,
    RESERVATION_PAYMENTS,
    MUTATION_CLAIM_WAITLIST_OFFER,
    MUTATION_JOIN_WAITLIST,
    MUTATION_LEAVE_WAITLIST,
    QUERY_WAITLIST,
    WAITLIST_ENTRY_GUEST_NAME,
    WAITLIST_ENTRY_GUEST_EMAIL,
    WAITLIST_ENTRY_GUEST_PHONE,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ALL;

    /// Each coordinate is a field of the schema: a guard never checks
    /// something no policy line could mean.
    #[test]
    fn every_coordinate_is_a_field_of_the_schema() {
        let fields = crate::authz::schema_coordinates();
        for coordinate in ALL {
            assert!(
                fields.contains(coordinate.as_str()),
                "{coordinate} is not a field of the schema"
            );
        }
    }

    /// Each coordinate is listed in policies/README.md, so admins know
    /// what they can grant; and each is listed here once.
    #[test]
    fn every_coordinate_is_documented_once() {
        let readme = include_str!("../../../policies/README.md");
        let mut seen = BTreeSet::new();
        for coordinate in ALL {
            assert!(
                seen.insert(coordinate.as_str()),
                "{coordinate} twice in ALL"
            );
            assert!(
                readme.contains(&format!("`{coordinate}`")),
                "{coordinate} is checked but not in policies/README.md"
            );
        }
    }

    /// No resolver names a coordinate as a string, which would bypass the
    /// constants above: every GraphQL source file is read, whatever its name.
    #[test]
    fn no_resolver_spells_a_coordinate_as_a_string() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/graphql");
        let prefixes: Vec<String> = ALL
            .iter()
            .map(|c| format!("\"{}.", c.as_str().split('.').next().unwrap_or_default()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut read = 0;
        for entry in std::fs::read_dir(dir).expect("the graphql sources") {
            let path = entry.expect("an entry").path();
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("coordinates.rs") {
                continue;
            }
            read += 1;
            let source = std::fs::read_to_string(&path).expect("a source file");
            for (number, line) in source.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for prefix in &prefixes {
                    assert!(
                        !line.contains(prefix.as_str()),
                        "{}:{}: a coordinate spelt as a string: {line}",
                        path.display(),
                        number + 1
                    );
                }
            }
        }
        assert!(read > 10, "only {read} GraphQL source files read");
    }
}
