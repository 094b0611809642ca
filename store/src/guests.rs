//! Guests: personal data is sealed here, at the row boundary, and nowhere
//! else. Rows hold ciphertexts and lookup tokens; the rest of the program
//! sees domain types whose values are masked.

use domain::crypto::{CryptoError, DataKey, Field, KeyRing, is_data_key_sealed};
use domain::{Email, Guest, GuestId, GuestNotes, PersonName, Phone, VenueId};

use crate::StoreError;
use crate::keystore::GuestAccess;

/// A guest's columns, sealed for one row.
pub struct SealedGuest {
    pub key_version: i32,
    pub name_sealed: Vec<u8>,
    pub email_sealed: Option<Vec<u8>>,
    pub email_lookup: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub phone_lookup: Option<Vec<u8>>,
}

#[derive(Debug, Clone, diesel::Queryable)]
pub struct GuestRow {
    pub id: String,
    pub venue_id: String,
    pub key_version: i32,
    pub name_sealed: Vec<u8>,
    pub email_sealed: Option<Vec<u8>>,
    pub _email_lookup: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub _phone_lookup: Option<Vec<u8>>,
    pub _created_at: chrono::DateTime<chrono::Utc>,
    pub _updated_at: chrono::DateTime<chrono::Utc>,
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Several bookings were linked to this record before each booking
    /// kept its own: a single booking's manage token does not open it.
    pub shared: bool,
    /// The personal fields are sealed under the guest's own data key.
    pub data_key: bool,
}

/// What an erased guest's name reads as.
pub const ERASED: &str = "‹erased›";

