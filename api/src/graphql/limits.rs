//! Request limits that async-graphql does not count itself: aliases and
//! directives per request. Both are cheap ways to multiply the work one
//! request asks for (the same field a hundred times under a hundred names).

use std::sync::Arc;

use async_graphql::ValidationResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

pub const MAX_ALIASES: usize = 15;
pub const MAX_DIRECTIVES: usize = 50;

pub struct RequestLimits;

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimitsExtension)
    }
}

struct RequestLimitsExtension;

#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
}

impl Counts {
    fn walk(&mut self, set: &SelectionSet) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    self.aliases += usize::from(field.node.alias.is_some());
                    self.directives += field.node.directives.len();
                    self.walk(&field.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives += spread.node.directives.len();
                }
                Selection::InlineFragment(fragment) => {
                    self.directives += fragment.node.directives.len();
                    self.walk(&fragment.node.selection_set.node);
                }
            }
        }
    }

    /// Counts every operation and fragment as written: a fragment spread
    /// many times is still counted once, and the depth and complexity
    /// limits bound what spreading it costs.
    fn of(document: &ExecutableDocument) -> Self {
        let mut counts = Self::default();
        for (_, operation) in document.operations.iter() {
            counts.directives += operation.node.directives.len();
            counts.walk(&operation.node.selection_set.node);
        }
        for fragment in document.fragments.values() {
            counts.directives += fragment.node.directives.len();
            counts.walk(&fragment.node.selection_set.node);
        }
        counts
    }
}

/// The complexity of the request that was validated, for the rate limits
/// on complexity spent (the HTTP layer reads it after execution).
#[derive(Default)]
pub struct SpentComplexity(pub std::sync::atomic::AtomicUsize);

#[async_graphql::async_trait::async_trait]
impl Extension for RequestLimitsExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(spent) = ctx.data_opt::<Arc<SpentComplexity>>() {
            spent
                .0
                .store(result.complexity, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let counts = Counts::of(&document);
        if counts.aliases > MAX_ALIASES {
            return Err(ServerError::new(
                format!(
                    "too many aliases: {} (at most {MAX_ALIASES} per request)",
                    counts.aliases
                ),
                None,
            ));
        }
        if counts.directives > MAX_DIRECTIVES {
            return Err(ServerError::new(
                format!(
                    "too many directives: {} (at most {MAX_DIRECTIVES} per request)",
                    counts.directives
                ),
                None,
            ));
        }
        Ok(document)
    }
}
