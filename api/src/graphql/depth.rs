//! How deep a request nests, with introspection judged apart.
//!
//! The standard introspection query (the one GraphiQL, Apollo and code
//! generators send) follows `ofType` seven levels down and so nests about
//! thirteen deep, while no ordinary query needs more than a handful of
//! levels. A single limit for both either refuses the tools or lets
//! ordinary queries nest as deep as introspection does. Introspection only
//! ever describes the schema: below `__schema` or `__type` no resolver of
//! ours runs, so those subtrees get a limit of their own and every other
//! field keeps the ordinary one, also in a request that mixes both.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};

/// The fields whose subtrees describe the schema.
const INTROSPECTION_ROOTS: [&str; 2] = ["__schema", "__type"];

/// Nesting allowed per kind of field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthLimits {
    /// For fields outside introspection.
    pub ordinary: usize,
    /// For everything, introspection included.
    pub introspection: usize,
}

impl DepthLimits {
    /// The deepest any request may nest, whatever it asks for.
    pub fn overall(self) -> usize {
        self.ordinary.max(self.introspection)
    }

    /// Why the document is refused, if it nests too deep.
    pub fn check(self, document: &ExecutableDocument) -> Result<(), &'static str> {
        let depth = Depth::of(document);
        if depth.ordinary > self.ordinary || depth.all > self.overall() {
            return Err("Query is nested too deep.");
        }
        Ok(())
    }
}

/// Both depths of a selection set, fragments spread in place: `all` counts
/// every field, `ordinary` only fields reached without passing through an
/// introspection root.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub ordinary: usize,
    pub all: usize,
}

impl Depth {
    fn max(self, other: Self) -> Self {
        Self {
            ordinary: self.ordinary.max(other.ordinary),
            all: self.all.max(other.all),
        }
    }

    /// Counted over every operation, as async-graphql's own limit does:
    /// a document is judged whole, whichever operation it runs.
    pub fn of(document: &ExecutableDocument) -> Self {
        let mut walk = Walk {
            fragments: document
                .fragments
                .iter()
                .map(|(name, fragment)| (name.as_str(), &fragment.node))
                .collect(),
            known: HashMap::new(),
        };
        document
            .operations
            .iter()
            .map(|(_, operation)| walk.selection_set(&operation.node.selection_set.node))
            .fold(Self::default(), Self::max)
    }
}

struct Walk<'a> {
    fragments: HashMap<&'a str, &'a FragmentDefinition>,
    /// Each fragment is measured once, however often it is spread: a
    /// document of fragments spreading each other many times would
    /// otherwise cost time exponential in its length. `None` marks a
    /// fragment being measured; a spread of it inside itself (a cycle,
    /// which validation refuses) counts nothing.
    known: HashMap<&'a str, Option<Depth>>,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Depth {
        let mut depth = Depth::default();
        for selection in &set.items {
            let inner = match &selection.node {
                Selection::Field(field) => {
                    let below = self.selection_set(&field.node.selection_set.node);
                    let introspection =
                        INTROSPECTION_ROOTS.contains(&field.node.name.node.as_str());
                    Depth {
                        ordinary: if introspection { 0 } else { below.ordinary + 1 },
                        all: below.all + 1,
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node)
                }
            };
            depth = depth.max(inner);
        }
        depth
    }

    fn fragment(&mut self, name: &'a str) -> Depth {
        match self.known.get(name) {
            Some(Some(depth)) => return *depth,
            Some(None) => return Depth::default(),
            None => {}
        }
        let Some(fragment) = self.fragments.get(name).copied() else {
            // Unknown fragments are validation's to refuse.
            return Depth::default();
        };
        self.known.insert(name, None);
        let depth = self.selection_set(&fragment.selection_set.node);
        self.known.insert(name, Some(depth));
        depth
    }
}

#[cfg(test)]
mod tests {
    use super::{Depth, DepthLimits};

    fn depth(query: &str) -> Depth {
        let document = async_graphql::parser::parse_query(query).expect("a valid document");
        Depth::of(&document)
    }

    #[test]
    fn fields_count_and_fragments_count_where_they_are_spread() {
        assert_eq!(
            depth("{ a }"),
            Depth {
                ordinary: 1,
                all: 1
            }
        );
        assert_eq!(
            depth("{ a { b { c } } d }"),
            Depth {
                ordinary: 3,
                all: 3
            }
        );
        assert_eq!(
            depth("{ a { ...F ... on X { e { f } } } } fragment F on Y { b { c { d } } }"),
            Depth {
                ordinary: 4,
                all: 4
            }
        );
    }

    #[test]
    fn introspection_subtrees_count_apart_from_ordinary_fields() {
        assert_eq!(
            depth("{ __schema { types { fields { type { ofType { name } } } } } }"),
            Depth {
                ordinary: 0,
                all: 6
            }
        );
        assert_eq!(
            depth("{ info: __type(name: \"Venue\") { name } venues { edges { node { id } } } }"),
            Depth {
                ordinary: 4,
                all: 4
            }
        );
        // A fragment counts as introspection only where it is spread under
        // an introspection root.
        assert_eq!(
            depth("{ __schema { ...F } a { ...F } } fragment F on T { b { c } }"),
            Depth {
                ordinary: 3,
                all: 3
            }
        );
    }

    #[test]
    fn cycles_and_unknown_fragments_end_the_walk() {
        assert_eq!(
            depth(
                "{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { ...F ...H } }"
            ),
            Depth {
                ordinary: 3,
                all: 3
            }
        );
    }

    #[test]
    fn fragments_spread_many_times_are_measured_once() {
        // Twenty fragments each spreading the next twice: inlined, that is
        // a million spreads; measured once each, it is forty.
        let mut query = String::from("{ a { ...F0 } }");
        for i in 0..20 {
            query.push_str(&format!(
                " fragment F{i} on T {{ x {{ ...F{next} }} y {{ ...F{next} }} }}",
                next = i + 1
            ));
        }
        query.push_str(" fragment F20 on T { z }");
        assert_eq!(
            depth(&query),
            Depth {
                ordinary: 22,
                all: 22
            }
        );
    }

    #[test]
    fn limits_apply_per_kind() {
        let limits = DepthLimits {
            ordinary: 2,
            introspection: 4,
        };
        let check = |query: &str| {
            let document = async_graphql::parser::parse_query(query).expect("a valid document");
            limits.check(&document)
        };
        assert!(check("{ a { b } }").is_ok());
        assert!(check("{ a { b { c } } }").is_err());
        assert!(check("{ __schema { a { b { c } } } }").is_ok());
        assert!(check("{ __schema { a { b { c { d } } } } }").is_err());
        // Introspection beside a deep ordinary selection does not lift the
        // ordinary limit.
        assert!(check("{ __schema { a { b { c } } } x { y { z } } }").is_err());
    }
}