pub fn db_version(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

/// A sealed value and its lookup token, both absent when the value is.
type SealedAndToken = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Seals a personal value of a guest: under their data key when they have
/// one, else under the key ring's column key of `version`.
pub fn seal_personal(
    keys: &KeyRing,
    version: u32,
    data_key: Option<&DataKey>,
    field: Field,
    row: &str,
    value: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match data_key {
        Some(key) => key.seal(field, row, value),
        None => keys.seal_with(version, field, row, value),
    }
}

fn seal_optional(
    keys: &KeyRing,
    version: u32,
    data_key: Option<&DataKey>,
    field: Field,
    row: &str,
    value: Option<&str>,
) -> Result<SealedAndToken, CryptoError> {
    match value {
        None => Ok((None, None)),
        Some(value) => Ok((
            Some(seal_personal(
                keys,
                version,
                data_key,
                field,
                row,
                value.as_bytes(),
            )?),
            // Lookup tokens stay under column keys: equality search must
            // work across guests.
            Some(keys.lookup_token_with(version, field, value.as_bytes())?),
        )),
    }
}

/// Seals a guest's name, e-mail and phone: the values under the guest's
/// data key (or, without one, key version `version`), the lookup tokens
/// under key version `version`.
pub fn seal_guest(
    keys: &KeyRing,
    version: u32,
    data_key: Option<&DataKey>,
    id: &str,
    name: &PersonName,
    email: Option<&Email>,
    phone: Option<&Phone>,
) -> Result<SealedGuest, CryptoError> {
    let (email_sealed, email_lookup) = seal_optional(
        keys,
        version,
        data_key,
        Field::GUEST_EMAIL,
        id,
        email.map(Email::expose),
    )?;
    let (phone_sealed, phone_lookup) = seal_optional(
        keys,
        version,
        data_key,
        Field::GUEST_PHONE,
        id,
        phone.map(Phone::expose),
    )?;
    Ok(SealedGuest {
        key_version: db_version(version),
        name_sealed: seal_personal(
            keys,
            version,
            data_key,
            Field::GUEST_NAME,
            id,
            name.expose().as_bytes(),
        )?,
        email_sealed,
        email_lookup,
        phone_sealed,
        phone_lookup,
    })
}

pub fn open_text(
    keys: &KeyRing,
    field: Field,
    row: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let bytes = keys.open(field, row, sealed)?;
    String::from_utf8(bytes).map_err(|_| {
        StoreError::Integrity(CryptoError::Integrity {
            table: field.table,
            column: field.column,
            row: row.to_owned(),
        })
    })
}

/// Opens a guest's personal value: under their data key when it was sealed
/// with one (the value says which), else with the key ring.
pub fn open_personal(
    keys: &KeyRing,
    access: GuestAccess<'_>,
    field: Field,
    row: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    if !is_data_key_sealed(sealed) {
        return open_text(keys, field, row, sealed);
    }
    let integrity = || {
        StoreError::Integrity(CryptoError::Integrity {
            table: field.table,
            column: field.column,
            row: row.to_owned(),
        })
    };
    let GuestAccess::Key(key) = access else {
        return Err(integrity());
    };
    String::from_utf8(key.open(field, row, sealed)?).map_err(|_| integrity())
}

impl GuestRow {
    /// The guest with their fields opened. A guest whose data key was
    /// destroyed reads as erased, even in a copy of the data taken before.
    pub fn open(&self, keys: &KeyRing, access: GuestAccess<'_>) -> Result<Guest, StoreError> {
        let id = &self.id;
        if self.erased_at.is_some() || matches!(access, GuestAccess::Shredded) {
            return Ok(Guest {
                id: GuestId::parse(id)
                    .map_err(|_| StoreError::Corrupt(format!("guest id {id}")))?,
                venue_id: VenueId::parse(&self.venue_id)
                    .map_err(|_| StoreError::Corrupt(format!("guest {id} venue")))?,
                name: PersonName::from_stored(ERASED.to_owned()),
                email: None,
                phone: None,
            });
        }
        let optional =
            |field: Field, sealed: &Option<Vec<u8>>| -> Result<Option<String>, StoreError> {
                sealed
                    .as_deref()
                    .map(|bytes| open_personal(keys, access, field, id, bytes))
                    .transpose()
            };
        Ok(Guest {
            id: GuestId::parse(id).map_err(|_| StoreError::Corrupt(format!("guest id {id}")))?,
            venue_id: VenueId::parse(&self.venue_id)
                .map_err(|_| StoreError::Corrupt(format!("guest {id} venue")))?,
            name: PersonName::from_stored(open_personal(
                keys,
                access,
                Field::GUEST_NAME,
                id,
                &self.name_sealed,
            )?),
            email: optional(Field::GUEST_EMAIL, &self.email_sealed)?.map(Email::from_stored),
            phone: optional(Field::GUEST_PHONE, &self.phone_sealed)?.map(Phone::from_stored),
        })
    }
}

/// A reservation's notes, under its guest's data key or the key ring;
/// none once the guest's data key is destroyed.
pub fn open_notes(
    keys: &KeyRing,
    access: GuestAccess<'_>,
    reservation_id: &str,
    sealed: Option<&[u8]>,
) -> Result<Option<GuestNotes>, StoreError> {
    if matches!(access, GuestAccess::Shredded) {
        return Ok(None);
    }
    sealed
        .map(|bytes| {
            open_personal(
                keys,
                access,
                Field::RESERVATION_NOTES,
                reservation_id,
                bytes,
            )
            .map(GuestNotes::from_stored)
        })
        .transpose()
}

/// The lookup tokens under every key version in the ring, for finding a
/// guest whose row may not be re-encrypted yet.
pub fn tokens(
    keys: &KeyRing,
    field: Field,
    value: Option<&str>,
) -> Result<Vec<Vec<u8>>, CryptoError> {
    match value {
        None => Ok(Vec::new()),
        Some(value) => keys.lookup_tokens(field, value.as_bytes()),
    }
}

/// The ids of a venue's guest records whose e-mail lookup token is one of
/// `tokens` (one per key version): every booking made with one address.
/// One indexed equality query, no decryption.
macro_rules! guest_ids_by_email {
    ($c:expr, $s:ident, $venue_id:expr, $tokens:expr) => {
        $crate::step(|| {
            Ok({
                use $s::guests::dsl as g;
                // One key version (the usual case) asks with `=`: a statement that
                // stays prepared on both backends, where a list does not.
                match $tokens.as_slice() {
                    [] => Vec::<String>::new(),
                    [token] => g::guests
                        .filter(g::venue_id.eq($venue_id))
                        .filter(g::email_lookup.eq(token))
                        .select(g::id)
                        .load::<String>($c)?,
                    tokens => g::guests
                        .filter(g::venue_id.eq($venue_id))
                        .filter(g::email_lookup.eq_any(tokens))
                        .select(g::id)
                        .load::<String>($c)?,
                }
            })
        })
    };
}
pub(crate) use guest_ids_by_email;

/// The first guest record of a venue with this e-mail, or else this phone:
/// for tools (the seed's idempotence) that ask whether an address is known
/// at all. Bookings never use it to link themselves to a record.
macro_rules! find_guest_id {
    ($c:expr, $s:ident, $venue_id:expr, $email_tokens:expr, $phone_tokens:expr) => {
        $crate::step(|| {
            Ok({
                use $s::guests::dsl as g;
                let mut found: Option<String> =
                    crate::guests::guest_ids_by_email!($c, $s, $venue_id, $email_tokens)?
                        .into_iter()
                        .next();
                if found.is_none() && !$phone_tokens.is_empty() {
                    found = g::guests
                        .filter(g::venue_id.eq($venue_id))
                        .filter(g::phone_lookup.eq_any($phone_tokens))
                        .select(g::id)
                        .first::<String>($c)
                        .optional()?;
                }
                found
            })
        })
    };
}
pub(crate) use find_guest_id;

/// Parses guest ids read from the database.
pub(crate) fn parse_guest_ids(ids: Vec<String>) -> Result<Vec<GuestId>, StoreError> {
    ids.into_iter()
        .map(|id| GuestId::parse(&id).map_err(|_| StoreError::Corrupt(format!("guest id {id}"))))
        .collect()
}
