//! What GET `/graphql` may run. A URL ends up in browser history, proxy
//! and server access logs and `Referer` headers, so only public reads
//! without anything secret or personal in them are taken: queries whose
//! root fields are all public lookups, with no argument or variable named
//! like a secret or a personal value and no value that looks like one.
//! Everything else must come as POST.

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};

/// Root fields a GET may ask for: public reads a page may cache or link.
pub const PUBLIC_ROOT_FIELDS: [&str; 8] = [
    "venue",
    "venueBySlug",
    "venues",
    "availability",
    "privacyNotice",
    "__schema",
    "__type",
    "__typename",
];

/// Parts of argument and variable names that carry secrets or personal
/// data (compared in lower case).
const SENSITIVE_NAMES: [&str; 16] = [
    "token",
    "secret",
    "password",
    "passcode",
    "key",
    "mail",
    "phone",
    "note",
    "code",
    "guest",
    "credential",
    "auth",
    "session",
    "address",
    "card",
    "iban",
];

/// Prefixes of kluis's own keys and tokens.
const KEY_PREFIXES: [&str; 4] = ["kmt_", "kat_", "kst_", "kls_"];

/// Fragments nest at most this deep at the root before a GET is refused.
const MAX_FRAGMENT_NESTING: usize = 8;

/// Why a GET is refused (to be sent as POST), or `None` when it may run.
pub fn refusal(
    query: &str,
    operation_name: Option<&str>,
    variables: Option<&serde_json::Value>,
) -> Option<&'static str> {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return Some("GET takes only queries kluis can read; send this request with POST");
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => operation,
        (operations, wanted) => {
            let mut found = operations.iter().filter(|(name, _)| match wanted {
                Some(wanted) => name.is_some_and(|name| name.as_str() == wanted),
                None => true,
            });
            match (found.next(), found.next()) {
                (Some((_, operation)), None) => operation,
                _ => return Some("GET runs one named query; send this request with POST"),
            }
        }
    };
    if operation.node.ty != OperationType::Query {
        return Some("mutations are not allowed over GET; use POST");
    }
    if !root_fields_are_public(&document, &operation.node.selection_set.node, 0) {
        return Some(
            "over GET only public lookups run (venue, venueBySlug, venues, availability, \
             privacyNotice, introspection); send this request with POST",
        );
    }
    let names_ok = document.operations.iter().all(|(_, operation)| {
        operation
            .node
            .variable_definitions
            .iter()
            .all(|definition| {
                !sensitive_name(definition.node.name.node.as_str())
                    && definition.node.default_value.as_ref().is_none_or(|value| {
                        json_is_harmless(&value.node.clone().into_json().unwrap_or_default())
                    })
            })
            && directives_are_harmless(&operation.node.directives)
            && selections_are_harmless(&operation.node.selection_set.node)
    }) && document.fragments.values().all(|fragment| {
        directives_are_harmless(&fragment.node.directives)
            && selections_are_harmless(&fragment.node.selection_set.node)
    });
    if !names_ok || variables.is_some_and(|v| !json_is_harmless(v)) {
        return Some(
            "tokens and personal data must not travel in a URL; send this request with POST \
             (guest keys as Authorization: Bearer …)",
        );
    }
    None
}

fn root_fields_are_public(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    if depth > MAX_FRAGMENT_NESTING {
        return false;
    }
    set.items.iter().all(|selection| match &selection.node {
        Selection::Field(field) => PUBLIC_ROOT_FIELDS.contains(&field.node.name.node.as_str()),
        Selection::InlineFragment(fragment) => {
            root_fields_are_public(document, &fragment.node.selection_set.node, depth + 1)
        }
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_some_and(|fragment| {
                root_fields_are_public(document, &fragment.node.selection_set.node, depth + 1)
            }),
    })
}

fn sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_NAMES.iter().any(|part| lower.contains(part))
}

fn sensitive_text(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.contains('@')
        || KEY_PREFIXES
            .iter()
            .any(|prefix| trimmed.starts_with(prefix))
        || trimmed.to_ascii_lowercase().starts_with("bearer ")
}

