//! kluis's own scalars: a calendar date and a time of day, both read in
//! the venue's time zone, and the descriptions of the library's scalars in
//! kluis's words.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;
use domain::TimeOfDay;

/// A calendar day at the venue, `YYYY-MM-DD` (RFC 3339 `full-date`): the
/// day a guest sees on the venue's wall calendar, in the venue's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// A calendar day at the venue, `YYYY-MM-DD` (RFC 3339 `full-date`): the
/// day a guest sees on the venue's wall calendar, in the venue's time zone.
#[Scalar(
    name = "Date",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
)]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("`{raw}` is not a date (YYYY-MM-DD)"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// A time of day on the venue's clock, `HH:MM` (24-hour, RFC 3339
/// `partial-time` without seconds); `24:00` is the midnight that ends a
/// day, so that a venue can be open until midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub TimeOfDay);

/// A time of day on the venue's clock, `HH:MM` (24-hour, RFC 3339
/// `partial-time` without seconds); `24:00` is the midnight that ends a
/// day, so that a venue can be open until midnight.
#[Scalar(
    name = "LocalTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
)]
impl ScalarType for LocalTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(raw) => TimeOfDay::parse(raw)
                .map(LocalTime)
                .map_err(InputValueError::custom),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// An instant as the venue's clock shows it: what kluis answers for times
/// that belong to a venue.
pub fn local(
    instant: chrono::DateTime<chrono::Utc>,
    tz: chrono_tz::Tz,
) -> chrono::DateTime<chrono::FixedOffset> {
    instant.with_timezone(&tz).fixed_offset()
}

/// How the library's `DateTime` reads in kluis's schema.
pub const DATE_TIME: &str = "An instant, RFC 3339 with its UTC offset \
(`2026-12-24T19:30:00+01:00`). kluis answers in the venue's offset where \
the instant belongs to a venue, in UTC otherwise; any offset is accepted.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_and_write_as_full_dates() {
        let date = <Date as ScalarType>::parse(Value::String("2026-12-24".into())).expect("date");
        assert_eq!(date.to_value(), Value::String("2026-12-24".into()));
        for wrong in ["2026-13-01", "24-12-2026", "2026-12-24T00:00:00Z", ""] {
            assert!(
                <Date as ScalarType>::parse(Value::String(wrong.into())).is_err(),
                "{wrong}"
            );
        }
        assert!(<Date as ScalarType>::parse(Value::Number(20_261_224.into())).is_err());
    }

    #[test]
    fn times_read_and_write_on_a_24_hour_clock() {
        for raw in ["00:00", "09:30", "24:00"] {
            let time = <LocalTime as ScalarType>::parse(Value::String(raw.into())).expect(raw);
            assert_eq!(time.to_value(), Value::String(raw.into()));
        }
        for wrong in ["24:01", "9:30", "09:60", "noon"] {
            assert!(
                <LocalTime as ScalarType>::parse(Value::String(wrong.into())).is_err(),
                "{wrong}"
            );
        }
    }
}
