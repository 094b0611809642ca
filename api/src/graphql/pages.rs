//! Lists that can grow are Relay connections: opaque cursors a client
//! passes back unread, and `totalCount` for "page 2 of 7". What a cursor
//! holds is the list's own business (a position in its order) and may
//! change between versions; clients only hand it back.

use async_graphql::connection::{Connection, CursorType, EmptyFields};
use async_graphql::{Result, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::errors::{Code, api_error};

/// A position in a list, as the client sees it: base64url of the list's
/// own position text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl CursorType for Cursor {
    type Error = CursorError;

    fn decode_cursor(raw: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError)?;
        String::from_utf8(bytes)
            .map(Cursor)
            .map_err(|_| CursorError)
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a cursor from this list")]
pub struct CursorError;

/// What a connection says about the whole list.
#[derive(SimpleObject, Debug, Clone, Copy, Default)]
pub struct Total {
    /// How many items the whole list holds under the arguments given,
    /// across every page.
    pub total_count: i64,
}

/// A page of a list, with `totalCount`.
pub type Page<Node> = Connection<Cursor, Node, Total, EmptyFields>;

/// An empty page with its total, to push edges into.
pub fn page<Node: async_graphql::OutputType>(
    has_previous_page: bool,
    has_next_page: bool,
    total_count: i64,
) -> Page<Node> {
    Connection::with_additional_fields(has_previous_page, has_next_page, Total { total_count })
}

/// Reads a cursor argument (`after`, `before`) back into the list's own
/// position text; anything a list did not hand out is BAD_USER_INPUT.
pub fn position(argument: &str, cursor: Option<&str>) -> Result<Option<String>> {
    cursor
        .map(|raw| {
            Cursor::decode_cursor(raw)
                .map(|cursor| cursor.0)
                .map_err(|_| {
                    api_error(
                        Code::BadUserInput,
                        format!("{argument}: not a cursor from this list"),
                    )
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_travel_opaque_and_come_back_whole() {
        let cursor = Cursor("2026-12-24T19:30:00Z|0193".to_owned());
        let encoded = cursor.encode_cursor();
        assert!(!encoded.contains('|') && !encoded.contains(':'));
        assert_eq!(
            position("after", Some(&encoded)).expect("decodes"),
            Some(cursor.0)
        );
    }

    #[test]
    fn a_made_up_cursor_is_bad_input() {
        let error = position("after", Some("not base64!")).expect_err("refused");
        assert!(error.message.starts_with("after:"));
        assert_eq!(position("after", None).expect("absent"), None);
    }
}
