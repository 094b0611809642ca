//! Request limits that async-graphql does not count itself: aliases and
//! directives per request, both cheap ways to multiply the work one request
//! asks for (the same field a hundred times under a hundred names); and
//! depth with introspection judged apart (`depth`).
//! Also a cache of parsed documents: clients send the same few query texts
//! over and over with different variables, and parsing is a tenth of a
//! small request's time.

use std::sync::Arc;

use async_graphql::ValidationResult;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

use super::depth::DepthLimits;

pub const MAX_ALIASES: usize = 15;

pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 20;

/// Reads a page size, refusing what the limits do not allow.
pub fn page_size(first: Option<i32>) -> async_graphql::Result<usize> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(super::errors::api_error(
            super::errors::Code::BadUserInput,
            format!("first: must be between 0 and {MAX_PAGE}"),
        ));
    }
    Ok(usize::try_from(first).unwrap_or(0))
}

/// What a page of `first` items costs: each item as much as its fields.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    usize::try_from(first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE)).unwrap_or(0)
        * child_complexity
}

/// Items a list without a page size is charged for in advance (the
/// complexity is judged before anything is read): a generous guess of its
/// usual length. Lists that can be longer are charged what they returned
/// on top (`charge`).
pub const LIST_ITEMS: usize = 20;

/// Start times `availability` is charged for in advance: a day with a
/// half-hourly grid over twelve hours. The real number of start times, and
/// of the free resources listed for them, is charged once known.
pub const AVAILABILITY_SLOTS: usize = 24;

/// Adds what a resolver found it returned to the request's complexity, for
/// the per-minute budget: a list's real length is known only after it was
/// read.
pub fn charge(ctx: &async_graphql::Context<'_>, complexity: usize) {
    if let Some(spent) = ctx.data_opt::<Arc<SpentComplexity>>() {
        spent
            .0
            .fetch_add(complexity, std::sync::atomic::Ordering::Relaxed);
    }
}
pub const MAX_DIRECTIVES: usize = 50;

/// Documents kept at most; past that the cache starts over, so that a
/// caller sending endless distinct texts only costs parsing, as without it.
const CACHED_DOCUMENTS: usize = 256;
/// Longer texts are parsed every time.
const CACHED_TEXT_BYTES: usize = 8 * 1024;

type DocumentCache = std::sync::Mutex<std::collections::HashMap<String, ExecutableDocument>>;

pub struct RequestLimits {
    parsed: Arc<DocumentCache>,
    depth: DepthLimits,
}

impl RequestLimits {
    pub fn new(depth: DepthLimits) -> Self {
        Self {
            parsed: Arc::default(),
            depth,
        }
    }
}

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimitsExtension {
            parsed: Arc::clone(&self.parsed),
            depth: self.depth,
        })
    }
}

struct RequestLimitsExtension {
    /// Only documents within the limits are kept.
    parsed: Arc<DocumentCache>,
    depth: DepthLimits,
}

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
                .fetch_add(result.complexity, std::sync::atomic::Ordering::Relaxed);
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
        let cacheable = query.len() <= CACHED_TEXT_BYTES;
        if cacheable
            && let Some(document) = self
                .parsed
                .lock()
                .ok()
                .and_then(|cache| cache.get(query).cloned())
        {
            return Ok(document);
        }
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
        self.depth
            .check(&document)
            .map_err(|message| ServerError::new(message, None))?;
        if cacheable && let Ok(mut cache) = self.parsed.lock() {
            if cache.len() >= CACHED_DOCUMENTS {
                cache.clear();
            }
            cache.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }
}