fn json_is_harmless(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => !sensitive_text(text),
        serde_json::Value::Array(items) => items.iter().all(json_is_harmless),
        serde_json::Value::Object(fields) => fields
            .iter()
            .all(|(name, value)| !sensitive_name(name) && json_is_harmless(value)),
        _ => true,
    }
}

/// Generic because the parser's value type is not exported by name; any
/// value serializes to JSON (a variable as its name).
fn arguments_are_harmless<V: serde::Serialize>(
    arguments: &[(Positioned<Name>, Positioned<V>)],
) -> bool {
    arguments.iter().all(|(name, value)| {
        !sensitive_name(name.node.as_str())
            && serde_json::to_value(&value.node).is_ok_and(|value| json_is_harmless(&value))
    })
}

fn directives_are_harmless(directives: &[Positioned<Directive>]) -> bool {
    directives
        .iter()
        .all(|directive| arguments_are_harmless(&directive.node.arguments))
}

fn selections_are_harmless(set: &SelectionSet) -> bool {
    set.items.iter().all(|selection| match &selection.node {
        Selection::Field(field) => {
            arguments_are_harmless(&field.node.arguments)
                && directives_are_harmless(&field.node.directives)
                && selections_are_harmless(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => {
            directives_are_harmless(&fragment.node.directives)
                && selections_are_harmless(&fragment.node.selection_set.node)
        }
        Selection::FragmentSpread(spread) => directives_are_harmless(&spread.node.directives),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(query: &str) -> bool {
        refusal(query, None, None).is_none()
    }

    #[test]
    fn public_lookups_run_over_get() {
        assert!(allowed("{ venueBySlug(slug: \"bistro\") { id name } }"));
        assert!(allowed(
            "query V($s: String!) { venueBySlug(slug: $s) { id } venues { totalCount } }"
        ));
        assert!(allowed(
            "{ __schema { queryType { name } } __type(name: \"Venue\") { name } }"
        ));
        assert!(allowed(
            "query A { ...F } fragment F on Query { venues { totalCount } }"
        ));
        assert!(allowed(
            "{ ... on Query { privacyNotice(venueId: \"x\") { text } } }"
        ));
        assert!(
            refusal(
                "query A { venues { totalCount } } query B { __typename }",
                Some("B"),
                None
            )
            .is_none()
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for query in [
            "mutation { logout { revoked } }",
            "{ reservation(id: \"x\") { id } }",
            "{ venues { totalCount } myReservation { id } }",
            "query A { ...F } fragment F on Query { dayReservations(venueId: \"x\") { id } }",
            "{ ... on Query { guestLookup { id } } }",
            "subscription { x }",
            "{ venues { totalCount } ",
            "query A { venues { totalCount } } query B { __typename }",
            // Secrets or personal values by name or by look.
            "{ venue(id: \"x\", manageToken: \"abc\") { id } }",
            "query Q($email: String) { venues { totalCount } }",
            "{ venueBySlug(slug: \"kmt_0123456789abcdef\") { id } }",
            "{ venueBySlug(slug: \"someone@example.org\") { id } }",
            "{ venues { edges { node { resources { id } } } } __type(name: \"a@b.c\") { name } }",
        ] {
            assert!(!allowed(query), "{query}");
        }
        assert!(refusal("query A { venues { totalCount } }", Some("B"), None).is_some());
        let canary = json!({ "s": "guest@example.org" });
        assert!(
            refusal(
                "query V($s: String!) { venueBySlug(slug: $s) { id } }",
                None,
                Some(&canary)
            )
            .is_some()
        );
        let named = json!({ "token": "x" });
        assert!(
            refusal(
                "query V($s: String!) { venueBySlug(slug: $s) { id } }",
                None,
                Some(&named)
            )
            .is_some()
        );
    }

    #[test]
    fn fragments_that_loop_are_refused_not_followed_for_ever() {
        let looping = "query A { ...F } fragment F on Query { ...G } fragment G on Query { ...F }";
        assert!(!allowed(looping));
    }
}
