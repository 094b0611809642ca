//! The tables, declared once and instantiated per backend: the columns are
//! the same, only the SQL type of a timestamp differs (`timestamptz` on
//! PostgreSQL, ISO-8601 text on SQLite).

macro_rules! kluis_schema {
    ($Instant:ident) => {
        diesel::table! {
            use diesel::sql_types::*;

            venues (id) {
                id -> Text,
                slug -> Text,
                name -> Text,
                time_zone -> Text,
                slot_interval_minutes -> Integer,
                booking_duration_minutes -> Integer,
                buffer_minutes -> Integer,
                min_notice_minutes -> Integer,
                same_day_cutoff_minute -> Nullable<Integer>,
                cancel_deadline_minutes -> Integer,
                max_party_size -> Integer,
                max_advance_days -> Integer,
                created_at -> $Instant,
                updated_at -> $Instant,
                country -> Nullable<Text>,
                payment_rule -> Text,
                payment_per_guest -> Bool,
                payment_amount_minor -> BigInt,
                payment_currency -> Text,
                payment_hold_minutes -> Integer,
                collect_email -> Text,
                collect_phone -> Text,
                collect_notes -> Text,
                retention_days -> Integer,
                payment_data_days -> Integer,
                opt_in_purposes -> Text,
                allowed_origins -> Text,
                waitlist_offer_minutes -> Integer,
                waitlist_retention_days -> Integer,
                max_joined_tables -> Integer,
                max_covers_per_slot -> Nullable<Integer>,
                max_covers_per_hour -> Nullable<Integer>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            reservation_holds (reservation_id, resource_id) {
                reservation_id -> Text,
                resource_id -> Text,
                starts_at -> $Instant,
                blocked_until -> $Instant,
                active -> Bool,
            }
        }

        diesel::table! {
            resource_combinations (venue_id, position) {
                venue_id -> Text,
                position -> Integer,
                kind -> Text,
                members -> Text,
                capacity -> Nullable<Integer>,
                min_party -> Nullable<Integer>,
            }
        }

        diesel::table! {
            opening_hours (venue_id, weekday, opens_minute) {
                venue_id -> Text,
                weekday -> Integer,
                opens_minute -> Integer,
                closes_minute -> Integer,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            resources (id) {
                id -> Text,
                venue_id -> Text,
                slug -> Text,
                name -> Text,
                kind -> Text,
                capacity -> Integer,
                active -> Bool,
                created_at -> $Instant,
                updated_at -> $Instant,
                working_hours -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            services (id) {
                id -> Text,
                venue_id -> Text,
                slug -> Text,
                name -> Text,
                duration_minutes -> Integer,
                buffer_minutes -> Integer,
                min_party -> Integer,
                max_party -> Integer,
                resource_ids -> Text,
                payment_rule -> Nullable<Text>,
                payment_per_guest -> Bool,
                payment_amount_minor -> BigInt,
                payment_currency -> Text,
                active -> Bool,
                position -> Integer,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            hours_exceptions (id) {
                id -> Text,
                venue_id -> Text,
                resource_id -> Nullable<Text>,
                local_date -> Text,
                hours -> Text,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            closures (id) {
                id -> Text,
                venue_id -> Text,
                resource_id -> Nullable<Text>,
                local_from -> Text,
                local_until -> Text,
                starts_at -> $Instant,
                ends_at -> $Instant,
                reason -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            reservations (id) {
                id -> Text,
                venue_id -> Text,
                resource_id -> Text,
                party_size -> Integer,
                starts_at -> $Instant,
                ends_at -> $Instant,
                blocked_until -> $Instant,
                status -> Text,
                version -> Integer,
                created_at -> $Instant,
                updated_at -> $Instant,
                guest_id -> Nullable<Text>,
                notes_sealed -> Nullable<Binary>,
                manage_token_hash -> Nullable<Binary>,
                key_version -> Nullable<Integer>,
                hold_until -> Nullable<$Instant>,
                service_id -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            idempotency_keys (operation, key) {
                operation -> Text,
                key -> Text,
                request_hash -> Text,
                response -> Nullable<Text>,
                created_at -> $Instant,
                token_sealed -> Nullable<Binary>,
                request_sealed -> Nullable<Binary>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            guests (id) {
                id -> Text,
                venue_id -> Text,
                key_version -> Integer,
                name_sealed -> Binary,
                email_sealed -> Nullable<Binary>,
                email_lookup -> Nullable<Binary>,
                phone_sealed -> Nullable<Binary>,
                phone_lookup -> Nullable<Binary>,
                created_at -> $Instant,
                updated_at -> $Instant,
                erased_at -> Nullable<$Instant>,
                shared -> Bool,
                data_key -> Bool,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            key_checks (version) {
                version -> Integer,
                check_sealed -> Binary,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            staff_users (id) {
                id -> Text,
                email -> Text,
                password_hash -> Text,
                active -> Bool,
                created_at -> $Instant,
                updated_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            role_assignments (subject, role, venue) {
                subject -> Text,
                role -> Text,
                venue -> Text,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            authz_version (id) {
                id -> Integer,
                version -> BigInt,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            sessions (token_hash) {
                token_hash -> Binary,
                user_id -> Text,
                created_at -> $Instant,
                expires_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            api_keys (id) {
                id -> Text,
                name -> Text,
                secret_hash -> Binary,
                hash_version -> Integer,
                role -> Text,
                created_by -> Nullable<Text>,
                created_at -> $Instant,
                expires_at -> Nullable<$Instant>,
                revoked_at -> Nullable<$Instant>,
                last_used_at -> Nullable<$Instant>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            login_throttle (scope) {
                scope -> Text,
                failures -> Integer,
                last_failure_at -> $Instant,
                blocked_until -> Nullable<$Instant>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            payments (id) {
                id -> Text,
                reservation_id -> Text,
                kind -> Text,
                gateway -> Text,
                provider_reference -> Nullable<Text>,
                amount_minor -> BigInt,
                currency -> Text,
                refunded_minor -> BigInt,
                status -> Text,
                failure_reason -> Nullable<Text>,
                card_brand -> Nullable<Text>,
                card_last4 -> Nullable<Text>,
                idempotency_key -> Text,
                request_hash -> Text,
                created_at -> $Instant,
                updated_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            payment_events (payment_id, at) {
                payment_id -> Text,
                at -> $Instant,
                status -> Text,
                source -> Text,
                detail -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            payment_refunds (idempotency_key) {
                idempotency_key -> Text,
                payment_id -> Text,
                request_hash -> Text,
                amount_minor -> BigInt,
                status -> Text,
                provider_reference -> Nullable<Text>,
                created_at -> $Instant,
                updated_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            webhook_events (provider, event_id) {
                provider -> Text,
                event_id -> Text,
                received_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            privacy_notices (venue_id, locale, version) {
                venue_id -> Text,
                locale -> Text,
                version -> Integer,
                text -> Text,
                sha256 -> Text,
                published_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            consents (id) {
                id -> Text,
                guest_id -> Text,
                seq -> Integer,
                venue_id -> Text,
                purpose -> Text,
                given -> Bool,
                at -> $Instant,
                channel -> Text,
                notice_version -> Nullable<Integer>,
                notice_sha256 -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            audit_log (seq) {
                seq -> BigInt,
                at -> $Instant,
                principal -> Text,
                action -> Text,
                venue_id -> Nullable<Text>,
                prev_hash -> Text,
                hash -> Text,
                key_version -> Integer,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            audit_objects (seq, position) {
                seq -> BigInt,
                position -> Integer,
                at -> $Instant,
                principal -> Text,
                action -> Text,
                object -> Text,
                fields -> Text,
                venue_id -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            audit_anchor (id) {
                id -> Integer,
                until_seq -> BigInt,
                until_hash -> Text,
                key_version -> Integer,
                mac -> Text,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            audit_checkpoints (until_seq) {
                until_seq -> BigInt,
                until_hash -> Text,
                digest -> Text,
                key_version -> Integer,
                mac -> Text,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            outbox (id) {
                id -> Text,
                purpose -> Text,
                venue_id -> Nullable<Text>,
                message_sealed -> Binary,
                status -> Text,
                attempts -> Integer,
                next_attempt_at -> $Instant,
                last_error -> Nullable<Text>,
                created_at -> $Instant,
                sent_at -> Nullable<$Instant>,
                kind -> Text,
                guest_id -> Nullable<Text>,
                discard_after -> Nullable<$Instant>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            alerts (id) {
                id -> Text,
                rule -> Text,
                principal -> Text,
                venue_id -> Nullable<Text>,
                observed -> Integer,
                triggers -> Integer,
                first_at -> $Instant,
                last_at -> $Instant,
                status -> Text,
                acknowledged_by -> Nullable<Text>,
                acknowledged_at -> Nullable<$Instant>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            principal_holds (principal) {
                principal -> Text,
                kind -> Text,
                until -> Nullable<$Instant>,
                alert_id -> Text,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            api_key_networks (key_id, network) {
                key_id -> Text,
                network -> Text,
                first_seen_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            rate_windows (scope, window_start) {
                scope -> Text,
                window_start -> $Instant,
                requests -> BigInt,
                complexity -> BigInt,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            venue_webhooks (venue_id) {
                venue_id -> Text,
                url -> Text,
                secret_sealed -> Binary,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            access_codes (id) {
                id -> Text,
                venue_id -> Text,
                email_lookup -> Binary,
                code_hash -> Binary,
                key_version -> Integer,
                attempts -> Integer,
                expires_at -> $Instant,
                used_at -> Nullable<$Instant>,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            breaches (id) {
                id -> Text,
                discovered_at -> $Instant,
                nature -> Text,
                data_categories -> Text,
                approx_people -> Integer,
                approx_records -> Integer,
                consequences -> Text,
                measures -> Text,
                contact -> Text,
                reported_at -> Nullable<$Instant>,
                recorded_by -> Text,
                created_at -> $Instant,
                venue_id -> Nullable<Text>,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            breach_notices (breach_id, guest_id) {
                breach_id -> Text,
                guest_id -> Text,
                outbox_id -> Text,
                notified_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            guest_access_grants (id) {
                id -> Text,
                token_hash -> Binary,
                venue_id -> Text,
                email_sealed -> Binary,
                key_version -> Integer,
                expires_at -> $Instant,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            waitlist_entries (id) {
                id -> Text,
                venue_id -> Text,
                guest_id -> Text,
                local_date -> Text,
                from_minute -> Integer,
                until_minute -> Integer,
                party_size -> Integer,
                service_id -> Nullable<Text>,
                locale -> Text,
                token_hash -> Binary,
                status -> Text,
                position -> Integer,
                joined_at -> $Instant,
                updated_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            waitlist_offers (id) {
                id -> Text,
                entry_id -> Text,
                venue_id -> Text,
                resource_id -> Text,
                starts_at -> $Instant,
                blocked_until -> $Instant,
                token_hash -> Binary,
                status -> Text,
                expires_at -> $Instant,
                created_at -> $Instant,
                reservation_id -> Nullable<Text>,
            }
        }

        // An offer is read with its entry.
        diesel::allow_tables_to_appear_in_same_query!(waitlist_entries, waitlist_offers);
        diesel::joinable!(waitlist_offers -> waitlist_entries (entry_id));

        diesel::allow_tables_to_appear_in_same_query!(
            venues,
            opening_hours,
            resources,
            reservations,
            guests,
            reservation_holds
        );
        diesel::joinable!(reservation_holds -> reservations (reservation_id));

        // The bulk-read rule weighs reads by when the reservation starts.
        diesel::allow_tables_to_appear_in_same_query!(audit_log, reservations);
        diesel::allow_tables_to_appear_in_same_query!(audit_objects, reservations);
        diesel::allow_tables_to_appear_in_same_query!(audit_objects, audit_log);
        diesel::joinable!(audit_objects -> audit_log (seq));

        // Card details are dropped by when their booking ended.
        diesel::allow_tables_to_appear_in_same_query!(payments, reservations);
    };
}

pub mod pg {
    kluis_schema!(Timestamptz);
    pub(crate) use crate::lock::load_locked_pg as load_locked;
    pub(crate) use crate::lock::load_shared_pg as load_shared;
    pub(crate) use crate::lock::lock_venue_bookings_pg as lock_venue_bookings;
}

/// The key store's tables (a database of their own, see `keystore.rs`).
macro_rules! key_store_schema {
    ($Instant:ident) => {
        diesel::table! {
            use diesel::sql_types::*;

            data_keys (guest_id) {
                guest_id -> Text,
                key_version -> Integer,
                wrapped -> Binary,
                created_at -> $Instant,
            }
        }

        diesel::table! {
            use diesel::sql_types::*;

            erasures (guest_id) {
                guest_id -> Text,
                erased_at -> $Instant,
                reason -> Text,
            }
        }
    };
}

pub mod key_store_pg {
    key_store_schema!(Timestamptz);
}

pub mod key_store_sqlite {
    key_store_schema!(TimestamptzSqlite);
}

pub mod sqlite {
    kluis_schema!(TimestamptzSqlite);
    pub(crate) use crate::lock::load_locked_sqlite as load_locked;
    pub(crate) use crate::lock::load_shared_sqlite as load_shared;
    pub(crate) use crate::lock::lock_venue_bookings_sqlite as lock_venue_bookings;
}
